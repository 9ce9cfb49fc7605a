"""The knowledge API: hybrid search over knowledge entries and similar past incidents."""

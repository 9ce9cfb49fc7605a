"""JSON-lines log records, read by the log tailer (no HTTP, no token)."""

from incidents.sources.jsonlog.parser import ERROR_LEVEL, SOURCE, parse_record, record_level

__all__ = ["ERROR_LEVEL", "SOURCE", "parse_record", "record_level"]

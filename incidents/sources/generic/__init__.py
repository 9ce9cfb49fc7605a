"""Quench's own generic JSON events. Authenticated by the integration token."""

from incidents.sources.generic.parser import FIELDS, MAX_EVENTS, SOURCE, parse

__all__ = ["FIELDS", "MAX_EVENTS", "SOURCE", "parse"]

"""PagerDuty Events API v2 compatible events: the parser, and the routing-key and dedup-key rules."""

from incidents.sources.events_v2.parser import ACTIONS, MAX_DEDUP_KEY, SOURCE, parse
from incidents.sources.events_v2.rules import fill_generated_dedup_keys, routing_key

__all__ = ["ACTIONS", "MAX_DEDUP_KEY", "SOURCE", "fill_generated_dedup_keys", "parse", "routing_key"]

"""Grafana unified-alerting webhook contact points. Authenticated by the integration token
(Authorization header)."""

from incidents.sources.grafana.parser import SOURCE, VERSION, parse

__all__ = ["SOURCE", "VERSION", "parse"]

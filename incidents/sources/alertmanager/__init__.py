"""Prometheus Alertmanager webhooks (version 4). Authenticated by the integration token
(`http_config.authorization.credentials`); the alert's fingerprint + startsAt + status is
the delivery id, and Alertmanager's group labels are the grouping labels."""

from incidents.sources.alertmanager.parser import SOURCE, VERSION, parse

__all__ = ["SOURCE", "VERSION", "parse"]

"""Prometheus Alertmanager webhook (`webhook_config`, payload version "4").

One Signal per alert in the group; the mapping is described in `_prometheus`.
A payload with another `version` is refused with a pointer: Grafana sends version
"1" and has its own endpoint.
"""

from __future__ import annotations

from incidents.sources import _fields as f
from incidents.sources import _prometheus
from incidents.sources.base import Signal

SOURCE = "alertmanager"
VERSION = "4"


def parse(payload: object) -> list[Signal]:
    """Signals for every alert of an Alertmanager notification; PayloadError when it is malformed."""
    problems = f.Problems()
    group, alerts = _prometheus.read_group(payload, problems)
    if isinstance(payload, dict):
        version = payload.get("version")
        if version is not None and version != VERSION:
            hint = " (this looks like Grafana: use the Grafana endpoint)" if version == "1" else ""
            problems.add("version", f'must be "{VERSION}"{hint}')
    signals = []
    for index, raw in enumerate(alerts):
        fields = _prometheus.read_alert(raw, f.join("alerts", index), problems)
        if fields is not None and not problems:
            signals.append(_prometheus.build_signal(SOURCE, fields, group, raw))
    problems.raise_if_any("Invalid Alertmanager webhook payload.")
    return signals

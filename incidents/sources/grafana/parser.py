"""Grafana (unified) alerting webhook contact point, payload version "1".

One Signal per alert; the mapping is Alertmanager's (see `_prometheus`), plus:
- message falls back to `valueString` (the query values that fired) when the rule has
  no description, so a diagnosis still sees the numbers;
- `values`, `valueString`, `silenceURL`, `dashboardURL`, `panelURL` and the group's
  `orgId`, `title`, `state` are kept in the payload (not the group `message`: it
  renders every alert of the group, and each alert's payload would repeat it).
The legacy (pre-unified) alerting webhook, removed in Grafana 11, has no `alerts`
array and is refused with a clear message.
"""

from __future__ import annotations

from incidents.sources import _fields as f
from incidents.sources import _prometheus
from incidents.sources.base import PayloadError, Signal

SOURCE = "grafana"
VERSION = "1"


def parse(payload: object) -> list[Signal]:
    """Signals for every alert of a Grafana alerting notification; PayloadError when it is malformed."""
    if isinstance(payload, dict) and "alerts" not in payload and ("evalMatches" in payload or "ruleName" in payload):
        raise PayloadError(
            "Legacy Grafana alerting webhooks are not supported; use Grafana Alerting (unified alerting).",
            {"alerts": "is required (legacy alerting payload received)"},
        )
    problems = f.Problems()
    group, alerts = _prometheus.read_group(payload, problems)
    if isinstance(payload, dict):
        _read_grafana_group(payload, group, problems)
    signals = []
    for index, raw in enumerate(alerts):
        path = f.join("alerts", index)
        fields = _prometheus.read_alert(raw, path, problems)
        if fields is None:
            continue
        value_string = _read_grafana_alert(raw, path, problems)
        if problems:
            continue
        signal = _prometheus.build_signal(SOURCE, fields, group, raw)
        if not signal.message and value_string:
            signal.message = value_string
        signals.append(signal)
    problems.raise_if_any("Invalid Grafana alerting webhook payload.")
    return signals


def _read_grafana_group(payload: dict, group: dict, problems: f.Problems) -> None:
    version = payload.get("version")
    if version is not None and version != VERSION:
        hint = " (this looks like Alertmanager: use the Alertmanager endpoint)" if version == "4" else ""
        problems.add("version", f'must be "{VERSION}"{hint}')
    org_id = payload.get("orgId")
    if org_id is not None and (isinstance(org_id, bool) or not isinstance(org_id, int)):
        problems.add("orgId", "must be an integer")
    elif org_id is not None:
        group["orgId"] = org_id
    f.opt_str(payload, "message", "", problems)  # checked, not kept: it repeats every alert of the group
    for key in ("title", "state"):
        value = f.opt_str(payload, key, "", problems)
        if value:
            group[key] = value


def _read_grafana_alert(alert: dict, path: str, problems: f.Problems) -> str:
    """Checks Grafana's extra per-alert fields; returns the valueString."""
    for key in ("silenceURL", "dashboardURL", "panelURL"):
        f.opt_str(alert, key, path, problems)
    values = f.opt_dict(alert, "values", path, problems)
    for name, value in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            problems.add(f.join(f.join(path, "values"), name), f"must be a number, not {f.type_name(value)}")
    return f.opt_str(alert, "valueString", path, problems).strip()

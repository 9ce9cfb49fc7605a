"""What Prometheus Alertmanager and Grafana alerting webhooks share.

Grafana's unified alerting is built on Alertmanager's notification code, so both send
a group of alerts with the same per-alert fields (status, labels, annotations,
startsAt, endsAt, generatorURL, fingerprint). The source modules only add their own
top-level checks and extra fields.

Mapping of one alert to a Signal:
- status: the alert's own status (a group can mix firing and resolved alerts);
- title: annotations.summary, else labels.alertname;
- message: annotations.description, else annotations.message;
- severity: labels.severity (critical/page/p1 → critical, error/high → error,
  warning/warn/medium → warning, info/low/none → info; other words → "");
- service: labels service, app, application, job (the first present);
- environment: labels env, environment (not `namespace`: Kubernetes namespaces name
  teams and apps as often as environments, and a wrong environment is worse than the
  integration's default);
- grouping_labels: the group's groupLabels names, sorted;
- source_id: "<fingerprint or hash of the sorted labels>:<startsAt as sent>:<status>",
  so a re-sent notification (Alertmanager repeats every repeat_interval) is one event;
- occurred_at: startsAt, or endsAt for a resolved alert.
"""

from __future__ import annotations

from incidents.sources import _fields as f
from incidents.sources.base import Signal, SignalKind, SignalStatus

MAX_ALERTS = 1000
ALERT_STATUSES = ("firing", "resolved")
SERVICE_LABELS = ("service", "app", "application", "job")
ENVIRONMENT_LABELS = ("env", "environment")


def read_group(payload: object, problems: f.Problems) -> tuple[dict, list]:
    """The group-level fields common to both sources, and the raw alert list."""
    if not isinstance(payload, dict):
        problems.add("body", f"must be a JSON object, not {f.type_name(payload)}")
        return {}, []
    group = {
        "receiver": f.opt_str(payload, "receiver", "", problems),
        "status": f.enum_str(payload, "status", "", problems, ALERT_STATUSES, required=False),
        "groupKey": f.opt_str(payload, "groupKey", "", problems),
        "groupLabels": f.string_map(payload, "groupLabels", "", problems),
        "commonLabels": f.string_map(payload, "commonLabels", "", problems),
        "commonAnnotations": f.string_map(payload, "commonAnnotations", "", problems),
        "externalURL": f.opt_str(payload, "externalURL", "", problems),
    }
    truncated = payload.get("truncatedAlerts")
    if truncated is not None and (isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0):
        problems.add("truncatedAlerts", "must be a non-negative integer")
    elif truncated:
        group["truncatedAlerts"] = truncated

    alerts = payload.get("alerts")
    if alerts is None:
        problems.add("alerts", "is required")
        return group, []
    if not isinstance(alerts, list):
        problems.add("alerts", f"must be an array, not {f.type_name(alerts)}")
        return group, []
    if not alerts:
        problems.add("alerts", "must contain at least one alert")
    elif len(alerts) > MAX_ALERTS:
        problems.add("alerts", f"must contain at most {MAX_ALERTS} alerts (got {len(alerts)})")
        return group, []
    return group, alerts


def read_alert(alert: object, path: str, problems: f.Problems) -> dict | None:
    """The validated common fields of one alert, or None when it is not an object."""
    if not isinstance(alert, dict):
        problems.add(path, f"must be an object, not {f.type_name(alert)}")
        return None
    if alert.get("labels") is None:
        problems.add(f.join(path, "labels"), "is required")
    return {
        "status": f.enum_str(alert, "status", path, problems, ALERT_STATUSES, required=True),
        "labels": f.string_map(alert, "labels", path, problems),
        "annotations": f.string_map(alert, "annotations", path, problems),
        "startsAt_raw": alert.get("startsAt") if isinstance(alert.get("startsAt"), str) else "",
        "startsAt": f.opt_timestamp(alert, "startsAt", path, problems, required=True),
        "endsAt": f.opt_timestamp(alert, "endsAt", path, problems),
        "generatorURL": f.opt_str(alert, "generatorURL", path, problems),
        "fingerprint": f.opt_str(alert, "fingerprint", path, problems),
    }


def first_label(labels: dict[str, str], names: tuple[str, ...]) -> str:
    """The first non-empty value among `names`."""
    for name in names:
        value = labels.get(name, "").strip()
        if value:
            return value
    return ""


def labels_hash(labels: dict[str, str]) -> str:
    """A stable stand-in for Alertmanager's fingerprint when the sender left it out."""
    return f.canonical_sha256(sorted(labels.items()))[:16]


def build_signal(source: str, fields: dict, group: dict, raw_alert: dict) -> Signal:
    """One Signal from one validated alert and its group."""
    labels = fields["labels"]
    annotations = fields["annotations"]
    status = SignalStatus.RESOLVED if fields["status"] == "resolved" else SignalStatus.FIRING
    occurred_at = fields["startsAt"]
    if status == SignalStatus.RESOLVED and fields["endsAt"] is not None:
        occurred_at = fields["endsAt"]
    identity = fields["fingerprint"] or labels_hash(labels)
    alertname = labels.get("alertname", "")
    return Signal(
        source=source,
        kind=SignalKind.ALERT,
        status=status,
        title=annotations.get("summary", "").strip() or alertname,
        message=annotations.get("description", "").strip() or annotations.get("message", "").strip(),
        service=first_label(labels, SERVICE_LABELS),
        environment=first_label(labels, ENVIRONMENT_LABELS),
        severity=f.normalize_severity(labels.get("severity")),
        alertname=alertname,
        labels=dict(labels),
        annotations=dict(annotations),
        grouping_labels=sorted(group.get("groupLabels", {})),
        occurred_at=occurred_at,
        source_id=f.bounded_source_id(f"{identity}:{fields['startsAt_raw']}:{fields['status']}"),
        url=fields["generatorURL"],
        payload={"alert": raw_alert, "group": group},
    )

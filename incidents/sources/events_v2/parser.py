"""PagerDuty Events API v2 compatible alert events (`POST /v2/enqueue` bodies).

Validation follows PagerDuty's documented rules (developer.pagerduty.com, "Send an
Alert Event"):
- `event_action` is required: trigger, acknowledge or resolve;
- `dedup_key` is at most 255 characters; required for acknowledge and resolve, optional
  for trigger (PagerDuty then generates one; the view answers with ours);
- for trigger, `payload` is required with `summary` (≤ 1024 characters), `source` and
  `severity` (critical, error, warning, info); `timestamp` is ISO 8601; `component`,
  `group`, `class` are strings; `custom_details` is free-form (PagerDuty documents an
  object and accepts any JSON, so do we); for acknowledge and resolve the payload is
  ignored, as PagerDuty does;
- `images` items need `src`, `links` items need `href`.

`routing_key` is the integration token: the view checks it, and it is stripped here so
it never reaches a Signal or a stored payload.

Mapping: status trigger → firing, acknowledge → acknowledged, resolve → resolved;
title = summary; message = custom_details (a string as is, an object as "key: value"
lines); service = custom_details.service, else component, else source; environment =
custom_details.environment or .env; alertname = class; labels = source, component,
group, class; url = the first link, else client_url; source_id = "<dedup_key>:<action>:
<timestamp as sent>" when both are present, else the SHA-256 of the body without the
routing key (a retried POST is byte-for-byte the same event).
"""

from __future__ import annotations

import json

from incidents.sources import _fields as f
from incidents.sources.base import PayloadError, Signal, SignalKind, SignalStatus

SOURCE = "events_v2"
ACTIONS = {
    "trigger": SignalStatus.FIRING,
    "acknowledge": SignalStatus.ACKNOWLEDGED,
    "resolve": SignalStatus.RESOLVED,
}
MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024


def parse(payload: object) -> list[Signal]:
    """One Signal for an Events API v2 alert event; PayloadError with PagerDuty's rules when invalid."""
    if not isinstance(payload, dict):
        raise PayloadError("Event object is invalid", {"body": f"must be a JSON object, not {f.type_name(payload)}"})
    body = {key: value for key, value in payload.items() if key != "routing_key"}
    problems = f.Problems()
    action = f.enum_str(body, "event_action", "", problems, tuple(ACTIONS), required=True)
    dedup_key = f.opt_str(body, "dedup_key", "", problems, max_length=MAX_DEDUP_KEY).strip()
    if action in ("acknowledge", "resolve") and not dedup_key and "dedup_key" not in problems.detail:
        problems.add("dedup_key", f"is required for {action} events")
    event = {}
    if action == "trigger" or not action:
        event = _read_trigger_payload(body, problems)
    links = _read_context_list(body, "links", "href", problems)
    _read_context_list(body, "images", "src", problems)
    client_url = f.opt_str(body, "client_url", "", problems)
    f.opt_str(body, "client", "", problems)
    problems.raise_if_any("Event object is invalid")
    return [_signal(body, action, dedup_key, event, links, client_url)]


def _read_trigger_payload(body: dict, problems: f.Problems) -> dict:
    if body.get("payload") is None:
        problems.add("payload", "is required for trigger events")
        return {}
    if not isinstance(body["payload"], dict):
        problems.add("payload", f"must be an object, not {f.type_name(body['payload'])}")
        return {}
    payload = body["payload"]
    event = {
        "summary": f.req_str(payload, "summary", "payload", problems, max_length=MAX_SUMMARY),
        "source": f.req_str(payload, "source", "payload", problems),
        "severity": f.enum_str(payload, "severity", "payload", problems, f.SEVERITIES, required=True),
        "timestamp_raw": payload.get("timestamp") if isinstance(payload.get("timestamp"), str) else "",
        "timestamp": f.opt_timestamp(payload, "timestamp", "payload", problems),
        "component": f.opt_str(payload, "component", "payload", problems),
        "group": f.opt_str(payload, "group", "payload", problems),
        "class": f.opt_str(payload, "class", "payload", problems),
        "custom_details": payload.get("custom_details"),
    }
    return event


def _read_context_list(body: dict, key: str, required: str, problems: f.Problems) -> list[dict]:
    items = f.opt_list(body, key, "", problems)
    for index, item in enumerate(items):
        path = f.join(key, index)
        if not isinstance(item, dict):
            problems.add(path, f"must be an object, not {f.type_name(item)}")
            continue
        f.req_str(item, required, path, problems)
    return [item for item in items if isinstance(item, dict)]


def _signal(body: dict, action: str, dedup_key: str, event: dict, links: list[dict], client_url: str) -> Signal:
    details = event.get("custom_details")
    details_map = details if isinstance(details, dict) else {}
    service = _detail(details_map, "service") or event.get("component", "").strip() or event.get("source", "").strip()
    labels = {key: event[key] for key in ("source", "component", "group", "class") if event.get(key)}
    timestamp_raw = event.get("timestamp_raw", "")
    if dedup_key and timestamp_raw:
        source_id = f"{dedup_key}:{action}:{timestamp_raw}"
    else:
        source_id = f.canonical_sha256(body)
    first_link = next((link["href"] for link in links if isinstance(link.get("href"), str) and link["href"]), "")
    return Signal(
        source=SOURCE,
        kind=SignalKind.ALERT,
        status=ACTIONS[action],
        title=event.get("summary", "").strip(),
        message=_details_text(details),
        service=service,
        environment=_detail(details_map, "environment") or _detail(details_map, "env"),
        severity=event.get("severity", ""),
        alertname=event.get("class", "").strip(),
        labels=labels,
        occurred_at=event.get("timestamp"),
        dedup_key=dedup_key,
        source_id=f.bounded_source_id(source_id),
        url=first_link or client_url,
        payload=body,
    )


def _detail(details: dict, key: str) -> str:
    value = details.get(key)
    return value.strip() if isinstance(value, str) else ""


def _details_text(details: object) -> str:
    if details is None:
        return ""
    if isinstance(details, str):
        return details
    if isinstance(details, dict):
        return "\n".join(f"{key}: {_scalar(value)}" for key, value in details.items())
    return _scalar(details)


def _scalar(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)

"""Quench's own generic JSON events: one event object, or an array of up to 1,000.

Validated by hand (fast, no DRF); `FIELDS` describes the format for the API docs.
Every problem is reported with its path, e.g. `"[3].severity"` in an array or
`"severity"` for a single object. Unknown fields are kept in the payload and ignored.

Decisions:
- `severity` accepts critical/error/warning/info (any case) and the priorities P0–P3:
  P0/P1 → critical, P2 → error, P3 → warning, and the priority itself is kept as the
  `priority` label (unless the event sets one), so the incident gets exactly that
  priority;
- `labels` values may be strings, numbers or booleans; numbers and booleans are turned
  into their JSON text ("500", "true") because shippers emit `{"status": 500}` without
  thinking about it; null values are dropped; objects and arrays are refused;
- `traceback` is parsed into frames; its exception type/value fill `exception_type`
  and the message when those were not given;
- `occurred_at` without an offset is UTC;
- kind is error when `exception_type` or `traceback` is present, else alert;
- source_id: `event_id` when given; else, when `occurred_at` is given, the SHA-256 of
  the canonical event (a retried delivery is the same JSON, so it is stored once);
  else empty (nothing distinguishes a retry from a repeat, so each delivery counts).
"""

from __future__ import annotations

import json

from incidents.sources import _fields as f
from incidents.sources.base import PayloadError, Signal, SignalKind, SignalStatus
from incidents.sources.traceback import parse_python_traceback

SOURCE = "generic"
MAX_EVENTS = 1000
MAX_SERVICE = 200
MAX_DEDUP_KEY = 255
MAX_EVENT_ID = 255
PRIORITIES = {"P0": "critical", "P1": "critical", "P2": "error", "P3": "warning"}
STATUSES = ("firing", "resolved")
SEVERITY_PROBLEM = "must be one of critical, error, warning, info, P0-P3"

# name → (JSON type, required, description); the API schema is generated from this.
FIELDS: dict[str, tuple[str, bool, str]] = {
    "service": ("string", True, "The service that has the problem (1–200 characters)."),
    "environment": ("string", False, "e.g. production, staging."),
    "title": ("string", False, "One line. `title` or `message` is required."),
    "message": ("string", False, "Details. `title` or `message` is required."),
    "severity": ("string", False, "critical, error, warning, info, or a priority P0–P3."),
    "exception_type": ("string", False, "e.g. KeyError, requests.exceptions.Timeout."),
    "traceback": ("string", False, "The full Python traceback text; parsed into frames."),
    "path": ("string", False, "URL path of the failing request (a full URL is reduced to its path)."),
    "method": ("string", False, "HTTP method of the failing request (GET, POST, ...)."),
    "trace_id": ("string", False, "Distributed trace id."),
    "labels": ("object", False, "String → string; numbers and booleans are converted to text."),
    "occurred_at": ("string", False, "ISO 8601 date-time; UTC when no offset is given."),
    "dedup_key": ("string", False, "Your own grouping key (≤ 255); overrides Quench's fingerprint."),
    "status": ("string", False, "firing (default) or resolved."),
    "event_id": ("string", False, "Unique id of this occurrence (≤ 255), so that retries are stored once."),
}


def parse(payload: object) -> list[Signal]:
    """Signals for one generic event or an array of them; PayloadError naming every bad field."""
    problems = f.Problems()
    if isinstance(payload, dict):
        items, paths = [payload], [""]
    elif isinstance(payload, list):
        if not payload:
            raise PayloadError("Invalid events.", {"body": "must contain at least one event"})
        if len(payload) > MAX_EVENTS:
            raise PayloadError("Invalid events.", {"body": f"must contain at most {MAX_EVENTS} events"})
        items, paths = payload, [f"[{index}]" for index in range(len(payload))]
    else:
        raise PayloadError(
            "Invalid events.", {"body": f"must be an event object or an array of them, not {f.type_name(payload)}"}
        )
    signals = []
    for item, path in zip(items, paths, strict=True):
        if not isinstance(item, dict):
            problems.add(path, f"must be an object, not {f.type_name(item)}")
            continue
        signal = _read_event(item, path, problems)
        if signal is not None:
            signals.append(signal)
    problems.raise_if_any("Invalid event." if isinstance(payload, dict) else "Invalid events.")
    return signals


def _read_event(event: dict, path: str, problems: f.Problems) -> Signal | None:
    before = len(problems.detail)
    service = f.req_str(event, "service", path, problems, max_length=MAX_SERVICE).strip()
    title = f.opt_str(event, "title", path, problems).strip()
    message = f.opt_str(event, "message", path, problems)
    if not title and not message.strip() and f.join(path, "title") not in problems.detail:
        problems.add(f.join(path, "title"), "title or message is required")
    severity, priority = _severity(event, path, problems)
    exception_type = f.opt_str(event, "exception_type", path, problems).strip()
    traceback = f.opt_str(event, "traceback", path, problems)
    method = _method(event, path, problems)
    labels = _labels(event, path, problems)
    status = f.enum_str(event, "status", path, problems, STATUSES, required=False, default="firing")
    values = {
        "environment": f.opt_str(event, "environment", path, problems).strip(),
        "path": f.opt_str(event, "path", path, problems).strip(),
        "trace_id": f.opt_str(event, "trace_id", path, problems).strip(),
        "dedup_key": f.opt_str(event, "dedup_key", path, problems, max_length=MAX_DEDUP_KEY).strip(),
        "event_id": f.opt_str(event, "event_id", path, problems, max_length=MAX_EVENT_ID).strip(),
        "occurred_at": f.opt_timestamp(event, "occurred_at", path, problems),
    }
    if len(problems.detail) > before:
        return None

    exception_value = ""
    frames = []
    if traceback:
        parsed_type, exception_value, frames = parse_python_traceback(traceback)
        if exception_type and parsed_type and parsed_type.rsplit(".", 1)[-1] != exception_type.rsplit(".", 1)[-1]:
            exception_value = ""  # the text describes another exception than the one named
        exception_type = exception_type or parsed_type
    if priority:
        labels.setdefault("priority", priority)
    if values["event_id"]:
        source_id = values["event_id"]
    elif values["occurred_at"] is not None:
        source_id = f.canonical_sha256(event)
    else:
        source_id = ""
    return Signal(
        source=SOURCE,
        kind=SignalKind.ERROR if exception_type or traceback else SignalKind.ALERT,
        status=SignalStatus.RESOLVED if status == "resolved" else SignalStatus.FIRING,
        title=title,
        message=message,
        service=service,
        environment=values["environment"],
        severity=severity,
        labels=labels,
        exception_type=exception_type,
        exception_value=exception_value,
        frames=frames,
        traceback=traceback,
        path=f.url_path(values["path"]) if "://" in values["path"] else values["path"].split("?", 1)[0],
        method=method,
        trace_id=values["trace_id"],
        occurred_at=values["occurred_at"],
        dedup_key=values["dedup_key"],
        source_id=source_id,
        payload=event,
    )


def _severity(event: dict, path: str, problems: f.Problems) -> tuple[str, str]:
    """(severity, priority): the normalized severity, and the P0–P3 priority when one was given."""
    value = event.get("severity")
    if value is None or value == "":
        return "", ""
    if isinstance(value, str):
        word = value.strip()
        if word.lower() in f.SEVERITIES:
            return word.lower(), ""
        if word.upper() in PRIORITIES:
            return PRIORITIES[word.upper()], word.upper()
    problems.add(f.join(path, "severity"), SEVERITY_PROBLEM)
    return "", ""


def _method(event: dict, path: str, problems: f.Problems) -> str:
    method = f.opt_str(event, "method", path, problems).strip().upper()
    if method and method not in f.HTTP_METHODS:
        problems.add(f.join(path, "method"), f"must be an HTTP method: {', '.join(sorted(f.HTTP_METHODS))}")
        return ""
    return method


def _labels(event: dict, path: str, problems: f.Problems) -> dict[str, str]:
    raw = f.opt_dict(event, "labels", path, problems)
    labels: dict[str, str] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if isinstance(value, str):
            labels[key] = value
        elif isinstance(value, bool | int | float):
            labels[key] = json.dumps(value)
        else:
            problems.add(
                f.join(f.join(path, "labels"), key), f"must be a string, number or boolean, not {f.type_name(value)}"
            )
    return labels

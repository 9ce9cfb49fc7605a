"""Sentry webhooks: integration-platform resources and the legacy webhook plugin.

Recognized by shape (the `Sentry-Hook-Resource` header is not needed):
- `event_alert` (issue alert rule action): `{"action": "triggered", "data": {"event": {...}}}`;
- `error`: `{"action": "created", "data": {"error": {...}}}`;
- `issue`: `{"action": "created|resolved|unresolved|assigned|archived|ignored", "data": {"issue": {...}}}`;
- `metric_alert`: `{"action": "critical|warning|resolved", "data": {"metric_alert": {...}}}`;
- the legacy webhook plugin: `{"id", "project", "project_name", "culprit", "message", "url", "level", "event": {...}}`.
Other authentic resources (installation, comment, seer, ...) and issue actions that
are triage decisions, not news about the error (assigned, archived/ignored), give [].

Mapping of an event: kind error; exception type/value and frames from the last entry
of `exception.values` (Sentry lists chained exceptions oldest first, and frames
outermost first, like Python); a Python-style traceback text is rendered from them;
level → severity (fatal → critical, error, warning, info/debug → info); tags (pairs or
{key, value} objects) → labels, plus `release`; environment; request.url → path only,
request.method → method; contexts.trace.trace_id; event_id → source_id; web_url or
the plugin's url → url; the issue id → dedup_key, so Sentry's own grouping decides
the incident and a later issue `resolved` webhook resolves it. Service: the `service`
tag, else the project slug (plugin `project_slug`/`project`, the issue's project, or
the slug in the event's API url `/api/0/projects/<org>/<project>/events/...`).
"""

from __future__ import annotations

import re

from incidents.sources import _fields as f
from incidents.sources.base import Frame, PayloadError, Signal, SignalKind, SignalStatus
from incidents.sources.traceback import CAUSE_LINE, CONTEXT_LINE, format_python_traceback, module_for_filename

SOURCE = "sentry"
LEVELS = {
    "fatal": "critical",
    "critical": "critical",
    "error": "error",
    "warning": "warning",
    "warn": "warning",
    "info": "info",
    "log": "info",
    "debug": "info",
}
ISSUE_ACTIONS_FIRING = ("created", "unresolved")
ISSUE_ACTIONS_IGNORED = ("assigned", "archived", "ignored")
ISSUE_ACTIONS = (*ISSUE_ACTIONS_FIRING, "resolved", *ISSUE_ACTIONS_IGNORED)
METRIC_ACTIONS = ("critical", "warning", "resolved")
_PROJECT_FROM_API_URL = re.compile(r"/api/0/projects/[^/]+/(?P<project>[^/]+)/events/")


def parse(payload: object) -> list[Signal]:
    """Signals for a Sentry webhook; [] for authentic resources Quench does not act on."""
    if not isinstance(payload, dict):
        raise PayloadError(
            "Invalid Sentry webhook payload.", {"body": f"must be a JSON object, not {f.type_name(payload)}"}
        )
    data = payload.get("data")
    if isinstance(data, dict):
        return _integration_platform(payload, data)
    if isinstance(payload.get("event"), dict):
        return _legacy_plugin(payload)
    if "data" in payload:
        raise PayloadError("Invalid Sentry webhook payload.", {"data": f"must be an object, not {f.type_name(data)}"})
    raise PayloadError(
        "Not a Sentry webhook: expected an integration-platform body with `data` or a webhook-plugin body with `event`.",
        {"data": "is required", "event": "is required"},
    )


def _integration_platform(payload: dict, data: dict) -> list[Signal]:
    problems = f.Problems()
    action = f.opt_str(payload, "action", "", problems)
    problems.raise_if_any("Invalid Sentry webhook payload.")
    for resource in ("event", "error"):
        if resource in data and data[resource] is not None:
            event = data[resource]
            if not isinstance(event, dict):
                raise PayloadError(
                    "Invalid Sentry webhook payload.",
                    {f"data.{resource}": f"must be an object, not {f.type_name(event)}"},
                )
            signal = _signal_from_event(event, f"data.{resource}", context={})
            signal.payload = payload
            if data.get("triggered_rule") and isinstance(data["triggered_rule"], str):
                signal.labels.setdefault("sentry_rule", data["triggered_rule"])
            return [signal]
    if data.get("issue") is not None:
        return _issue(payload, data["issue"], action)
    if data.get("metric_alert") is not None:
        return _metric_alert(payload, data, action)
    return []  # installation, comment, seer, preprod_artifact, ...: authentic, not ours


def _legacy_plugin(payload: dict) -> list[Signal]:
    problems = f.Problems()
    issue_id = _id_text(payload.get("id"), "id", problems)
    project = f.opt_str(payload, "project_slug", "", problems) or f.opt_str(payload, "project", "", problems)
    url = f.opt_str(payload, "url", "", problems)
    message = f.opt_str(payload, "message", "", problems)
    culprit = f.opt_str(payload, "culprit", "", problems)
    level = _level(payload, "level", "", problems)
    problems.raise_if_any("Invalid Sentry webhook-plugin payload.")
    signal = _signal_from_event(payload["event"], "event", context={"project": project, "issue_id": issue_id})
    signal.payload = payload
    signal.url = signal.url or url
    signal.severity = signal.severity or level
    signal.title = signal.title or message or culprit
    signal.message = signal.message or message
    return [signal]


def _signal_from_event(event: dict, path: str, *, context: dict) -> Signal:
    problems = f.Problems()
    event_id = _id_text(event.get("event_id"), f.join(path, "event_id"), problems) or _id_text(
        event.get("id"), f.join(path, "id"), problems
    )
    exc_type, exc_value, frames, chain_text = _exception(event, path, problems)
    labels = _tags(event, path, problems)
    release = _id_text(event.get("release"), f.join(path, "release"), problems)
    if release:
        labels.setdefault("release", release)
    server_name = f.opt_str(event, "server_name", path, problems)
    if server_name:
        labels.setdefault("server_name", server_name)
    user = _user(f.opt_dict(event, "user", path, problems))
    if user:
        labels.setdefault("user", user)
    environment = f.opt_str(event, "environment", path, problems) or labels.get("environment", "")
    request = f.opt_dict(event, "request", path, problems) or f.opt_dict(
        event, "sentry.interfaces.Http", path, problems
    )
    req_path = f.join(path, "request")
    request_url = f.opt_str(request, "url", req_path, problems)
    method = f.opt_str(request, "method", req_path, problems).strip().upper()
    contexts = f.opt_dict(event, "contexts", path, problems)
    trace = contexts.get("trace") if isinstance(contexts.get("trace"), dict) else {}
    trace_id = trace.get("trace_id") if isinstance(trace.get("trace_id"), str) else ""
    # Sentry documents the event `timestamp` as RFC 3339 text or Unix seconds (SDKs send
    # either); the webhooks' `datetime` is always text.
    occurred_at = f.opt_timestamp(event, "datetime", path, problems) or f.opt_timestamp(
        event, "timestamp", path, problems, epoch=True
    )
    severity = _level(event, "level", path, problems)
    title = f.opt_str(event, "title", path, problems)
    culprit = f.opt_str(event, "culprit", path, problems)
    web_url = f.opt_str(event, "web_url", path, problems)
    api_url = f.opt_str(event, "url", path, problems)
    issue_id = _id_text(event.get("issue_id"), f.join(path, "issue_id"), problems) or context.get("issue_id", "")
    problems.raise_if_any("Invalid Sentry event.")

    metadata = event.get("metadata") if isinstance(event.get("metadata"), dict) else {}
    exc_type = exc_type or _text(metadata.get("type"))
    exc_value = exc_value or _text(metadata.get("value"))
    if not title:
        title = f"{exc_type}: {exc_value}" if exc_type else _event_message(event) or culprit
    project_match = _PROJECT_FROM_API_URL.search(api_url)
    service = (
        labels.get("service") or context.get("project") or (project_match.group("project") if project_match else "")
    )
    if culprit:
        labels.setdefault("culprit", culprit)
    return Signal(
        source=SOURCE,
        kind=SignalKind.ERROR,
        status=SignalStatus.FIRING,
        title=title,
        message=_event_message(event),
        service=service,
        environment=environment,
        severity=severity,
        labels=labels,
        exception_type=exc_type,
        exception_value=exc_value,
        frames=frames,
        traceback=chain_text,
        path=f.url_path(request_url),
        method=method if method in f.HTTP_METHODS else "",
        trace_id=trace_id,
        occurred_at=occurred_at,
        dedup_key=issue_id,
        source_id=f.bounded_source_id(event_id or f.canonical_sha256(event)),
        url=web_url,
    )


def _exception(event: dict, path: str, problems: f.Problems) -> tuple[str, str, list[Frame], str]:
    """The last (outermost) exception's type, value and frames, and the whole chain as Python prints it."""
    key = "exception" if event.get("exception") is not None else "sentry.interfaces.Exception"
    container = event.get(key)
    if container is None:
        return "", "", [], ""
    exc_path = f.join(path, key)
    if isinstance(container, list):  # an older SDK wrote the list itself
        values, values_path = container, exc_path
    elif isinstance(container, dict):
        values, values_path = f.opt_list(container, "values", exc_path, problems), f.join(exc_path, "values")
    else:
        problems.add(exc_path, f"must be an object, not {f.type_name(container)}")
        return "", "", [], ""
    # (type, value, frames, whether it is the explicit cause of the next one), oldest first.
    chain: list[tuple[str, str, list[Frame], bool]] = []
    for index, value in enumerate(values):
        value_path = f.join(values_path, index)
        if not isinstance(value, dict):
            problems.add(value_path, f"must be an object, not {f.type_name(value)}")
            continue
        exc_type = f.opt_str(value, "type", value_path, problems)
        exc_value = f.opt_str(value, "value", value_path, problems)
        stacktrace = f.opt_dict(value, "stacktrace", value_path, problems)
        frames_path = f.join(f.join(value_path, "stacktrace"), "frames")
        raw_frames = f.opt_list(stacktrace, "frames", f.join(value_path, "stacktrace"), problems)
        frames = [_frame(raw, f.join(frames_path, i), problems) for i, raw in enumerate(raw_frames)]
        mechanism = value.get("mechanism") if isinstance(value.get("mechanism"), dict) else {}
        # The SDK marks an exception that is another's `__cause__` (raise ... from ...); any
        # other link is Python's implicit context.
        is_cause = mechanism.get("source") == "__cause__"
        chain.append((exc_type, exc_value, [frame for frame in frames if frame is not None], is_cause))
    if not chain:
        return "", "", [], ""
    exc_type, exc_value, frames, _ = chain[-1]
    return exc_type, exc_value, frames, _chain_text(chain)


def _chain_text(chain: list[tuple[str, str, list[Frame], bool]]) -> str:
    """Python's traceback text for a Sentry exception chain (oldest first, as Sentry lists it)."""
    if not any(frames for _, _, frames, _ in chain):
        return ""
    blocks = []
    for position, (exc_type, exc_value, frames, _is_cause) in enumerate(chain):
        if position:
            blocks.append("\n" + (CAUSE_LINE if chain[position - 1][3] else CONTEXT_LINE) + "\n")
        blocks.append(format_python_traceback(exc_type, exc_value, frames))
    return "\n".join(blocks)


def _frame(raw: object, path: str, problems: f.Problems) -> Frame | None:
    if not isinstance(raw, dict):
        problems.add(path, f"must be an object, not {f.type_name(raw)}")
        return None
    filename = f.opt_str(raw, "filename", path, problems) or f.opt_str(raw, "abs_path", path, problems)
    module = f.opt_str(raw, "module", path, problems)
    lineno = raw.get("lineno")
    if lineno is not None and (isinstance(lineno, bool) or not isinstance(lineno, int)):
        problems.add(f.join(path, "lineno"), "must be an integer")
        lineno = None
    in_app = raw.get("in_app")
    if in_app is not None and not isinstance(in_app, bool):
        problems.add(f.join(path, "in_app"), "must be a boolean")
        in_app = None
    guessed_module, guessed_in_app = module_for_filename(f.opt_str(raw, "abs_path", path, problems) or filename)
    return Frame(
        module=module or guessed_module,
        function=f.opt_str(raw, "function", path, problems),
        filename=filename,
        lineno=lineno,
        # Sentry leaves in_app null when it could not decide; the path tells us then.
        in_app=in_app if in_app is not None else guessed_in_app,
        context_line=f.opt_str(raw, "context_line", path, problems).strip(),
        pre_context=_context_lines(raw.get("pre_context"))[-MAX_CONTEXT_LINES:],
        post_context=_context_lines(raw.get("post_context"))[:MAX_CONTEXT_LINES],
        vars=_frame_vars(raw.get("vars")),
    )


MAX_FRAME_VARS = 50
MAX_CONTEXT_LINES = 10
MAX_CONTEXT_CHARS = 500


def _context_lines(raw: object) -> tuple[str, ...]:
    """A frame's pre/post context lines; anything that is not a list of lines counts as none."""
    if not isinstance(raw, list):
        return ()
    return tuple(line[:MAX_CONTEXT_CHARS] if isinstance(line, str) else "" for line in raw)


MAX_VAR_CHARS = 2000


def _frame_vars(raw: object) -> tuple[tuple[str, str], ...]:
    """A frame's `vars` as (name, repr) pairs; the SDK sends strings as reprs, other values as JSON."""
    if not isinstance(raw, dict):
        return ()
    pairs = []
    for name, value in list(raw.items())[:MAX_FRAME_VARS]:
        if isinstance(name, str) and name:
            text = value if isinstance(value, str) else repr(value)
            pairs.append((name[:200], text[:MAX_VAR_CHARS]))
    return tuple(pairs)


def _user(user: dict) -> str:
    """Who hit the error, as the SDK identified them (set_user): id, else username, else e-mail, else IP."""
    for key in ("id", "username", "email", "ip_address"):
        value = _text(user.get(key))
        if value:
            return value
    return ""


def parse_sdk_event(event: object) -> Signal:
    """One Signal for an event a Sentry SDK sent (an envelope's `event` item or a /store/ body).

    The SDK's event has no Sentry issue, so nothing sets a dedup key: Quench's own
    fingerprint rules group it. `event_id` is the delivery id (an SDK retry is stored
    once); the `service` tag names the service, else the integration's default does.
    """
    if not isinstance(event, dict):
        raise PayloadError("Invalid Sentry event.", {"event": f"must be a JSON object, not {f.type_name(event)}"})
    signal = _signal_from_event(event, "", context={})
    signal.payload = event
    return signal


def _tags(event: dict, path: str, problems: f.Problems) -> dict[str, str]:
    tags = event.get("tags")
    tags_path = f.join(path, "tags")
    labels: dict[str, str] = {}
    if tags is None:
        return labels
    if isinstance(tags, dict):
        items = list(tags.items())
    elif isinstance(tags, list):
        items = []
        for index, tag in enumerate(tags):
            if isinstance(tag, list | tuple) and len(tag) == 2:
                items.append((tag[0], tag[1]))
            elif isinstance(tag, dict) and "key" in tag:
                items.append((tag.get("key"), tag.get("value")))
            else:
                problems.add(f.join(tags_path, index), "must be a [key, value] pair or a {key, value} object")
    else:
        problems.add(tags_path, f"must be an array or an object, not {f.type_name(tags)}")
        return labels
    for key, value in items:
        if isinstance(key, str) and key and value is not None and not isinstance(value, dict | list):
            labels[key.removeprefix("sentry:")] = value if isinstance(value, str) else str(value)
    return labels


def _issue(payload: dict, issue: object, action: str) -> list[Signal]:
    if not isinstance(issue, dict):
        raise PayloadError(
            "Invalid Sentry issue webhook.", {"data.issue": f"must be an object, not {f.type_name(issue)}"}
        )
    if action not in ISSUE_ACTIONS:
        raise PayloadError("Invalid Sentry issue webhook.", {"action": f"must be one of {', '.join(ISSUE_ACTIONS)}"})
    if action in ISSUE_ACTIONS_IGNORED:
        return []  # a triage decision in Sentry, not news about the error
    problems = f.Problems()
    path = "data.issue"
    issue_id = _id_text(issue.get("id"), f.join(path, "id"), problems)
    if not issue_id and f.join(path, "id") not in problems.detail:
        problems.add(f.join(path, "id"), "is required")
    title = f.opt_str(issue, "title", path, problems)
    culprit = f.opt_str(issue, "culprit", path, problems)
    severity = _level(issue, "level", path, problems)
    url = f.opt_str(issue, "web_url", path, problems) or f.opt_str(issue, "permalink", path, problems)
    first_seen = f.opt_timestamp(issue, "firstSeen", path, problems)
    last_seen = f.opt_timestamp(issue, "lastSeen", path, problems)
    project = f.opt_dict(issue, "project", path, problems)
    problems.raise_if_any("Invalid Sentry issue webhook.")
    metadata = issue.get("metadata") if isinstance(issue.get("metadata"), dict) else {}
    status = SignalStatus.RESOLVED if action == "resolved" else SignalStatus.FIRING
    labels = {"culprit": culprit} if culprit else {}
    return [
        Signal(
            source=SOURCE,
            kind=SignalKind.ERROR,
            status=status,
            title=title or culprit,
            service=_text(project.get("slug")) or _text(project.get("name")),
            severity=severity,
            labels=labels,
            exception_type=_text(metadata.get("type")),
            exception_value=_text(metadata.get("value")),
            occurred_at=(first_seen if action == "created" else None) or last_seen,
            dedup_key=issue_id,
            # Sentry re-sends a failed delivery unchanged; a new state change differs somewhere.
            source_id=f"issue:{issue_id}:{action}:{f.canonical_sha256(payload)[:16]}",
            url=url,
            payload=payload,
        )
    ]


def _metric_alert(payload: dict, data: dict, action: str) -> list[Signal]:
    if action not in METRIC_ACTIONS:
        raise PayloadError(
            "Invalid Sentry metric alert webhook.", {"action": f"must be one of {', '.join(METRIC_ACTIONS)}"}
        )
    problems = f.Problems()
    alert = f.opt_dict(data, "metric_alert", "data", problems)
    title = f.opt_str(data, "description_title", "data", problems)
    text = f.opt_str(data, "description_text", "data", problems)
    url = f.opt_str(data, "web_url", "data", problems)
    problems.raise_if_any("Invalid Sentry metric alert webhook.")
    rule = alert.get("alert_rule") if isinstance(alert.get("alert_rule"), dict) else {}
    alert_id = _text(alert.get("id")) or _text(alert.get("identifier"))
    rule_name = _text(rule.get("name"))
    projects = rule.get("projects") if isinstance(rule.get("projects"), list) else []
    occurred_at = None
    for key in (
        ("date_closed", "date_detected", "date_started") if action == "resolved" else ("date_detected", "date_started")
    ):
        try:
            occurred_at = f.parse_timestamp(alert.get(key)) if alert.get(key) is not None else None
        except ValueError:
            occurred_at = None
        if occurred_at is not None:
            break
    return [
        Signal(
            source=SOURCE,
            kind=SignalKind.ALERT,
            status=SignalStatus.RESOLVED if action == "resolved" else SignalStatus.FIRING,
            title=title or rule_name,
            message=text,
            service=projects[0] if len(projects) == 1 and isinstance(projects[0], str) else "",
            environment=_text(rule.get("environment")),
            occurred_at=occurred_at,
            severity="critical" if action == "critical" else "warning" if action == "warning" else "",
            alertname=rule_name,
            dedup_key=f"metric_alert:{alert_id}" if alert_id else "",
            source_id=f"metric_alert:{alert_id}:{action}:{f.canonical_sha256(payload)[:16]}",
            url=url,
            payload=payload,
        )
    ]


def _level(obj: dict, key: str, path: str, problems: f.Problems) -> str:
    value = obj.get(key)
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or value.strip().lower() not in LEVELS:
        problems.add(f.join(path, key), "must be one of fatal, error, warning, info, debug")
        return ""
    return LEVELS[value.strip().lower()]


def _id_text(value: object, path: str, problems: f.Problems) -> str:
    """Sentry ids arrive as strings or numbers."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    problems.add(path, f"must be a string, not {f.type_name(value)}")
    return ""


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _event_message(event: dict) -> str:
    logentry = event.get("logentry") or event.get("sentry.interfaces.Message")
    if isinstance(logentry, dict):
        for key in ("formatted", "message"):
            if isinstance(logentry.get(key), str) and logentry[key]:
                return logentry[key]
    message = event.get("message")
    return message if isinstance(message, str) else ""

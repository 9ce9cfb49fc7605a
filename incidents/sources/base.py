"""The normalized shape every alert source is turned into, and the adapter contract.

An adapter is a pure function `parse(payload: object) -> list[Signal]` that knows one
payload format and nothing of the database. It raises `PayloadError` with a
`{field: problem}` mapping when the payload does not match its documented schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


class PayloadError(ValueError):
    """The payload does not match the source's schema; `detail` maps field paths to problems."""

    def __init__(self, message: str, detail: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail or {}


class SignalKind:
    ALERT = "alert"  # a metric/threshold alert (Alertmanager, Grafana, PagerDuty-style)
    ERROR = "error"  # an application error with an exception and usually a stack trace
    LOG = "log"  # a log record that counts (error level, HTTP 5xx)


class SignalStatus:
    FIRING = "firing"
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"


@dataclass(frozen=True)
class Frame:
    """One stack frame. `in_app` is False for the standard library and site-packages."""

    module: str = ""
    function: str = ""
    filename: str = ""
    lineno: int | None = None
    in_app: bool = True
    context_line: str = ""
    # The source lines around `context_line` when the source sent them (Sentry's
    # `pre_context` / `post_context`), oldest first.
    pre_context: tuple[str, ...] = ()
    post_context: tuple[str, ...] = ()
    # The frame's local variables as the source sent them (name, repr), when it did (Sentry's
    # `vars`): the diagnosis replays the failing call with them. Redacted before storage.
    vars: tuple[tuple[str, str], ...] = ()


@dataclass
class Signal:
    """One normalized occurrence from any source.

    `source_id` identifies this delivery/occurrence at the source (Sentry event id,
    Alertmanager fingerprint + startsAt + status, ...): a retried delivery carries the
    same one and is stored once. `dedup_key` is the source's own grouping key, which
    takes precedence over every other fingerprint component.
    """

    source: str  # integration kind that produced it: alertmanager, grafana, sentry, events_v2, generic, log
    kind: str = SignalKind.ALERT
    status: str = SignalStatus.FIRING
    title: str = ""
    message: str = ""
    service: str = ""
    environment: str = ""
    severity: str = ""  # normalized: critical, error, warning, info, or "" when the source said nothing
    alertname: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    grouping_labels: list[str] = field(default_factory=list)  # label names the source groups by
    exception_type: str = ""
    exception_value: str = ""
    frames: list[Frame] = field(default_factory=list)  # outermost first, as Python prints them
    traceback: str = ""  # the full text as received, never truncated
    path: str = ""  # URL path of the failing request
    method: str = ""  # HTTP method of the failing request
    trace_id: str = ""
    occurred_at: datetime | None = None
    dedup_key: str = ""
    # The namespace the dedup key lives in: the integration that sent it, set by the ingest
    # service (PagerDuty scopes dedup_key to the routing key), so two senders never share
    # an incident by choosing the same key.
    dedup_scope: str = ""
    source_id: str = ""
    url: str = ""  # link back to the source (generatorURL, Sentry web_url, ...)
    payload: dict = field(default_factory=dict)  # the raw item this signal came from (redacted before storage)

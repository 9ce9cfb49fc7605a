"""Turn normalized signals into stored events and deduplicated incidents.

The rules, in order, for one signal:
1. Integration defaults fill in a missing service/environment; secrets are redacted.
2. The fingerprint decides the incident (see incidents.fingerprinting).
3. Under the incident's row lock: a retried delivery (same source id within this
   life of the incident) is answered as a duplicate and stores nothing; otherwise the
   event is stored and the incident opened, updated, reopened as regressed, or
   resolved by its source.
4. A new, regressed or suddenly much noisier incident gets one debounced wake-up.

Signals of one request are handled in one transaction, in fingerprint order so that
two batches never wait on each other's locks in opposite orders.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from incidents.choices import (
    REMEDIATION_IN_FLIGHT,
    ActivityKind,
    EventOutcome,
    IncidentStatus,
)
from incidents.fingerprinting import Fingerprint, compute_fingerprint
from incidents.models import Event, Incident, IncidentCounter, IncidentWakeup, Integration, LogSource
from incidents.redaction import redact, redact_text
from incidents.services.lifecycle import apply_transition, record_activity
from incidents.services.rules import classify, fingerprint_rule_specs, matching_silence
from incidents.sources.base import Signal, SignalKind, SignalStatus

logger = logging.getLogger(__name__)

S = IncidentStatus
MAX_OPEN_ALERT_KEYS = 500
# Against a resolved incident, a known source id counts as a retried delivery only this
# soon after we first stored it (a retry racing the resolve). Later, the same id means
# the source is still sending a problem someone closed: that is a regression.
LATE_RETRY_WINDOW = timedelta(minutes=5)
_SEVERITY_RANK = {"P0": 0, "P1": 1, "P2": 2, "P3": 3}


@dataclass(frozen=True)
class IngestResult:
    """What happened to one signal."""

    outcome: str
    incident_id: int | None
    event_id: int | None
    fingerprint: str


def ingest_signals(
    signals: list[Signal],
    *,
    integration: Integration | None = None,
    log_source: LogSource | None = None,
) -> list[IngestResult]:
    """Store signals durably and fold them into incidents; returns one result per signal, in input order."""
    prepared = [_prepare(signal, integration, log_source) for signal in signals]
    order = sorted(range(len(prepared)), key=lambda i: prepared[i][1].hash)
    results: list[IngestResult | None] = [None] * len(prepared)
    with transaction.atomic():
        for index in order:
            signal, fingerprint = prepared[index]
            results[index] = _record(signal, fingerprint, integration, log_source)
    return results  # type: ignore[return-value]


def _prepare(signal: Signal, integration: Integration | None, log_source: LogSource | None):
    if integration is not None:
        signal.service = signal.service or integration.default_service
        signal.environment = signal.environment or integration.default_environment
    signal.title = redact_text(signal.title or signal.message.split("\n", 1)[0] or signal.alertname or "Untitled")
    signal.message = redact_text(signal.message)
    signal.exception_value = redact_text(signal.exception_value)
    signal.traceback = redact_text(signal.traceback)
    signal.payload = redact(signal.payload)
    signal.labels = {key: redact_text(str(value)) for key, value in signal.labels.items()}
    return signal, compute_fingerprint(signal, fingerprint_rule_specs())


def _record(signal: Signal, fingerprint: Fingerprint, integration, log_source) -> IngestResult:
    # A concurrent request may create the open incident between our look-up and our
    # insert; the partial unique index then refuses ours and we retry as an update.
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return _record_once(signal, fingerprint, integration, log_source)
        except IntegrityError as exc:
            if "one_open_incident_per_fingerprint" not in str(exc):
                raise
    raise RuntimeError(f"could not settle the incident for fingerprint {fingerprint.hash}")


def _record_once(signal: Signal, fingerprint: Fingerprint, integration, log_source) -> IngestResult:
    now = timezone.now()
    incident = (
        Incident.objects.select_for_update().filter(fingerprint=fingerprint.hash).exclude(status=S.RESOLVED).first()
    )
    if incident is None:
        resolved = (
            Incident.objects.select_for_update()
            .filter(fingerprint=fingerprint.hash, status=S.RESOLVED)
            .order_by("-resolved_at", "-pk")
            .first()
        )
        if resolved is not None:
            if _is_duplicate(resolved, signal, since=now - LATE_RETRY_WINDOW):
                return IngestResult(EventOutcome.DUPLICATE, resolved.pk, None, fingerprint.hash)
            if signal.status != SignalStatus.FIRING:
                # A late resolve/acknowledge for something already closed: keep it on the record.
                event = _store_event(resolved, signal, EventOutcome.NOTED, integration, log_source, now)
                return IngestResult(EventOutcome.NOTED, resolved.pk, event.pk if event else None, fingerprint.hash)
            return _regress(resolved, signal, fingerprint, integration, log_source, now)
        if signal.status != SignalStatus.FIRING:
            # Resolving something Quench never saw open: nothing to attach it to.
            logger.info(
                "resolve for an unknown incident ignored",
                extra={"fingerprint": fingerprint.hash, "source": signal.source},
            )
            return IngestResult(EventOutcome.NOTED, None, None, fingerprint.hash)
        return _open(signal, fingerprint, integration, log_source, now)

    if _is_duplicate(incident, signal):
        return IngestResult(EventOutcome.DUPLICATE, incident.pk, None, fingerprint.hash)
    if signal.status == SignalStatus.RESOLVED:
        return _source_resolved(incident, signal, fingerprint, integration, log_source, now)
    if signal.status == SignalStatus.ACKNOWLEDGED:
        return _source_acknowledged(incident, signal, fingerprint, integration, log_source, now)
    return _append(incident, signal, fingerprint, integration, log_source, now)


def _is_duplicate(incident: Incident, signal: Signal, since: datetime | None = None) -> bool:
    if not signal.source_id:
        return False
    events = Event.objects.filter(
        incident=incident, generation=incident.regression_count, source_id=signal.source_id[:255]
    )
    if since is not None:
        events = events.filter(received_at__gte=since)
    return events.exists()


def _open(signal, fingerprint, integration, log_source, now) -> IngestResult:
    classification = classify(
        kind=signal.kind,
        severity=signal.severity,
        service=signal.service,
        alertname=signal.alertname,
        labels=signal.labels,
        text=" ".join(filter(None, [signal.title, signal.message, signal.exception_type])),
    )
    silence = matching_silence(
        service=signal.service, alertname=signal.alertname, labels=signal.labels, fingerprint=fingerprint.hash
    )
    seen = signal.occurred_at or now
    incident = Incident.objects.create(
        fingerprint=fingerprint.hash,
        fingerprint_version=fingerprint.version,
        fingerprint_strategy=fingerprint.strategy[:120],
        fingerprint_components=fingerprint.as_dict()["components"],
        title=signal.title[:500],
        message=signal.message,
        kind=signal.kind,
        source=signal.source,
        integration=integration,
        service=signal.service[:200],
        environment=signal.environment[:100],
        status=S.SUPPRESSED if silence else S.TRIGGERED,
        severity=classification.severity,
        severity_reason=classification.severity_reason[:300],
        category=classification.category,
        alertname=signal.alertname[:200],
        exception_type=signal.exception_type[:200],
        culprit=_culprit(signal)[:500],
        route=_route(fingerprint)[:500],
        labels=signal.labels,
        dedup_key=signal.dedup_key[:255],
        event_count=1,
        first_seen=min(seen, now),
        last_seen=now,
        hour_started_at=_hour(now),
        hour_count=1,
        open_alert_keys=_alert_keys_after([], signal),
    )
    record_activity(
        incident,
        ActivityKind.OPENED,
        f"Opened by {signal.source}: {incident.title}",
        actor=f"source:{signal.source}",
        to_status=incident.status,
        data={"severity": incident.severity, "severity_reason": incident.severity_reason, "category": incident.category},
        created_at=now,
    )
    if silence:
        record_activity(
            incident,
            ActivityKind.SUPPRESSED,
            f"Suppressed by silence #{silence.pk}: {silence.comment}",
            data={"silence_id": silence.pk},
            created_at=now,
        )
    event = _store_event(incident, signal, EventOutcome.OPENED, integration, log_source, now)
    _count(incident, now)
    if not silence:
        _wake(incident, "new", now)
    logger.info(
        "incident opened",
        extra={"incident_id": incident.pk, "fingerprint": fingerprint.hash, "severity": incident.severity},
    )
    return IngestResult(EventOutcome.OPENED, incident.pk, event.pk, fingerprint.hash)


def _regress(incident: Incident, signal, fingerprint, integration, log_source, now) -> IngestResult:
    incident.regression_count += 1
    apply_transition(
        incident,
        S.REGRESSED,
        actor=f"source:{signal.source}",
        message=f"Fired again after it was resolved (regression #{incident.regression_count})",
        now=now,
    )
    record_activity(
        incident,
        ActivityKind.REGRESSED,
        f"Regression #{incident.regression_count}: {signal.title}",
        actor=f"source:{signal.source}",
        data={"regression_count": incident.regression_count},
        created_at=now,
    )
    incident.resolved_at = None
    incident.open_alert_keys = _alert_keys_after([], signal)
    _bump(incident, signal, now)
    silence = matching_silence(
        service=incident.service, alertname=incident.alertname, labels=signal.labels, fingerprint=incident.fingerprint
    )
    if silence:
        _suppress(incident, silence, now)
    incident.save()
    event = _store_event(incident, signal, EventOutcome.REGRESSED, integration, log_source, now)
    _count(incident, now)
    if not silence:
        _wake(incident, "regressed", now)
    logger.info("incident regressed", extra={"incident_id": incident.pk, "regressions": incident.regression_count})
    return IngestResult(EventOutcome.REGRESSED, incident.pk, event.pk, fingerprint.hash)


def _append(incident: Incident, signal, fingerprint, integration, log_source, now) -> IngestResult:
    _bump(incident, signal, now)
    incident.open_alert_keys = _alert_keys_after(incident.open_alert_keys, signal)
    outcome = EventOutcome.APPENDED
    silence = matching_silence(
        service=incident.service, alertname=incident.alertname, labels=signal.labels, fingerprint=incident.fingerprint
    )
    wake_reason = ""
    if incident.status == S.SUPPRESSED and silence is None:
        apply_transition(
            incident, S.TRIGGERED, actor="quench", message="Silence over and the problem is still firing", now=now
        )
        wake_reason = "silence_ended"
    elif silence is not None and incident.status in (S.TRIGGERED, S.REGRESSED):
        _suppress(incident, silence, now)
    if silence is not None:
        outcome = EventOutcome.SUPPRESSED
    new_severity = _severity_for(signal)
    if new_severity and _SEVERITY_RANK[new_severity] < _SEVERITY_RANK[incident.severity]:
        record_activity(
            incident,
            ActivityKind.SEVERITY,
            f"Severity raised {incident.severity} → {new_severity}: the source now reports {signal.severity}",
            data={"from": incident.severity, "to": new_severity},
            created_at=now,
        )
        incident.severity = new_severity
        incident.severity_reason = f"source severity {signal.severity}"
    if not wake_reason and silence is None and _is_spike(incident, now):
        wake_reason = "spike"
    incident.save()
    event = _store_event(incident, signal, outcome, integration, log_source, now)
    _count(incident, now)
    if wake_reason:
        _wake(incident, wake_reason, now)
    return IngestResult(outcome, incident.pk, event.pk, fingerprint.hash)


def _source_resolved(incident: Incident, signal, fingerprint, integration, log_source, now) -> IngestResult:
    incident.open_alert_keys = _alert_keys_after(incident.open_alert_keys, signal)
    incident.last_seen = max(incident.last_seen, now)
    opened_by_this_source = (
        incident.integration_id == integration.pk if integration is not None else incident.source == signal.source
    )
    outcome = EventOutcome.NOTED
    if incident.open_alert_keys:
        message = f"{signal.source} resolved one alert; {len(incident.open_alert_keys)} still firing"
        record_activity(incident, ActivityKind.NOTE, message, actor=f"source:{signal.source}", created_at=now)
    elif incident.status in REMEDIATION_IN_FLIGHT:
        record_activity(
            incident,
            ActivityKind.SOURCE_RESOLVED,
            f"{signal.source} reports resolved; left {incident.status} because a remediation is in flight",
            actor=f"source:{signal.source}",
            created_at=now,
        )
    elif not opened_by_this_source:
        record_activity(
            incident,
            ActivityKind.NOTE,
            f"{signal.source} reports resolved, but another source opened this incident; left open",
            actor=f"source:{signal.source}",
            created_at=now,
        )
    else:
        apply_transition(
            incident, S.RESOLVED, actor=f"source:{signal.source}", message=f"Resolved by {signal.source}", now=now
        )
        outcome = EventOutcome.RESOLVED
    incident.save()
    event = _store_event(incident, signal, outcome, integration, log_source, now)
    return IngestResult(outcome, incident.pk, event.pk, fingerprint.hash)


def _source_acknowledged(incident: Incident, signal, fingerprint, integration, log_source, now) -> IngestResult:
    outcome = EventOutcome.NOTED
    if incident.status in (S.TRIGGERED, S.REGRESSED, S.ESCALATED, S.SUPPRESSED):
        apply_transition(
            incident,
            S.ACKNOWLEDGED,
            actor=f"source:{signal.source}",
            message=f"Acknowledged through {signal.source}",
            now=now,
        )
        incident.save()
    else:
        record_activity(
            incident,
            ActivityKind.NOTE,
            f"{signal.source} acknowledged; incident already {incident.status}",
            actor=f"source:{signal.source}",
            created_at=now,
        )
    event = _store_event(incident, signal, outcome, integration, log_source, now)
    return IngestResult(outcome, incident.pk, event.pk, fingerprint.hash)


def _suppress(incident: Incident, silence, now) -> None:
    apply_transition(
        incident, S.SUPPRESSED, actor="quench", message=f"Suppressed by silence #{silence.pk}: {silence.comment}", now=now
    )


def _bump(incident: Incident, signal: Signal, now: datetime) -> None:
    incident.event_count += 1
    incident.last_seen = max(incident.last_seen, now)
    hour = _hour(now)
    if incident.hour_started_at == hour:
        incident.hour_count += 1
    else:
        incident.hour_started_at, incident.hour_count = hour, 1


def _is_spike(incident: Incident, now: datetime) -> bool:
    """This hour's count is far above the incident's average hourly rate (and not trivially small)."""
    age_hours = (now - incident.first_seen).total_seconds() / 3600
    if age_hours < 2 or incident.hour_count < settings.QUENCH_SPIKE_MIN_EVENTS:
        return False
    baseline = (incident.event_count - incident.hour_count) / max(age_hours - 1, 1)
    return incident.hour_count > settings.QUENCH_SPIKE_FACTOR * max(baseline, 1)


def _wake(incident: Incident, reason: str, now: datetime) -> None:
    """At most one wake-up per incident per window; the outbox row is enqueued on commit."""
    window = timedelta(seconds=settings.QUENCH_WAKEUP_WINDOW_SECONDS)
    if incident.last_wakeup_at and now - incident.last_wakeup_at < window:
        return
    Incident.objects.filter(pk=incident.pk).update(last_wakeup_at=now)
    incident.last_wakeup_at = now
    wakeup = IncidentWakeup.objects.create(incident=incident, reason=reason, created_at=now)
    from incidents.tasks import enqueue_wakeup

    transaction.on_commit(lambda: enqueue_wakeup(wakeup.pk))


def _count(incident: Incident, now: datetime) -> None:
    epoch = int(now.timestamp())
    bucket = datetime.fromtimestamp(epoch - epoch % IncidentCounter.BUCKET_SECONDS, tz=now.tzinfo)
    table = IncidentCounter._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (incident_id, bucket_start, count) VALUES (%s, %s, 1) "  # noqa: S608
            f"ON CONFLICT (incident_id, bucket_start) DO UPDATE SET count = {table}.count + 1",
            [incident.pk, bucket],
        )


def _store_event(incident, signal: Signal, outcome, integration, log_source, now) -> Event:
    return Event.objects.create(
        incident=incident,
        integration=integration,
        log_source=log_source,
        source=signal.source,
        source_id=signal.source_id[:255],
        generation=incident.regression_count,
        outcome=outcome,
        status=signal.status,
        kind=signal.kind,
        title=signal.title[:500],
        message=signal.message,
        severity=signal.severity[:10],
        service=signal.service[:200],
        environment=signal.environment[:100],
        labels=signal.labels,
        exception_type=signal.exception_type[:200],
        exception_value=signal.exception_value,
        traceback=signal.traceback,
        frames=[_frame_dict(frame) for frame in signal.frames],
        path=signal.path[:1000],
        method=signal.method[:10],
        trace_id=signal.trace_id[:100],
        url=signal.url[:2000],
        occurred_at=signal.occurred_at,
        received_at=now,
        payload=signal.payload,
    )


def _frame_dict(frame) -> dict:
    return {
        "module": frame.module,
        "function": frame.function,
        "filename": frame.filename,
        "lineno": frame.lineno,
        "in_app": frame.in_app,
        "context_line": frame.context_line,
    }


def _severity_for(signal: Signal) -> str:
    from incidents.services.rules import SEVERITY_FROM_SOURCE

    return SEVERITY_FROM_SOURCE.get(signal.severity, "")


def _alert_keys_after(keys: list[str], signal: Signal) -> list[str]:
    """Track which alerts of an alert incident are firing, so one resolved instance doesn't close the rest."""
    if signal.kind != SignalKind.ALERT:
        return []
    identity = signal.dedup_key or "|".join(f"{k}={v}" for k, v in sorted(signal.labels.items()))
    key = hashlib.sha1(identity.encode(), usedforsecurity=False).hexdigest()[:16]
    current = [k for k in keys if k != key]
    if signal.status == SignalStatus.FIRING:
        current.append(key)
    return current[-MAX_OPEN_ALERT_KEYS:]


def _culprit(signal: Signal) -> str:
    in_app = [frame for frame in signal.frames if frame.in_app]
    frame = (in_app or signal.frames or [None])[-1]
    if frame is None:
        return ""
    return ".".join(filter(None, [frame.module, frame.function]))


def _route(fingerprint: Fingerprint) -> str:
    for component in fingerprint.components:
        if component.name == "route" and component.values:
            return component.values[0]
    return ""


def _hour(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0)

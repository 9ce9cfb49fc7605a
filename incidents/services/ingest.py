"""Turn normalized signals into stored events and deduplicated incidents.

The rules, in order, for one signal:
1. Integration defaults fill in a missing service/environment and scope the dedup key to the
   integration that sent it; secrets are redacted.
2. The fingerprint decides the incident (see incidents.fingerprinting); log signals are
   grouped by their service's learned templates, which learn from them.
3. A retried delivery (same source id within this life of the incident) is answered
   as a duplicate and stores nothing; otherwise the event is stored and the incident
   opened, updated, reopened as regressed, or resolved by its source.
4. A new, regressed or suddenly much noisier incident gets one debounced wake-up.

Signals of one request are handled in one transaction. Plain repeats of open incidents
take an optimistic bulk path (see `_ingest_batch`); every state change happens under
the incident's row lock, in fingerprint order, so that two batches never wait on each
other's locks in opposite orders.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from incidents.choices import (
    REMEDIATION_IN_FLIGHT,
    SEVERITY_RANK,
    ActivityKind,
    EventOutcome,
    IncidentStatus,
)
from incidents.fingerprinting import Fingerprint, TemplateBook, compute_fingerprint
from incidents.models import (
    Event,
    Incident,
    IncidentCounter,
    IncidentWakeup,
    Integration,
    LearnedTemplates,
    LogSource,
)
from incidents.redaction import redact, redact_text
from incidents.services.lifecycle import apply_transition, record_activity
from incidents.services.rules import SEVERITY_FROM_SOURCE, classify, fingerprint_rule_specs, matching_silence
from incidents.signals import incident_opened
from incidents.sources.base import Signal, SignalKind, SignalStatus

logger = logging.getLogger(__name__)

S = IncidentStatus
MAX_OPEN_ALERT_KEYS = 500
# Against a resolved incident, a known source id counts as a retried delivery only this
# soon after we first stored it (a retry racing the resolve). Later, the same id means
# the source is still sending a problem someone closed: that is a regression.
LATE_RETRY_WINDOW = timedelta(minutes=5)
BATCH_ATTEMPTS = 3
DEADLOCK_DETECTED = "40P01"


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
    prepared = _prepare(signals, integration)
    bulk_allowed = True
    for attempt in range(BATCH_ATTEMPTS):
        try:
            with transaction.atomic():
                return _ingest_batch(prepared, integration, log_source, bulk_allowed=bulk_allowed)
        except _StaleSnapshot:
            # An incident changed state between our read and our write; nothing of this
            # attempt was kept. Go again, one signal at a time under row locks.
            bulk_allowed = False
        except OperationalError as exc:
            # Two batches that open incidents for overlapping fingerprints can, rarely,
            # wait on each other's uncommitted inserts; PostgreSQL aborts one of them.
            # Nothing of the aborted attempt was written, so running it again is safe.
            if getattr(exc.__cause__, "sqlstate", "") != DEADLOCK_DETECTED or attempt == BATCH_ATTEMPTS - 1:
                raise
            logger.warning("ingest batch deadlocked; retrying", extra={"attempt": attempt + 1})
    raise RuntimeError("ingest batch did not settle")


class _StaleSnapshot(Exception):
    """A bulk append found an incident no longer in the state it was read in."""


def _ingest_batch(prepared, integration, log_source, *, bulk_allowed: bool) -> list[IngestResult]:
    """One transaction: append plain repeats of open incidents in bulk, handle the rest one by one.

    Most traffic is the same problems firing again. Those repeats take a bulk path
    that locks nothing until its last statements: the open incidents are read without
    a lock, the events are inserted (the unique index, not a lock, turns a retried
    delivery into a no-op), and one guarded UPDATE bumps the counts only where the
    incident is still in the state that was read; if one is not, the whole attempt is
    rolled back and redone on the locked path. Row locks are then held for a fraction
    of a millisecond instead of the whole request, so concurrent batches that share
    incidents don't queue behind each other. Everything that changes an incident's
    state goes through the per-signal path, under the row lock, in fingerprint order.
    """
    now = timezone.now()
    results: list[IngestResult | None] = [None] * len(prepared)
    by_fingerprint: dict[str, list[int]] = {}
    for index, (_signal, fingerprint) in enumerate(prepared):
        by_fingerprint.setdefault(fingerprint.hash, []).append(index)
    open_incidents = {}
    if bulk_allowed:
        open_incidents = {
            incident.fingerprint: incident
            for incident in Incident.objects.only(*_SNAPSHOT_FIELDS)
            .filter(fingerprint__in=sorted(by_fingerprint))
            .exclude(status=S.RESOLVED)
        }
    bulk: list[int] = []
    one_by_one: list[int] = []
    for fingerprint_hash in sorted(by_fingerprint):
        indexes = by_fingerprint[fingerprint_hash]
        incident = open_incidents.get(fingerprint_hash)
        # The leading run of plain repeats goes in bulk; from the first signal that may
        # change the incident on, the rest keep their order on the per-signal path.
        run = 0
        while run < len(indexes) and incident is not None and _is_plain_repeat(incident, prepared[indexes[run]][0]):
            run += 1
        bulk += indexes[:run]
        one_by_one += indexes[run:]
    if bulk:
        _append_in_bulk(prepared, bulk, open_incidents, results, integration, log_source, now)
    for index in one_by_one:
        signal, fingerprint = prepared[index]
        results[index] = _record(signal, fingerprint, integration, log_source)
    return results  # type: ignore[return-value]


_SNAPSHOT_FIELDS = (
    "fingerprint",
    "status",
    "severity",
    "service",
    "alertname",
    "regression_count",
    "event_count",
    "first_seen",
    "last_wakeup_at",
)


def _is_plain_repeat(incident: Incident, signal: Signal) -> bool:
    """A firing repeat that changes nothing about the incident but its counts."""
    if signal.status != SignalStatus.FIRING or incident.status == S.SUPPRESSED:
        return False
    new_severity = _severity_for(signal)
    if new_severity and SEVERITY_RANK[new_severity] < SEVERITY_RANK[incident.severity]:
        return False
    return (
        matching_silence(
            service=incident.service,
            alertname=incident.alertname,
            labels=signal.labels,
            fingerprint=incident.fingerprint,
        )
        is None
    )


def _append_in_bulk(prepared, indexes, open_incidents, results, integration, log_source, now) -> None:
    events = []
    for index in indexes:
        signal, fingerprint = prepared[index]
        incident = open_incidents[fingerprint.hash]
        events.append((index, _event(incident, signal, EventOutcome.APPENDED, integration, log_source, now)))
    inserted = _insert_new_events([event for _, event in events])
    appended: dict[int, list] = {}
    for (index, event), stored in zip(events, inserted, strict=True):
        fingerprint_hash = prepared[index][1].hash
        if not stored:
            results[index] = IngestResult(EventOutcome.DUPLICATE, event.incident_id, None, fingerprint_hash)
            continue
        results[index] = IngestResult(EventOutcome.APPENDED, event.incident_id, event.pk, fingerprint_hash)
        appended.setdefault(event.incident_id, []).append(prepared[index][0])
    if not appended:
        return
    by_pk = {incident.pk: incident for incident in open_incidents.values()}
    updated = _bump_counts({by_pk[pk]: signals for pk, signals in appended.items()}, now)
    if len(updated) != len(appended):
        raise _StaleSnapshot
    _count_many({pk: len(signals) for pk, signals in appended.items()}, now)
    for incident_id, (event_count, hour_count) in updated.items():
        incident = by_pk[incident_id]
        incident.event_count, incident.hour_count = event_count, hour_count
        if _is_spike(incident, now):
            _wake(incident, "spike", now)


def _insert_new_events(events: list[Event]) -> list[bool]:
    """INSERT events, skipping retried deliveries; sets the ids and says which were stored.

    The rows travel as one JSON array that PostgreSQL turns into event records: one
    short statement whatever the batch size. A row whose source id is already stored
    in this life of its incident (or earlier in the same array) is skipped by the
    unique index, race-free. PostgreSQL returns the stored rows in array order.
    """
    table = Event._meta.db_table
    columns = ", ".join(connection.ops.quote_name(field.column) for field in _EVENT_FIELDS)
    rows = [{field.column: _json_value(getattr(event, field.attname)) for field in _EVENT_FIELDS} for event in events]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} "  # noqa: S608
            f"FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb) "
            "ON CONFLICT (incident_id, generation, source_id) WHERE source_id <> '' DO NOTHING "
            "RETURNING id, incident_id, source_id",
            [json.dumps(rows)],
        )
        returned = cursor.fetchall()
    stored, position = [], 0
    for event in events:
        if position < len(returned) and returned[position][1:] == (event.incident_id, event.source_id):
            event.pk = returned[position][0]
            position += 1
            stored.append(True)
        else:
            stored.append(False)
    return stored


def _prepare(signals: list[Signal], integration: Integration | None) -> list[tuple[Signal, Fingerprint]]:
    """Fill in defaults, redact, and fingerprint every signal.

    Log signals are grouped by their service's learned templates (`LearnedTemplates`), which
    learn from them: the rows are locked, in service order, for as long as it takes, and
    saved in the same short transaction, so that two batches never learn from a stale copy.
    A learned group is never taken back, so a batch that fails after this point and is
    retried gets the same fingerprints.
    """
    signals = [_redacted(signal, integration) for signal in signals]
    rules = fingerprint_rule_specs()
    services = set()
    if settings.QUENCH_LEARNED_GROUPING:
        services = {signal.service[:200] for signal in signals if signal.kind == SignalKind.LOG}
    if not services:
        return [(signal, compute_fingerprint(signal, rules)) for signal in signals]
    with transaction.atomic():
        rows, books = _lock_learned_templates(sorted(services))
        prepared = []
        for signal in signals:
            book = books[signal.service[:200]] if signal.kind == SignalKind.LOG else None
            prepared.append((signal, compute_fingerprint(signal, rules, book)))
        for service, book in books.items():
            if book.changed:
                row = rows[service]
                row.state = book.to_state()
                row.template_count = len(book.templates)
                row.variant_count = len(book.variants)
                row.save(update_fields=["state", "template_count", "variant_count", "updated_at"])
    return prepared


def _lock_learned_templates(services: list[str]) -> tuple[dict[str, LearnedTemplates], dict[str, TemplateBook]]:
    """The services' rows (created if new, race-free) locked in service order, and their books."""
    LearnedTemplates.objects.bulk_create(
        [LearnedTemplates(service=service) for service in services], ignore_conflicts=True
    )
    rows = {
        row.service: row
        for row in LearnedTemplates.objects.select_for_update().filter(service__in=services).order_by("service")
    }
    books = {
        service: TemplateBook.from_state(row.state, min_values=settings.QUENCH_LEARNED_GROUPING_MIN_VALUES)
        for service, row in rows.items()
    }
    return rows, books


def _redacted(signal: Signal, integration: Integration | None) -> Signal:
    if integration is not None:
        signal.service = signal.service or integration.default_service
        signal.environment = signal.environment or integration.default_environment
        if signal.dedup_key:
            # A dedup key groups only what one integration sends, as PagerDuty's does per routing key.
            signal.dedup_scope = f"integration:{integration.pk}"
    signal.title = redact_text(signal.title or signal.message.split("\n", 1)[0] or signal.alertname or "Untitled")
    signal.message = redact_text(signal.message)
    signal.exception_value = redact_text(signal.exception_value)
    signal.traceback = redact_text(signal.traceback)
    signal.payload = redact(signal.payload)
    signal.labels = {key: redact_text(str(value)) for key, value in signal.labels.items()}
    return signal


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
    # One locked look-up: the open incident of this fingerprint if there is one (at most
    # one, by constraint), else the most recently resolved one.
    latest = (
        Incident.objects.select_for_update()
        .filter(fingerprint=fingerprint.hash)
        .annotate(closed=Q(status=S.RESOLVED))
        .order_by("closed", F("resolved_at").desc(nulls_last=True), "-pk")
        .first()
    )
    incident = latest if latest is not None and latest.status != S.RESOLVED else None
    if incident is None:
        resolved = latest
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
        last_wakeup_at=None if silence else now,
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
        data={
            "severity": incident.severity,
            "severity_reason": incident.severity_reason,
            "category": incident.category,
        },
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
        _write_wakeup(incident, "new", now)  # a new row: nothing to debounce against
    incident_opened.send(sender=Incident, incident=incident)
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
    if new_severity and SEVERITY_RANK[new_severity] < SEVERITY_RANK[incident.severity]:
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
    message = f"Suppressed by silence #{silence.pk}: {silence.comment}"
    apply_transition(incident, S.SUPPRESSED, actor="quench", message=message, now=now)


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
    # Conditional, so that two requests deciding at once (the bulk path holds no lock
    # while it decides) still write one wake-up.
    due = Q(last_wakeup_at__isnull=True) | Q(last_wakeup_at__lt=now - window)
    if not Incident.objects.filter(due, pk=incident.pk).update(last_wakeup_at=now):
        return
    incident.last_wakeup_at = now
    _write_wakeup(incident, reason, now)


def _write_wakeup(incident: Incident, reason: str, now: datetime) -> None:
    """The outbox row, enqueued once the transaction commits (the sweep covers a crash in between)."""
    from incidents.tasks import enqueue_wakeup

    wakeup = IncidentWakeup.objects.create(incident=incident, reason=reason, created_at=now, enqueued_at=now)
    transaction.on_commit(lambda: enqueue_wakeup(wakeup.pk))


_EVENT_FIELDS = [field for field in Event._meta.concrete_fields if not field.primary_key]


def _json_value(value):
    return value.isoformat() if isinstance(value, datetime) else value


def _bump_counts(signals_by_incident: dict[Incident, list[Signal]], now: datetime) -> dict[int, tuple[int, int]]:
    """Add appended events to incidents still in the state they were read in; one statement.

    Returns {incident id: (event_count, hour_count)} for the rows it updated. A missing
    id means that incident changed status or regressed meanwhile.
    """
    hour = _hour(now)
    rows = []
    for incident, signals in sorted(signals_by_incident.items(), key=lambda item: item[0].pk):
        keys = sorted({key for signal in signals for key in _alert_keys_after([], signal)})
        rows.append(
            {
                "id": incident.pk,
                "status": incident.status,
                "generation": incident.regression_count,
                "n": len(signals),
                "keys": keys,
            }
        )
    table = Incident._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS i SET event_count = i.event_count + v.n, "  # noqa: S608
            "last_seen = GREATEST(i.last_seen, %(now)s), updated_at = %(now)s, "
            "hour_count = CASE WHEN i.hour_started_at = %(hour)s THEN i.hour_count + v.n ELSE v.n END, "
            "hour_started_at = %(hour)s, "
            "open_alert_keys = CASE WHEN i.open_alert_keys @> v.keys THEN i.open_alert_keys "
            f"ELSE (SELECT COALESCE(jsonb_agg(k), '[]'::jsonb) FROM (SELECT DISTINCT k FROM "
            f"jsonb_array_elements(i.open_alert_keys || v.keys) AS k LIMIT {MAX_OPEN_ALERT_KEYS}) AS s) END "
            "FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(id bigint, status text, generation integer, n integer, "
            "keys jsonb) WHERE i.id = v.id AND i.status = v.status AND i.regression_count = v.generation "
            "RETURNING i.id, i.event_count, i.hour_count",
            {"now": now, "hour": hour, "rows": json.dumps(rows)},
        )
        return {row[0]: (row[1], row[2]) for row in cursor.fetchall()}


def _count(incident: Incident, now: datetime) -> None:
    _count_many({incident.pk: 1}, now)


def _count_many(counts: dict[int, int], now: datetime) -> None:
    """Add to the incidents' 5-minute frequency buckets, in one statement."""
    epoch = int(now.timestamp())
    bucket = datetime.fromtimestamp(epoch - epoch % IncidentCounter.BUCKET_SECONDS, tz=now.tzinfo)
    table = IncidentCounter._meta.db_table
    rows = sorted(counts.items())
    values = ", ".join(["(%s, %s, %s)"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (incident_id, bucket_start, count) VALUES {values} "  # noqa: S608
            f"ON CONFLICT (incident_id, bucket_start) DO UPDATE SET count = {table}.count + EXCLUDED.count",
            [value for incident_id, n in rows for value in (incident_id, bucket, n)],
        )


def _store_event(incident, signal: Signal, outcome, integration, log_source, now) -> Event:
    event = _event(incident, signal, outcome, integration, log_source, now)
    event.save(force_insert=True)
    return event


def _event(incident, signal: Signal, outcome, integration, log_source, now) -> Event:
    """An unsaved Event row for this signal."""
    return Event(
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
    stored = {
        "module": frame.module,
        "function": frame.function,
        "filename": frame.filename,
        "lineno": frame.lineno,
        "in_app": frame.in_app,
        "context_line": redact_text(frame.context_line),
    }
    if frame.pre_context or frame.post_context:
        # Source lines can hold a hard-coded secret as well as any text: redacted like the traceback.
        stored["pre_context"] = [redact_text(line) for line in frame.pre_context]
        stored["post_context"] = [redact_text(line) for line in frame.post_context]
    if frame.vars:
        # Locals can hold anything a request carried: secrets are redacted like the payload.
        stored["vars"] = redact(dict(frame.vars))
    return stored


def _severity_for(signal: Signal) -> str:
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

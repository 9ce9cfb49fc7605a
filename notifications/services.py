"""Notifications: write the outbox with the change, deliver each row once, retry, escalate, summarize.

- `notify()` runs inside the transaction of the change that causes it (a signal receiver):
  it writes one `Notification` per channel whose routing takes the event, and enqueues their
  delivery on commit, so a rolled-back change notifies nobody.
- `deliver()` is the task body. It claims the row with a conditional update (pending or
  retrying, due → sending), so a re-delivered task, a second worker or a second cluster
  finds nothing to do; it records every attempt as a `Delivery`. Transient failures back
  off exponentially with jitter (or as long as the vendor's Retry-After says) up to
  QUENCH_NOTIFY_MAX_ATTEMPTS, then the row is dead; a permanent refusal disables the channel.
- `sweep()` (scheduled every minute) re-enqueues due retries and rows whose on-commit
  enqueue was lost, marks rows whose worker died mid-send as dead (they may have been
  posted, so they are never resent without a human), and escalates unacknowledged P0/P1s.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Count, F, Q
from django.urls import reverse
from django.utils import timezone

from incidents import analytics
from incidents.choices import IncidentStatus
from incidents.models import Incident
from notifications.choices import CLAIMABLE, DeliveryStatus, NotificationEvent, NotificationStatus
from notifications.messages import build_message
from notifications.models import Channel, Delivery, Notification
from notifications.queue import enqueue_delivery
from notifications.transports import TransportError, transport_for
from remediation.choices import ApprovalStatus
from remediation.models import ApprovalRequest

logger = logging.getLogger(__name__)

E = NotificationEvent
N = NotificationStatus
S = IncidentStatus

MAX_RESPONSE_BODY = 2000
# A row still "sending" this long after its claim lost its worker (far beyond the HTTP timeout).
STALE_SENDING = timedelta(minutes=10)
# A pending row older than this was not picked up by its on-commit task (enqueue lost).
LOST_ENQUEUE = timedelta(seconds=60)
# Statuses in which nobody has acknowledged the incident yet (remediating/verifying: a human approved).
UNACKNOWLEDGED = (S.TRIGGERED, S.REGRESSED, S.DIAGNOSING, S.AWAITING_APPROVAL, S.ESCALATED)
ESCALATING_SEVERITIES = ("P0", "P1")


# --- writing the outbox ------------------------------------------------------------------------


def notify(
    event: str,
    *,
    dedup_key: str,
    incident: Incident | None = None,
    approval=None,
    execution=None,
    diagnosis=None,
    context: dict | None = None,
    escalation: bool = False,
    channels: list[Channel] | None = None,
) -> int:
    """Queue `event` for every channel whose routing takes it; how many rows were written.

    Call it inside the transaction of the change (rows commit with it). `dedup_key` names the
    event: a second call with the same key writes nothing for a channel that already has it.
    `escalation` addresses the escalation channels instead of the others. A database error
    here is logged and swallowed in its own savepoint: a notification problem must never
    undo the incident change that caused it.
    """
    if channels is None:
        channels = Channel.objects.routed(
            event,
            severity=incident.severity if incident is not None else "",
            service=incident.service if incident is not None else "",
            escalation=escalation,
        )
    if not channels:
        return 0
    dedup_key = dedup_key[:200]
    already = set(
        Notification.objects.filter(dedup_key=dedup_key, channel__in=channels).values_list("channel_id", flat=True)
    )
    channels = [channel for channel in channels if channel.pk not in already]
    if not channels:
        return 0
    now = timezone.now()
    rows = [
        Notification(
            channel=channel,
            event=event,
            dedup_key=dedup_key,
            incident=incident,
            approval=approval,
            execution=execution,
            diagnosis=diagnosis,
            context=context or {},
            next_attempt_at=now,
        )
        for channel in channels
    ]
    try:
        with transaction.atomic():
            # ON CONFLICT DO NOTHING on (channel, dedup_key): the constraint, not the look-up above,
            # is what keeps it to one row per event and channel when two writers race.
            Notification.objects.bulk_create(rows, ignore_conflicts=True)
    except DatabaseError:
        logger.exception("writing notifications failed", extra={"event": event, "dedup_key": dedup_key})
        return 0
    channel_ids = [channel.pk for channel in channels]
    transaction.on_commit(lambda: _enqueue_pending(dedup_key, channel_ids), robust=True)
    return len(rows)


def _enqueue_pending(dedup_key: str, channel_ids: list[int]) -> None:
    pending = Notification.objects.filter(dedup_key=dedup_key, channel_id__in=channel_ids, status=N.PENDING)
    for notification_id in pending.values_list("pk", flat=True):
        enqueue_delivery(notification_id)


def send_test(channel_id: int) -> Notification:
    """Queue a test message to one channel (sent even while it is disabled, to check a fix)."""
    channel = Channel.objects.get(pk=channel_id)
    with transaction.atomic():
        notification = Notification.objects.create(
            channel=channel,
            event=E.TEST,
            dedup_key=f"test:{uuid.uuid4().hex}",
            context={
                "title": f"Test of channel “{channel.name}”",
                "lines": ["If you can read this, Quench can reach this channel."],
                "url": settings.SITE_URL + reverse("admin:notifications_channel_change", args=[channel.pk]),
            },
            next_attempt_at=timezone.now(),
        )
        notification_id = notification.pk
        transaction.on_commit(lambda: enqueue_delivery(notification_id), robust=True)
    return notification


def resend(notification_id: int) -> bool:
    """Send a dead (or skipped) notification again with a fresh attempt budget; False if it is not dead."""
    now = timezone.now()
    with transaction.atomic():
        updated = Notification.objects.filter(pk=notification_id, status__in=(N.DEAD, N.SKIPPED)).update(
            status=N.PENDING,
            next_attempt_at=now,
            claimed_at=None,
            budget_start=F("attempts"),
            last_error="",
            updated_at=now,
        )
        if updated:
            transaction.on_commit(lambda: enqueue_delivery(notification_id), robust=True)
    return bool(updated)


# --- delivering --------------------------------------------------------------------------------


def deliver(notification_id: int, *, now: datetime | None = None) -> str:
    """Send one notification if it is due and nobody else has it; what happened, for the task result."""
    now = now or timezone.now()
    claimed = Notification.objects.filter(pk=notification_id, status__in=CLAIMABLE, next_attempt_at__lte=now).update(
        status=N.SENDING, claimed_at=now, attempts=F("attempts") + 1, updated_at=now
    )
    if not claimed:
        return "not due, already sent, or taken by another worker"
    notification = Notification.objects.select_related("channel", "incident", "approval", "execution", "diagnosis").get(
        pk=notification_id
    )
    channel = notification.channel
    if not channel.enabled and notification.event != E.TEST:
        _settle(notification, N.SKIPPED, error=f"The channel is disabled. {channel.disabled_reason}".strip())
        return "skipped: channel disabled"
    started = time.monotonic()
    try:
        message = build_message(notification)
        sent = transport_for(channel).send(message, reply_to=_thread_of(notification))
    except TransportError as exc:
        return _failed(notification, exc, _elapsed(started))
    except Exception as exc:  # a bug of ours must still be recorded, retried and visible
        logger.exception("building or sending a notification failed", extra=_log_fields(notification))
        return _failed(notification, TransportError(f"Internal error: {type(exc).__name__}"), _elapsed(started))
    with transaction.atomic():
        Delivery.objects.create(
            notification=notification,
            attempt=notification.attempts,
            status=DeliveryStatus.SENT,
            response_code=sent.status_code,
            response_body=sent.body[:MAX_RESPONSE_BODY],
            duration_ms=_elapsed(started),
        )
        Notification.objects.filter(pk=notification.pk, status=N.SENDING).update(
            status=N.SENT, sent_at=timezone.now(), external_id=sent.external_id[:100], last_error="", updated_at=now
        )
    logger.info("notification sent", extra=_log_fields(notification))
    return "sent"


def _elapsed(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _log_fields(notification: Notification) -> dict:
    return {
        "notification_id": notification.pk,
        "channel_id": notification.channel_id,
        "event": notification.event,
        "incident_id": notification.incident_id,
    }


def _thread_of(notification: Notification) -> str:
    """The vendor id of the first message about the same incident on the same channel (replies go under it)."""
    if notification.incident_id is None:
        return ""
    return (
        Notification.objects.filter(
            channel_id=notification.channel_id, incident_id=notification.incident_id, status=N.SENT
        )
        .exclude(external_id="")
        .exclude(pk=notification.pk)
        .order_by("sent_at")
        .values_list("external_id", flat=True)
        .first()
        or ""
    )


def retry_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds before the next try: the vendor's Retry-After if it gave one, else exponential with jitter.

    Exponential: base × 2^(attempt-1), capped, then "equal jitter" (half fixed, half random), so
    many channels failing together do not retry in lockstep.
    """
    if retry_after is not None:
        return retry_after + random.uniform(0, min(5.0, retry_after * 0.1))
    delay = min(
        settings.QUENCH_NOTIFY_RETRY_MAX_SECONDS, settings.QUENCH_NOTIFY_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
    )
    return delay / 2 + random.uniform(0, delay / 2)


def _failed(notification: Notification, exc: TransportError, duration_ms: int) -> str:
    now = timezone.now()
    attempt = notification.attempts
    used = attempt - notification.budget_start
    next_retry = None
    if exc.permanent:
        delivery_status, status = DeliveryStatus.PERMANENT, N.DEAD
    elif not exc.retry or used >= settings.QUENCH_NOTIFY_MAX_ATTEMPTS:
        delivery_status, status = DeliveryStatus.DEAD, N.DEAD
    else:
        delivery_status, status = DeliveryStatus.RETRY, N.RETRYING
        next_retry = now + timedelta(seconds=retry_delay(used, exc.retry_after))
    with transaction.atomic():
        Delivery.objects.create(
            notification=notification,
            attempt=attempt,
            status=delivery_status,
            response_code=exc.status_code,
            response_body=(exc.body or "")[:MAX_RESPONSE_BODY],
            error=exc.message[:1000],
            duration_ms=duration_ms,
            next_retry_at=next_retry,
        )
        fields = {"status": status, "last_error": exc.message[:1000], "updated_at": now}
        if next_retry is not None:
            fields["next_attempt_at"] = next_retry
        Notification.objects.filter(pk=notification.pk, status=N.SENDING).update(**fields)
        if exc.permanent:
            disable_channel(notification.channel_id, reason=exc.message)
    logger.warning(
        "notification failed",
        extra={**_log_fields(notification), "attempt": attempt, "outcome": delivery_status, "error": exc.message[:300]},
    )
    return str(delivery_status.value)


def _settle(notification: Notification, status: str, *, error: str) -> None:
    Notification.objects.filter(pk=notification.pk, status=N.SENDING).update(
        status=status, last_error=error[:1000], updated_at=timezone.now()
    )


def disable_channel(channel_id: int, *, reason: str) -> None:
    """Turn a channel off because its vendor refused it for good, saying why (shown in the admin)."""
    Channel.objects.filter(pk=channel_id, enabled=True).update(
        enabled=False, disabled_reason=reason[:500], disabled_at=timezone.now(), updated_at=timezone.now()
    )
    logger.warning("notification channel disabled", extra={"channel_id": channel_id, "reason": reason[:300]})


# --- the sweeper -------------------------------------------------------------------------------


def sweep(*, now: datetime | None = None) -> dict[str, int]:
    """One pass (every minute): retries due, lost enqueues, dead workers, escalations."""
    now = now or timezone.now()
    counts = {"stale": _bury_stale_sends(now)}
    due = Notification.objects.filter(
        Q(status=N.RETRYING, next_attempt_at__lte=now) | Q(status=N.PENDING, created_at__lte=now - LOST_ENQUEUE)
    ).values_list("pk", flat=True)[:500]
    counts["enqueued"] = 0
    for notification_id in due:
        enqueue_delivery(notification_id)
        counts["enqueued"] += 1
    counts["escalated"] = escalate_unacknowledged(now=now)
    return {name: value for name, value in counts.items() if value}


def _bury_stale_sends(now: datetime) -> int:
    """Rows left "sending" by a dead worker: maybe posted, so dead (resend is a human's call), never resent."""
    stale = list(
        Notification.objects.filter(status=N.SENDING, claimed_at__lt=now - STALE_SENDING).values_list("pk", "attempts")
    )
    why = "The worker stopped while sending; it may have been delivered, so it is not resent automatically."
    for notification_id, attempt in stale:
        with transaction.atomic():
            if Notification.objects.filter(pk=notification_id, status=N.SENDING).update(
                status=N.DEAD, last_error=why, updated_at=now
            ):
                Delivery.objects.get_or_create(
                    notification_id=notification_id,
                    attempt=attempt,
                    defaults={"status": DeliveryStatus.UNKNOWN, "error": why},
                )
    return len(stale)


# --- escalation --------------------------------------------------------------------------------


def escalate_unacknowledged(*, now: datetime | None = None) -> int:
    """P0/P1 incidents nobody acknowledged: remind after QUENCH_ESCALATE_AFTER_MINUTES, then page escalation channels.

    The clock starts when the incident opened or last regressed; acknowledging (or approving a
    fix) stops it. The first step re-notifies the incident's normal channels, the second (twice
    the delay) goes to the escalation channels. Each step is one dedup key per incident life,
    so a pass every minute sends each once.
    """
    now = now or timezone.now()
    after = timedelta(minutes=settings.QUENCH_ESCALATE_AFTER_MINUTES)
    horizon = now - timedelta(days=7)  # older unacknowledged incidents were escalated long ago
    candidates = Incident.objects.filter(
        severity__in=ESCALATING_SEVERITIES, status__in=UNACKNOWLEDGED, created_at__gte=horizon
    ).filter(Q(acknowledged_at__isnull=True) | Q(regressed_at__isnull=False, acknowledged_at__lt=F("regressed_at")))
    # Not due yet (opened or regressed within the delay): no need to lock them to find that out.
    due = now - after
    candidates = candidates.filter(
        Q(regressed_at__isnull=True, created_at__lte=due) | Q(regressed_at__isnull=False, regressed_at__lte=due)
    )
    written = 0
    for incident_id in candidates.values_list("pk", flat=True):
        with transaction.atomic():
            incident = Incident.objects.select_for_update().get(pk=incident_id)
            if incident.status not in UNACKNOWLEDGED:
                continue
            since = incident.regressed_at or incident.created_at
            waited = now - since
            life = f"incident-{incident.pk}:{incident.regression_count}"
            minutes = int(waited.total_seconds() // 60)
            if waited >= after:
                written += notify(
                    E.INCIDENT_UNACKNOWLEDGED,
                    dedup_key=f"unacknowledged:{life}:reminder",
                    incident=incident,
                    context={"reason": f"Nobody has acknowledged this {incident.severity} for {minutes} minutes."},
                )
            if waited >= 2 * after:
                written += notify(
                    E.INCIDENT_UNACKNOWLEDGED,
                    dedup_key=f"unacknowledged:{life}:escalation",
                    incident=incident,
                    escalation=True,
                    context={
                        "reason": f"Escalated: nobody has acknowledged this {incident.severity} for {minutes} minutes."
                    },
                )
    return written


# --- daily summary -----------------------------------------------------------------------------


def daily_figures(day: date) -> dict:
    """What happened on `day` (UTC): incidents opened by severity and by current status, resolved, open approvals."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    opened = Incident.objects.filter(created_at__gte=start, created_at__lt=end)
    by_severity = dict(opened.values_list("severity").annotate(n=Count("pk")).order_by("severity"))
    by_status = dict(opened.values_list("status").annotate(n=Count("pk")).order_by("status"))
    return {
        "day": day.isoformat(),
        "opened": sum(by_severity.values()),
        "opened_by_severity": by_severity,
        "opened_by_status": by_status,
        "resolved": Incident.objects.filter(resolved_at__gte=start, resolved_at__lt=end).count(),
        "open_incidents": Incident.objects.exclude(status__in=(S.RESOLVED, S.SUPPRESSED)).count(),
        "open_approvals": ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING).count(),
        # The dashboard's figures for the same day (one definition of MTTA, MTTR and endings).
        **_dashboard_figures(end),
    }


def _dashboard_figures(end: datetime) -> dict:
    day = analytics.summary(1, now=end)
    return {
        "mtta_seconds": day["mtta_seconds"],
        "mttr_seconds": day["mttr_seconds"],
        "endings": {ending: count for ending, count in day["endings"].items() if count},
        "noisiest": day["noisiest_fingerprints"][:1],
    }


def summary_lines(figures: dict) -> list[str]:
    """The daily summary as lines of text (every transport shows them)."""

    def spread(counts: dict) -> str:
        return ", ".join(f"{key} {value}" for key, value in counts.items()) or "none"

    return [
        f"Incidents opened: {figures['opened']} ({spread(figures['opened_by_severity'])})",
        f"Those incidents now: {spread(figures['opened_by_status'])}",
        f"Resolved that day: {figures['resolved']}",
        f"Open incidents now: {figures['open_incidents']}",
        f"Approvals waiting: {figures['open_approvals']}",
        f"Of those: MTTA {analytics.duration_text(figures['mtta_seconds'])}, MTTR {analytics.duration_text(figures['mttr_seconds'])}",
        f"How they ended: {spread(figures['endings'])}",
        *[f"Noisiest: #{top['incident_id']} {top['title']} ({top['events']} events)" for top in figures["noisiest"]],
    ]


def send_daily_summary(*, now: datetime | None = None) -> int:
    """Queue yesterday's summary to the channels that take it, once per day, from QUENCH_DAILY_SUMMARY_HOUR (UTC)."""
    now = now or timezone.now()
    if now.astimezone(UTC).hour < settings.QUENCH_DAILY_SUMMARY_HOUR:
        return 0
    day = now.astimezone(UTC).date() - timedelta(days=1)
    key = f"daily_summary:{day.isoformat()}"
    # Channels that have the day's summary already are left out before its figures are computed.
    sent = set(Notification.objects.filter(dedup_key=key).values_list("channel_id", flat=True))
    channels = [channel for channel in Channel.objects.routed(E.DAILY_SUMMARY) if channel.pk not in sent]
    if not channels:
        return 0
    figures = daily_figures(day)
    with transaction.atomic():
        return notify(
            E.DAILY_SUMMARY,
            dedup_key=key,
            channels=channels,
            context={
                "title": f"Quench daily summary for {day.isoformat()}",
                "lines": summary_lines(figures),
                "figures": figures,
                "url": settings.SITE_URL + reverse("admin:incidents_incident_changelist"),
            },
        )


# --- for the watchdog --------------------------------------------------------------------------


def undelivered_approvals(older_than: timedelta):
    """Pending approvals requested more than `older_than` ago that no channel has been told about successfully."""
    cutoff = timezone.now() - older_than
    told = Notification.objects.filter(event=E.APPROVAL_REQUESTED, status=N.SENT).values("approval_id")
    return (
        ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING, created_at__lte=cutoff)
        .exclude(pk__in=told.filter(approval_id__isnull=False))
        .order_by("created_at")
    )


def dead_deliveries_count(since: datetime | None = None) -> int:
    """Notifications Quench gave up on (dead), waiting for a human to fix the channel and resend.

    With `since`, only those that died since then (a dead row's `updated_at` is when it died).
    """
    dead = Notification.objects.filter(status=N.DEAD)
    if since is not None:
        dead = dead.filter(updated_at__gte=since)
    return dead.count()

"""django-q2 tasks of the incidents app. Every task takes primary keys and is idempotent.

The ORM broker delivers at least once: a task whose worker died runs again after
`retry` seconds, so each task claims its work with a conditional update first.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from incidents import postmortems, watchdog
from incidents.choices import ActivityKind
from incidents.models import Incident, IncidentCounter, IncidentWakeup, LogSource
from incidents.services.lifecycle import record_activity
from incidents.signals import incident_needs_attention

logger = logging.getLogger(__name__)

WAKEUP_TASK = "incidents.tasks.handle_wakeup"
# A wake-up not handled this long after it was written, or last enqueued, is enqueued
# again by the sweep (longer than the queue's own retry, so a slow cluster isn't flooded).
WAKEUP_REDELIVERY_AFTER = timedelta(minutes=15)


def enqueue_wakeup(wakeup_id: int) -> None:
    """Hand a written wake-up to the queue (called on commit, and by the sweep)."""
    async_task(WAKEUP_TASK, wakeup_id, task_name=f"wakeup-{wakeup_id}", group="wakeups")


def handle_wakeup(wakeup_id: int) -> bool:
    """The "incident needs attention" step: claim the wake-up once and record it on the timeline.

    Diagnosis hangs on this task (see the remediation app); handling is idempotent, so
    a redelivered task returns False and does nothing.
    """
    with transaction.atomic():
        claimed = IncidentWakeup.objects.filter(pk=wakeup_id, handled_at__isnull=True).update(handled_at=timezone.now())
        if not claimed:
            return False
        wakeup = IncidentWakeup.objects.select_related("incident").get(pk=wakeup_id)
        record_activity(
            wakeup.incident,
            ActivityKind.WAKEUP,
            f"Needs attention ({wakeup.reason})",
            data={"wakeup_id": wakeup.pk, "reason": wakeup.reason},
        )
    logger.info("incident needs attention", extra={"incident_id": wakeup.incident_id, "reason": wakeup.reason})
    incident_needs_attention.send(sender=Incident, incident_id=wakeup.incident_id, reason=wakeup.reason)
    return True


def sweep_wakeups() -> int:
    """Re-enqueue wake-ups whose task never ran (process died between commit and enqueue, lost task)."""
    cutoff = timezone.now() - WAKEUP_REDELIVERY_AFTER
    stale = list(
        IncidentWakeup.objects.filter(handled_at__isnull=True, created_at__lt=cutoff)
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=cutoff))
        .values_list("pk", flat=True)[:500]
    )
    for wakeup_id in stale:
        IncidentWakeup.objects.filter(pk=wakeup_id).update(enqueued_at=timezone.now())
        enqueue_wakeup(wakeup_id)
    return len(stale)


def prune_counters(days: int = 8) -> int:
    """Frequency counters older than the longest window (7 days) are no longer read."""
    deleted, _ = IncidentCounter.objects.filter(bucket_start__lt=timezone.now() - timedelta(days=days)).delete()
    return deleted


def tail_all_log_sources() -> int:
    """Scheduled: read what each enabled LogSource has appended since the last pass."""
    from incidents.logtail import tail_log_source

    total = 0
    for source_id in LogSource.objects.filter(enabled=True).values_list("pk", flat=True):
        try:
            total += tail_log_source(source_id).signals
        except Exception:
            logger.exception("tailing log source failed", extra={"log_source_id": source_id})
    return total


def heartbeat() -> None:
    """Scheduled every minute: proves to /healthz that the scheduler and a worker are alive."""
    from incidents.models import Heartbeat

    Heartbeat.objects.update_or_create(name="scheduler", defaults={"beat_at": timezone.now()})


def draft_postmortem(incident_id: int, actor: str = "quench", redraft: bool = False) -> int | None:
    """Draft (or, asked from the admin, redraft) an incident's postmortem; the postmortem's id.

    Idempotent: a redelivered first draft finds the postmortem and changes nothing.
    """
    try:
        postmortem = postmortems.draft_postmortem(incident_id, actor=actor, redraft=redraft)
    except postmortems.PostmortemRefused as exc:
        logger.info("postmortem not redrafted: %s", exc.message, extra={"incident_id": incident_id})
        return None
    return postmortem.pk if postmortem else None


def run_watchdog() -> dict[str, str]:
    """Scheduled every minute: Quench's self-check (see incidents.watchdog)."""
    return watchdog.run_watchdog()

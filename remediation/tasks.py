"""django-q2 tasks of the remediation app. They take primary keys and are idempotent.

Diagnosis and fix attempts are slow (LLM calls, sandboxed test runs), so each runs in a
task of its own; `Q_TIMEOUT` must cover one sandbox run (QUENCH_SANDBOX_TIMEOUT_SECONDS)
plus an LLM call.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from remediation import services
from remediation.choices import DiagnosisStatus

logger = logging.getLogger(__name__)

# A queued diagnosis not started, or a running one not touched, for this long lost its task.
STALE_AFTER = timedelta(minutes=20)


def enqueue_diagnosis(diagnosis_id: int) -> None:
    async_task(
        "remediation.tasks.run_diagnosis", diagnosis_id, task_name=f"diagnosis-{diagnosis_id}", group="diagnosis"
    )


def enqueue_fix_attempt(diagnosis_id: int, number: int) -> None:
    async_task(
        "remediation.tasks.run_fix_attempt",
        diagnosis_id,
        number,
        task_name=f"fix-{diagnosis_id}-{number}",
        group="diagnosis",
    )


def run_diagnosis(diagnosis_id: int) -> str:
    """Diagnose an incident and start the remediation the diagnosis recommends."""
    return services.run_diagnosis(diagnosis_id)


def run_fix_attempt(diagnosis_id: int, number: int) -> str:
    """Write, sandbox-test and critique fix attempt `number` of a diagnosis."""
    return services.run_fix_attempt(diagnosis_id, number)


def sweep() -> dict[str, int]:
    """Scheduled every 5 minutes: expire overdue approvals, re-drive lost diagnoses, remove dead sandboxes."""
    from remediation.models import Diagnosis

    cutoff = timezone.now() - STALE_AFTER
    stale = Diagnosis.objects.filter(
        Q(status=DiagnosisStatus.QUEUED, created_at__lt=cutoff)
        | Q(status=DiagnosisStatus.RUNNING, updated_at__lt=cutoff)
    )
    redriven = 0
    for diagnosis in stale[:100]:
        Diagnosis.objects.filter(pk=diagnosis.pk).update(updated_at=timezone.now())
        if diagnosis.status == DiagnosisStatus.QUEUED or not diagnosis.provider:
            enqueue_diagnosis(diagnosis.pk)
        else:
            enqueue_fix_attempt(diagnosis.pk, max(1, diagnosis.attempts.count()))
        redriven += 1
    expired = services.expire_overdue_approvals()
    from django.conf import settings

    from remediation.sandbox import sweep_stale_sandboxes

    # Twice the task timeout: no live sandbox run is that old.
    removed = sweep_stale_sandboxes(older_than_seconds=2 * settings.Q_CLUSTER["timeout"])
    counts = {"redriven": redriven, "expired": expired, "sandboxes_removed": removed}
    if any(counts.values()):
        logger.info("remediation sweep", extra=counts)
    return counts

"""django-q2 tasks of the remediation app. They take primary keys and are idempotent.

Diagnosis and fix attempts are slow (LLM calls, sandboxed test runs), so each runs in a
task of its own; `Q_TIMEOUT` must cover one sandbox run (QUENCH_SANDBOX_TIMEOUT_SECONDS)
plus an LLM call.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from remediation import approvals, execution, learning, services, verification
from remediation.choices import DiagnosisStatus, ExecutionStatus
from remediation.models import Diagnosis, Execution
from remediation.queue import enqueue_diagnosis, enqueue_execution, enqueue_fix_attempt
from remediation.sandbox import sweep_stale_sandboxes

logger = logging.getLogger(__name__)

# A queued diagnosis not started, or a running one not touched, for this long lost its task.
STALE_AFTER = timedelta(minutes=20)


def run_diagnosis(diagnosis_id: int) -> str:
    """Diagnose an incident and start the remediation the diagnosis recommends."""
    return services.run_diagnosis(diagnosis_id)


def run_fix_attempt(diagnosis_id: int, number: int) -> str:
    """Write, sandbox-test and critique fix attempt `number` of a diagnosis."""
    return services.run_fix_attempt(diagnosis_id, number)


def run_execution(execution_id: int) -> str:
    """Carry out an approved proposal: publish the fix (branch, pull request) or run the playbook."""
    return execution.run_execution(execution_id)


def approve_by_policy(approval_id: int) -> str:
    """Approve a low-risk auto-approve playbook proposal without a human (recorded as policy)."""
    approval = approvals.approve_by_policy(approval_id)
    return "approved by policy" if approval else "not eligible or already decided"


def watch_executions() -> dict[str, int]:
    """Scheduled every minute: one verification pass (merge, health check, quiet window)."""
    counts = verification.watch_executions()
    if any(key not in ("waiting", "quiet") for key in counts):
        logger.info("verification pass", extra=counts)
    return counts


def record_fix_knowledge(execution_id: int) -> int | None:
    """Write what the remediation of the execution's incident taught into the knowledge base."""
    entry = learning.record_fix_knowledge(execution_id)
    return entry.pk if entry else None


def sweep() -> dict[str, int]:
    """Scheduled every 5 minutes: expire overdue approvals, re-drive lost diagnoses and executions,
    remove dead sandboxes."""
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
    # An approved execution whose task was lost (claimed by a dead worker, or never run).
    lost = Execution.objects.filter(status=ExecutionStatus.RUNNING).filter(
        Q(claimed_at__isnull=True, created_at__lt=cutoff) | Q(claimed_at__lt=cutoff)
    )
    for execution_id in lost.values_list("pk", flat=True)[:100]:
        enqueue_execution(execution_id)
        redriven += 1
    expired = approvals.expire_overdue_approvals()
    # Twice the task timeout: no live sandbox run is that old.
    removed = sweep_stale_sandboxes(older_than_seconds=2 * settings.Q_CLUSTER["timeout"])
    counts = {"redriven": redriven, "expired": expired, "sandboxes_removed": removed}
    if any(counts.values()):
        logger.info("remediation sweep", extra=counts)
    return counts

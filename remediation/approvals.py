"""Deciding proposals: approve, reject with feedback, supersede and expire.

Every decision locks the incident, then its approval (`select_for_update`, always in that
order, the order `request_approval` and `request_diagnosis` use too), checks that the
approval is still pending and not past its expiry, and writes the decision, the incident's
transition and its timeline entry in one transaction. So an approval racing its expiry,
a second reviewer or a reanalysis is decided exactly once; the loser is told why
(`ApprovalRefused`, a 409 in the API).

Approving creates the `Execution` and hands it to the queue on commit; rejecting a code
fix puts the same diagnosis back to work on a new attempt that is given the reviewer's
words verbatim (`FixAttempt.feedback_used`).
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from incidents.choices import ActivityKind, IncidentStatus
from incidents.models import Incident
from incidents.services.lifecycle import TransitionRefused, apply_transition, record_activity
from remediation.choices import (
    VERIFICATION_OPEN,
    ApprovalStatus,
    DiagnosisStatus,
    ExecutionStatus,
    ProposalKind,
    VerificationStatus,
)
from remediation.models import ApprovalRequest, Diagnosis, Execution, Playbook
from remediation.queue import enqueue_execution, enqueue_fix_attempt
from remediation.services import _escalate_incident, _supersede_pending_approvals, review_round
from remediation.signals import approval_expired, execution_started

logger = logging.getLogger(__name__)

S = IncidentStatus
APPROVE_PERMISSION = "remediation.approve_remediation"
POLICY = "policy"
MAX_TEXT = 10_000

# Status changes that make a pending proposal moot, and how the approval says why.
SUPERSEDING_TRANSITIONS = {
    S.RESOLVED: "the incident was resolved",
    S.ACKNOWLEDGED: "the incident was acknowledged (won't fix now)",
    S.SUPPRESSED: "the incident was silenced",
    S.DIAGNOSING: "the incident is being diagnosed again",
}


class ApprovalRefused(TransitionRefused):
    """The approval can no longer be decided (decided, expired, superseded); the API answers 409."""


def can_approve(user) -> bool:
    """Whether `user` may decide proposals: active, staff, with the approve_remediation permission."""
    return bool(
        user is not None
        and getattr(user, "is_active", False)
        and getattr(user, "is_staff", False)
        and user.has_perm(APPROVE_PERMISSION)
    )


def _require_approver(user) -> str:
    if not can_approve(user):
        raise PermissionDenied("You need the “approve remediation” permission (the Approvers group) to decide.")
    return user.get_username()


def _lock_pending(approval_id: int, *, now) -> tuple[Incident, ApprovalRequest]:
    """Lock the approval's incident, then the approval; refuse unless it is pending and unexpired.

    Callers are inside `transaction.atomic()` and have run `_expire_if_overdue` first, so an
    approval past its expiry is already expired (and its incident escalated) when refused.
    """
    incident_id = ApprovalRequest.objects.filter(pk=approval_id).values_list("incident_id", flat=True).first()
    if incident_id is None:
        raise ApprovalRequest.DoesNotExist(f"Approval #{approval_id} does not exist.")
    incident = Incident.objects.select_for_update().get(pk=incident_id)
    approval = ApprovalRequest.objects.select_for_update().get(pk=approval_id)
    if approval.status == ApprovalStatus.PENDING and approval.expires_at <= now:
        raise ApprovalRefused(
            f"Approval #{approval.pk} expired at {approval.expires_at:%Y-%m-%d %H:%M:%S} UTC.",
            incident_id=incident.pk,
            current_status=ApprovalStatus.EXPIRED,
        )
    if approval.status != ApprovalStatus.PENDING:
        who = f" by {approval.decided_by}" if approval.decided_by else ""
        when = f" at {approval.decided_at:%Y-%m-%d %H:%M:%S} UTC" if approval.decided_at else ""
        why = f" ({approval.decision_reason})" if approval.decision_reason else ""
        raise ApprovalRefused(
            f"Approval #{approval.pk} is no longer pending: it was {approval.status}{who}{when}{why}.",
            incident_id=incident.pk,
            current_status=approval.status,
        )
    return incident, approval


def _expire_if_overdue(approval_id: int, *, now) -> None:
    """Expire the approval now if it is pending past its expiry (committed, unlike a refusal)."""
    with transaction.atomic():
        incident_id = (
            ApprovalRequest.objects.filter(pk=approval_id, status=ApprovalStatus.PENDING, expires_at__lte=now)
            .values_list("incident_id", flat=True)
            .first()
        )
        if incident_id is None:
            return
        incident = Incident.objects.select_for_update().get(pk=incident_id)
        approval = ApprovalRequest.objects.select_for_update().get(pk=approval_id)
        if approval.status == ApprovalStatus.PENDING:
            _expire_locked(incident, approval, now=now)


def approve(approval_id: int, *, user, note: str = "") -> ApprovalRequest:
    """Approve a pending proposal: record who and why, start its execution, move the incident to remediating.

    Raises PermissionDenied without the approve_remediation permission, ApprovalRefused
    when the approval is not pending any more.
    """
    actor = _require_approver(user)
    return _approve(approval_id, actor=actor, note=note.strip()[:MAX_TEXT])


def _approve(approval_id: int, *, actor: str, note: str, reason: str = "") -> ApprovalRequest:
    now = timezone.now()
    _expire_if_overdue(approval_id, now=now)
    with transaction.atomic():
        incident, approval = _lock_pending(approval_id, now=now)
        if incident.status != S.AWAITING_APPROVAL:
            raise ApprovalRefused(
                f"Incident #{incident.pk} is {incident.status}, not awaiting approval.",
                incident_id=incident.pk,
                current_status=incident.status,
            )
        approval.status, approval.decided_by, approval.decided_at = ApprovalStatus.APPROVED, actor, now
        approval.note, approval.decision_reason = note, reason[:300]
        approval.save(update_fields=["status", "decided_by", "decided_at", "note", "decision_reason"])
        execution = Execution.objects.create(
            approval=approval, incident=incident, kind=approval.kind, status=ExecutionStatus.RUNNING
        )
        if approval.playbook_id:
            Playbook.objects.filter(pk=approval.playbook_id).update(last_run_at=now)
        by = f"by {actor}" + (f" ({reason})" if reason else "")
        apply_transition(
            incident,
            S.REMEDIATING,
            actor=actor,
            message=f"{approval.get_kind_display()} #{approval.pk} approved {by}" + (f": {note}" if note else ""),
            now=now,
        )
        incident.save(update_fields=["status", "updated_at"])
        execution_started.send(sender=Execution, execution=execution)
        execution_id = execution.pk
        transaction.on_commit(lambda: enqueue_execution(execution_id), robust=True)
    logger.info("proposal approved", extra={"incident_id": incident.pk, "approval_id": approval.pk, "actor": actor})
    return approval


def approve_by_policy(approval_id: int) -> ApprovalRequest | None:
    """Run a low-risk auto-approve playbook without a human, recorded as decided by policy with the reason."""
    approval = ApprovalRequest.objects.select_related("playbook").get(pk=approval_id)
    playbook = approval.playbook
    if approval.kind != ProposalKind.PLAYBOOK or playbook is None or not playbook.auto_approve:
        return None
    if playbook.risk_level != "low":
        return None
    try:
        return _approve(
            approval_id,
            actor=POLICY,
            note="",
            reason=f"playbook “{playbook.name}” is low risk and allowed to run without approval",
        )
    except ApprovalRefused:
        return None


def reject(approval_id: int, *, user, feedback: str) -> ApprovalRequest:
    """Reject a pending proposal with feedback that the next attempt must use.

    A code fix goes back to its diagnosis: a new fix attempt (a new review round, with a
    fresh attempt budget) is queued and given the feedback verbatim; a passing attempt
    becomes a new pending approval. A rejected playbook leaves the incident acknowledged
    for a human (reanalyze for another proposal).
    """
    actor = _require_approver(user)
    feedback = (feedback or "").strip()
    if not feedback:
        raise ValueError("Say why you reject it: the next attempt is written from your feedback.")
    feedback = feedback[:MAX_TEXT]
    now = timezone.now()
    _expire_if_overdue(approval_id, now=now)
    with transaction.atomic():
        incident, approval = _lock_pending(approval_id, now=now)
        approval.status, approval.decided_by, approval.decided_at = ApprovalStatus.REJECTED, actor, now
        approval.feedback = feedback
        approval.save(update_fields=["status", "decided_by", "decided_at", "feedback"])
        what = f"{approval.get_kind_display()} #{approval.pk} rejected by {actor}: {feedback[:500]}"
        if approval.kind == ProposalKind.CODE_FIX and incident.status == S.AWAITING_APPROVAL:
            number = _reopen_for_revision(incident, approval, actor=actor, message=what, now=now)
            diagnosis_id = approval.diagnosis_id
            transaction.on_commit(lambda: enqueue_fix_attempt(diagnosis_id, number), robust=True)
        elif incident.status == S.AWAITING_APPROVAL:
            apply_transition(
                incident,
                S.ACKNOWLEDGED,
                actor=actor,
                message=f"{what}. Reanalyze for another proposal, or resolve it by hand.",
                now=now,
            )
            incident.save(update_fields=["status", "acknowledged_at", "updated_at"])
        else:
            record_activity(incident, ActivityKind.NOTE, what, actor=actor)
    logger.info("proposal rejected", extra={"incident_id": incident.pk, "approval_id": approval.pk, "actor": actor})
    return approval


def _reopen_for_revision(incident: Incident, approval: ApprovalRequest, *, actor: str, message: str, now) -> int:
    """Put the rejected fix's diagnosis back in flight for a new attempt; the attempt's number."""
    diagnosis = Diagnosis.objects.select_for_update().get(pk=approval.diagnosis_id)
    number = (diagnosis.attempts.aggregate(top=Max("number"))["top"] or 0) + 1
    try:
        with transaction.atomic():
            Diagnosis.objects.filter(pk=diagnosis.pk).update(
                status=DiagnosisStatus.RUNNING,
                outcome=f"revising after review (round {review_round(diagnosis)})",
                finished_at=None,
                updated_at=now,
            )
    except IntegrityError:
        raise ApprovalRefused(
            f"Incident #{incident.pk} already has another diagnosis in flight; it supersedes this proposal.",
            incident_id=incident.pk,
            current_status=incident.status,
        ) from None
    apply_transition(
        incident,
        S.DIAGNOSING,
        actor=actor,
        message=f"{message}. Fix attempt {number} will follow the feedback.",
        now=now,
    )
    incident.save(update_fields=["status", "updated_at"])
    return number


def supersede_on_transition(sender, *, incident, from_status, to_status, actor, **kwargs) -> None:
    """A human resolved, acknowledged (won't fix now) or reanalyzed the incident: its proposal is moot.

    Runs inside the transition's transaction (an `incident_transitioned` receiver), with the
    incident locked; verification of an execution in flight ends with the same reason.
    """
    reason = SUPERSEDING_TRANSITIONS.get(to_status)
    if reason is None:
        return
    now = timezone.now()
    superseded = _supersede_pending_approvals(incident, now=now, actor=actor, reason=f"{reason} by {actor}")
    if superseded:
        record_activity(incident, ActivityKind.NOTE, f"The pending proposal is superseded: {reason}.", actor=actor)
    if to_status == S.RESOLVED and actor != "quench":
        Execution.objects.filter(incident=incident, verification__in=_OPEN).update(
            verification=VerificationStatus.ENDED,
            verification_note=f"Resolved by {actor} before verification finished.",
            updated_at=now,
        )


# Verification not finished yet, including an execution still running.
_OPEN = (VerificationStatus.PENDING, *VERIFICATION_OPEN)


def _expire_locked(incident: Incident, approval: ApprovalRequest, *, now) -> None:
    approval.status, approval.decided_at, approval.decided_by = ApprovalStatus.EXPIRED, now, "quench"
    approval.decision_reason = "nobody decided before it expired"
    approval.save(update_fields=["status", "decided_at", "decided_by", "decision_reason"])
    approval_expired.send(sender=ApprovalRequest, approval=approval)
    _escalate_incident(incident.pk, f"Proposal #{approval.pk} expired without a decision; a human must look.")


def expire_overdue_approvals(*, now=None) -> int:
    """Pending approvals past expires_at become expired; their incidents are escalated."""
    now = now or timezone.now()
    expired = 0
    overdue = ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING, expires_at__lt=now)
    for approval_id, incident_id in overdue.values_list("pk", "incident_id"):
        with transaction.atomic():
            incident = Incident.objects.select_for_update().get(pk=incident_id)
            approval = ApprovalRequest.objects.select_for_update().get(pk=approval_id)
            if approval.status != ApprovalStatus.PENDING:
                continue  # decided while we looked
            _expire_locked(incident, approval, now=now)
            expired += 1
    return expired

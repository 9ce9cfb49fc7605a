"""What the admin pages show of remediation: the incident's panel and the approval page."""

from __future__ import annotations

from remediation.approvals import can_approve
from remediation.choices import ApprovalStatus
from remediation.models import ApprovalRequest, Diagnosis, Execution
from remediation.rendering import diff_html, output_html


def _attempt_items(diagnosis: Diagnosis | None) -> list[dict]:
    if diagnosis is None:
        return []
    return [
        {"attempt": attempt, "patch_html": diff_html(attempt.patch), "output_html": output_html(attempt.output)}
        for attempt in diagnosis.attempts.order_by("number")
    ]


def remediation_context(incident, user=None) -> dict:
    """Incident page: `diagnosis` (latest, with attempts), `approval` (pending, else latest), `execution`."""
    diagnosis = Diagnosis.objects.filter(incident=incident).select_related("playbook").first()
    approval = (
        ApprovalRequest.objects.filter(incident=incident, status=ApprovalStatus.PENDING).first()
        or ApprovalRequest.objects.filter(incident=incident).first()
    )
    return {
        "diagnosis": diagnosis,
        "diagnosis_attempts": _attempt_items(diagnosis),
        "approval": approval,
        "approval_patch_html": diff_html(approval.fix_attempt.patch) if approval and approval.fix_attempt_id else None,
        "execution": Execution.objects.filter(incident=incident).select_related("approval").first(),
        "can_approve": can_approve(user),
    }


def approval_page_context(approval: ApprovalRequest, user) -> dict:
    """Everything an engineer needs to decide one proposal, on one page."""
    attempt = approval.fix_attempt
    earlier = [
        item for item in _attempt_items(approval.diagnosis) if attempt is None or item["attempt"].pk != attempt.pk
    ]
    return {
        "approval": approval,
        "incident": approval.incident,
        "diagnosis": approval.diagnosis,
        "attempt": attempt,
        "attempt_patch_html": diff_html(attempt.patch) if attempt else None,
        "attempt_output_html": output_html(attempt.output) if attempt else None,
        "earlier_attempts": earlier,
        "execution": Execution.objects.filter(approval=approval).first(),
        "can_approve": can_approve(user),
        "is_pending": approval.status == ApprovalStatus.PENDING,
    }

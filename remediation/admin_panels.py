"""The remediation panel on the incident's admin page: latest diagnosis, its fix attempts, the proposal."""

from __future__ import annotations

from remediation.choices import ApprovalStatus
from remediation.models import ApprovalRequest, Diagnosis
from remediation.rendering import diff_html, output_html


def remediation_context(incident) -> dict:
    """Template context: `diagnosis` (latest, with `attempts`), `approval` (pending, else latest)."""
    diagnosis = Diagnosis.objects.filter(incident=incident).select_related("playbook").first()
    attempts = []
    if diagnosis is not None:
        for attempt in diagnosis.attempts.order_by("number"):
            attempts.append(
                {
                    "attempt": attempt,
                    "patch_html": diff_html(attempt.patch),
                    "output_html": output_html(attempt.output),
                }
            )
    approval = (
        ApprovalRequest.objects.filter(incident=incident, status=ApprovalStatus.PENDING).first()
        or ApprovalRequest.objects.filter(incident=incident).first()
    )
    return {
        "diagnosis": diagnosis,
        "diagnosis_attempts": attempts,
        "approval": approval,
        "approval_patch_html": diff_html(approval.fix_attempt.patch) if approval and approval.fix_attempt_id else None,
    }

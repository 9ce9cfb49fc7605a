"""What Quench keeps from a remediation: the decisions, the fix and how well it worked, as knowledge.

One entry per incident (the knowledge writer's key is incident + path), rebuilt from every
decision and execution of the incident each time, so a second decision adds to the entry
instead of overwriting the first. Written when a fix is verified and whenever an engineer
records its outcome (effectiveness, feedback, learning notes) in the admin; the next
similar incident's diagnosis finds it through retrieval.
"""

from __future__ import annotations

from knowledge.models import KnowledgeEntry, KnowledgeKind, KnowledgePath
from knowledge.services import write_knowledge
from remediation.models import ApprovalRequest, Execution

_FENCE = "```"


def fix_knowledge_markdown(incident, approvals: list[ApprovalRequest]) -> str:
    lines = [f"Incident #{incident.pk}: {incident.title}", ""]
    for approval in approvals:
        lines.append(
            f"## {approval.get_kind_display()} #{approval.pk}: {approval.get_status_display().lower()}"
            + (f" by {approval.decided_by}" if approval.decided_by else "")
        )
        lines += ["", approval.summary.strip()[:2000], ""]
        diagnosis = approval.diagnosis
        if diagnosis.hypothesis:
            lines += [f"Root cause: {diagnosis.hypothesis.strip()[:2000]}", ""]
        if approval.feedback:
            lines += [f"Reviewer's feedback: {approval.feedback.strip()[:2000]}", ""]
        if approval.note:
            lines += [f"Approver's note: {approval.note.strip()[:2000]}", ""]
        if approval.decision_reason:
            lines += [f"Reason: {approval.decision_reason}", ""]
        if approval.fix_attempt_id and approval.fix_attempt.patch:
            lines += [f"{_FENCE}diff", approval.fix_attempt.patch.strip()[:6000], _FENCE, ""]
        execution = getattr(approval, "execution", None)
        if execution is not None:
            lines.append(
                f"Execution: {execution.get_status_display().lower()}; {execution.get_verification_display()}."
            )
            if execution.pull_request_url:
                lines.append(f"Pull request: {execution.pull_request_url}")
            elif execution.branch:
                lines.append(f"Branch: {execution.branch} ({execution.commit_sha[:12]})")
            if execution.verification_note:
                lines.append(execution.verification_note)
            if execution.effectiveness:
                lines.append(f"Effectiveness: {execution.effectiveness}/5")
            if execution.outcome_feedback:
                lines.append(f"Feedback: {execution.outcome_feedback.strip()[:2000]}")
            if execution.learning_notes:
                lines.append(f"Learning notes: {execution.learning_notes.strip()[:3000]}")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def record_fix_knowledge(execution_id: int) -> KnowledgeEntry | None:
    """Write (or rewrite) the incident's remediation knowledge entry; idempotent."""
    execution = Execution.objects.select_related("incident", "approval").filter(pk=execution_id).first()
    if execution is None:
        return None
    incident = execution.incident
    approvals = list(
        ApprovalRequest.objects.filter(incident=incident)
        .exclude(status="pending")
        .select_related("diagnosis", "fix_attempt", "execution")
        .order_by("created_at", "id")
    )
    return write_knowledge(
        path_type=KnowledgePath.APPROVAL_DECIDED,
        title=f"How incident #{incident.pk} was remediated: {incident.title}"[:300],
        body=fix_knowledge_markdown(incident, approvals),
        kind=KnowledgeKind.FIX,
        incident_id=incident.pk,
        approval_id=execution.approval_id,
        services=[incident.service] if incident.service else [],
        tags=["remediation", execution.kind],
    )

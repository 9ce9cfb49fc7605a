"""What remediation tells the incidents app's postmortems and analytics (registered in `RemediationConfig.ready()`).

`incidents` cannot import this app, so it asks through registries: a postmortem fact
provider (root cause, what fixed it, fix attempts, what went well or badly), an ending
classifier (how each incident ended: code fix, playbook, expired approval, escalated) and
a figures provider (approvals by outcome, fix attempts per incident).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from django.db.models import Count

from incidents.choices import IncidentStatus
from incidents.models import Incident
from incidents.postmortems import Narrative
from remediation.choices import (
    ApprovalStatus,
    DiagnosisStatus,
    ExecutionStatus,
    FixAttemptStatus,
    ProposalKind,
    VerificationStatus,
)
from remediation.llm import LLMError, get_llm_provider
from remediation.llm.offline import OfflineAnalyzer
from remediation.models import ApprovalRequest, Diagnosis, Execution, FixAttempt

logger = logging.getLogger(__name__)

# An execution that ran but whose fix did not hold does not count as what fixed the incident.
FIX_DID_NOT_HOLD = (VerificationStatus.RECURRED, VerificationStatus.ABANDONED, VerificationStatus.FAILED)


def _held_executions():
    """Executions that ran and whose fix held (or is still being verified): what fixed an incident."""
    return Execution.objects.filter(status=ExecutionStatus.SUCCEEDED).exclude(verification__in=FIX_DID_NOT_HOLD)


def _fixing_execution(incident_id: int) -> Execution | None:
    return (
        _held_executions()
        .filter(incident_id=incident_id)
        .select_related("approval", "approval__playbook")
        .order_by("-created_at", "-id")
        .first()
    )


def postmortem_facts(incident: Incident, facts: dict) -> dict:
    """Root cause (the latest successful diagnosis), what fixed it, fix attempts, approvals' story."""
    added: dict = {"went_well": [], "went_badly": [], "follow_ups": []}
    diagnosis = (
        Diagnosis.objects.filter(incident=incident, status=DiagnosisStatus.SUCCEEDED)
        .exclude(hypothesis="")
        .order_by("-created_at", "-id")
        .first()
    )
    if diagnosis is not None and not facts.get("root_cause"):  # an engineer's "Root cause:" note wins
        source = f"diagnosis #{diagnosis.pk} by {diagnosis.provider or 'Quench'}"
        if diagnosis.confidence is not None:
            source += f", confidence {diagnosis.confidence:.2f}"
        added["root_cause"] = {"text": diagnosis.hypothesis, "source": source}
    attempts = list(FixAttempt.objects.filter(incident=incident).order_by("created_at", "id"))
    added["fix_attempts"] = len(attempts)
    passed = [attempt for attempt in attempts if attempt.status == FixAttemptStatus.PASSED]
    if passed:
        added["went_well"].append(f"A fix that passes the service's tests was found at attempt {passed[0].number}.")
    failed = len(attempts) - len(passed)
    if failed:
        added["went_badly"].append(
            f"{failed} fix attempt(s) failed in the sandbox before one passed or Quench gave up."
        )
    approvals = list(ApprovalRequest.objects.filter(incident=incident).order_by("created_at", "id"))
    for approval in approvals:
        if approval.status == ApprovalStatus.REJECTED:
            added["went_badly"].append(
                f"Proposal #{approval.pk} was rejected by {approval.decided_by}: {approval.feedback or 'no feedback'}"
            )
        elif approval.status == ApprovalStatus.EXPIRED:
            added["went_badly"].append(f"Proposal #{approval.pk} expired without a decision.")
            added["follow_ups"].append("Make sure proposals reach someone who can approve them in time.")
    execution = _fixing_execution(incident.pk)
    if execution is not None:
        approval = execution.approval
        resolution = {
            "kind": execution.kind,
            "text": approval.summary.strip()[:1000],
            "by": approval.decided_by,
            "verification": execution.verification,
        }
        if execution.kind == ProposalKind.CODE_FIX:
            resolution["pull_request_url"] = execution.pull_request_url
            resolution["branch"] = execution.branch
            if execution.verification != VerificationStatus.VERIFIED:
                added["follow_ups"].append("Confirm the fix is merged and deployed (it is not verified yet).")
            added["follow_ups"].append("Check that the fix adds a regression test for this failure.")
        else:
            resolution["playbook"] = approval.playbook.name if approval.playbook else ""
            added["follow_ups"].append("Fix the cause the playbook worked around, so it is not needed next time.")
        added["resolution"] = resolution
        added["went_well"].append(
            f"Quench's proposal was approved by {approval.decided_by or 'policy'} and carried out."
            if approval.decided_by
            else "Quench's proposal was carried out."
        )
    return added


def incident_endings(incident_ids: list[int]) -> dict[int, str]:
    """How each incident ended, where remediation knows better than the incident row.

    code_fix / playbook: resolved with a carried-out remediation that held; expired: escalated
    because its latest proposal expired. Incidents not named keep the incidents app's verdict.
    """
    endings: dict[int, str] = {}
    for incident_id, kind in (
        _held_executions()
        .filter(incident_id__in=incident_ids, incident__status=IncidentStatus.RESOLVED)
        .order_by("incident_id", "-created_at", "-id")
        .distinct("incident_id")
        .values_list("incident_id", "kind")
    ):
        endings[incident_id] = kind
    for incident_id, status in (
        ApprovalRequest.objects.filter(incident_id__in=incident_ids, incident__status=IncidentStatus.ESCALATED)
        .order_by("incident_id", "-created_at", "-id")
        .distinct("incident_id")
        .values_list("incident_id", "status")
    ):
        if status == ApprovalStatus.EXPIRED:
            endings[incident_id] = "expired"
    return endings


def analytics_figures(incident_ids: list[int], start: datetime, end: datetime) -> dict:
    """Approvals by outcome (created in the window) and fix attempts per incident (of the window's incidents)."""
    approvals = Counter(
        dict(
            ApprovalRequest.objects.filter(created_at__gte=start, created_at__lt=end)
            .values_list("status")
            .annotate(count=Count("id"))
            .values_list("status", "count")
        )
    )
    per_incident = dict(
        FixAttempt.objects.filter(incident_id__in=incident_ids)
        .values_list("incident_id")
        .annotate(count=Count("id"))
        .values_list("incident_id", "count")
    )
    counts = [per_incident.get(incident_id, 0) for incident_id in incident_ids]
    distribution = Counter("3+" if count >= 3 else str(count) for count in counts)
    return {
        "approvals": {status: approvals.get(status, 0) for status in ApprovalStatus.values},
        "fix_attempts": {
            "total": sum(counts),
            "per_incident": round(sum(counts) / len(counts), 2) if counts else 0.0,
            "max": max(counts, default=0),
            "distribution": {bucket: distribution.get(bucket, 0) for bucket in ("0", "1", "2", "3+")},
        },
    }


def write_postmortem_narrative(facts: dict) -> Narrative:
    """The postmortem's narrative by the configured LLM provider (the offline analyzer without a key).

    When the model cannot answer (quota, outage, an unusable answer), the offline analyzer
    writes it instead, and the draft says so: a postmortem should not wait for an API.
    """
    provider = get_llm_provider()
    try:
        answer = provider.write_postmortem(facts)
    except LLMError as exc:
        if provider.name == "offline":
            raise
        logger.warning(
            "postmortem narrative: %s failed, the offline analyzer writes it",
            provider.name,
            extra={"incident_id": facts["incident"]["id"], "error": exc.message[:300]},
        )
        answer = OfflineAnalyzer().write_postmortem(facts)
        return Narrative(
            summary=answer.summary,
            recommendations=answer.recommendations,
            written_by=f"the offline analyzer ({provider.name} could not answer)",
        )
    usage = answer.usage
    written_by = "the offline analyzer" if provider.name == "offline" else provider.name
    if usage and usage.model and provider.name != "offline":
        written_by += f" / {usage.model}"
    return Narrative(summary=answer.summary, recommendations=answer.recommendations, written_by=written_by)

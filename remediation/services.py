"""Diagnosis and remediation workflows: request and run a diagnosis, try fixes, propose them.

The flow for one incident (each step a django-q2 task, each idempotent):

    request_diagnosis ──► run_diagnosis ──► code fix:  run_fix_attempt (1..N: patch → sandbox → critic)
                                       ├──► playbook:  propose_playbook
                                       └──► escalate
                               every proposal ends in request_approval (pending, with expiry)

A diagnosis stays "in flight" (queued or running) until it has proposed something or
escalated; the database allows one in flight per incident. Every step re-reads the
incident and stops when it is no longer being diagnosed (resolved by its source, say).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from incidents import watchdog
from incidents.choices import ActivityKind, IncidentStatus
from incidents.models import Incident
from incidents.services.lifecycle import TransitionRefused, apply_transition, record_activity
from remediation.choices import (
    DIAGNOSIS_IN_FLIGHT,
    ApprovalStatus,
    DiagnosisStatus,
    FixAttemptStatus,
    ProposalKind,
    RecommendedAction,
    RiskLevel,
    VerificationStatus,
)
from remediation.context import build_context
from remediation.llm.base import AttemptRecord, DiagnosisResult, LLMError, LLMProvider, get_llm_provider
from remediation.models import ApprovalRequest, Diagnosis, FixAttempt, Playbook, Service
from remediation.queue import enqueue_auto_approval, enqueue_diagnosis, enqueue_fix_attempt
from remediation.signals import approval_requested, diagnosis_ready

logger = logging.getLogger(__name__)

S = IncidentStatus
REANALYZE = "reanalyze"
MAX_LINE_NUMBER = 2_147_483_647  # PostgreSQL integer
# A carried-out fix that did not hold: the next attempt must know it.
FAILED_VERIFICATIONS = (VerificationStatus.RECURRED, VerificationStatus.FAILED)
# Alerts that fire on purpose (Watchdog, dead man's switch): never diagnosed automatically.
NEVER_DIAGNOSED_CATEGORIES = frozenset({"heartbeat"})
# Incidents the watchdog raises about Quench itself (a reanalysis still may, on request).
WATCHDOG_SOURCE = watchdog.SOURCE
# Wake-ups start a diagnosis only for an incident nobody is handling yet.
AUTO_DIAGNOSE_FROM = frozenset({S.TRIGGERED, S.REGRESSED})
# An engineer may ask again from any open state that is not already executing a fix.
REANALYZE_FROM = frozenset({S.TRIGGERED, S.REGRESSED, S.ACKNOWLEDGED, S.ESCALATED, S.AWAITING_APPROVAL, S.DIAGNOSING})


class DiagnosisRefused(TransitionRefused):
    """A diagnosis cannot be requested for the incident in its current state (the API answers 409)."""


def link_service_incidents(service_id: int) -> int:
    """Link the incidents named like a Service record to it (after it is created or renamed)."""
    service = Service.objects.get(pk=service_id)
    return Incident.objects.filter(service=service.name).exclude(service_record=service).update(service_record=service)


# --- requesting ------------------------------------------------------------------------------


def request_diagnosis(incident_id: int, *, trigger: str, actor: str = "quench") -> tuple[Diagnosis | None, bool]:
    """Queue a diagnosis of the incident unless one is in flight; returns (diagnosis, created).

    Automatic triggers (new, regressed, spike, ...) only start one for a triggered or
    regressed incident. A "reanalyze" within QUENCH_REANALYZE_DEDUP_MINUTES of the last
    one returns that one; it supersedes a pending proposal. (None, False) when the
    incident is in a state that is not diagnosed.
    """
    now = timezone.now()
    with transaction.atomic():
        incident = Incident.objects.select_for_update().filter(pk=incident_id).first()
        if incident is None:  # deleted since the wake-up was written
            return None, False
        # The incident's row lock serializes requests; the partial unique index is the backstop.
        in_flight = incident.diagnoses.filter(status__in=DIAGNOSIS_IN_FLIGHT).first()
        if in_flight is not None:
            return in_flight, False
        if trigger == REANALYZE:
            window = timedelta(minutes=settings.QUENCH_REANALYZE_DEDUP_MINUTES)
            recent = incident.diagnoses.filter(trigger=REANALYZE, created_at__gte=now - window).first()
            if recent is not None:
                return recent, False
            allowed = REANALYZE_FROM
        else:
            allowed = AUTO_DIAGNOSE_FROM
            if incident.category in NEVER_DIAGNOSED_CATEGORIES:
                return None, False  # a heartbeat firing is the monitoring working, not a fault
            if incident.source == WATCHDOG_SOURCE:
                return None, False  # Quench's own watchdog: its message already names the stall and the fix
            since = incident.regressed_at or incident.first_seen
            if trigger != "regressed" and incident.diagnoses.filter(created_at__gte=since).exists():
                return None, False  # diagnosed in this life already: a spike is a human's to judge
        if incident.status not in allowed:
            return None, False
        try:
            with transaction.atomic():
                diagnosis = Diagnosis.objects.create(incident=incident, trigger=trigger[:20], requested_by=actor)
        except IntegrityError:
            return incident.diagnoses.filter(status__in=DIAGNOSIS_IN_FLIGHT).first(), False
        superseded = _supersede_pending_approvals(
            incident, now=now, actor=actor, reason=f"a new diagnosis was requested ({trigger})"
        )
        message = f"Diagnosis #{diagnosis.pk} requested ({trigger})"
        if superseded:
            message += "; the pending proposal is superseded"
        if incident.status != S.DIAGNOSING:
            apply_transition(incident, S.DIAGNOSING, actor=actor, message=message, now=now)
            incident.save(update_fields=["status", "updated_at"])
        else:
            record_activity(incident, ActivityKind.NOTE, message, actor=actor)
        diagnosis_id = diagnosis.pk
        transaction.on_commit(lambda: enqueue_diagnosis(diagnosis_id), robust=True)
    return diagnosis, True


def _supersede_pending_approvals(incident: Incident, *, now, actor: str, reason: str) -> int:
    """The incident's pending proposal is moot (a newer one, a reanalysis, a human resolved it); say why.

    Callers hold the incident's row lock, which every decision on its approvals takes first.
    """
    return ApprovalRequest.objects.filter(incident=incident, status=ApprovalStatus.PENDING).update(
        status=ApprovalStatus.SUPERSEDED, decided_at=now, decided_by=actor, decision_reason=reason[:300]
    )


def reanalyze(incident_id: int, *, actor: str) -> tuple[Diagnosis, bool]:
    """An engineer asks for a fresh diagnosis (deduplicated for a few minutes); raises DiagnosisRefused."""
    diagnosis, created = request_diagnosis(incident_id, trigger=REANALYZE, actor=actor)
    if diagnosis is None:
        status = Incident.objects.values_list("status", flat=True).filter(pk=incident_id).first() or "gone"
        raise DiagnosisRefused(
            f"Incident #{incident_id} is {status}; it cannot be reanalyzed now.",
            incident_id=incident_id,
            current_status=status,
        )
    return diagnosis, created


# --- diagnosing ------------------------------------------------------------------------------


def run_diagnosis(diagnosis_id: int, *, provider: LLMProvider | None = None) -> str:
    """Diagnose, then start the remediation it recommends. Returns what happened, for the task result.

    Safe to run twice: the diagnosis is claimed (queued → running) before the model is
    asked, so a redelivered task finds it claimed and leaves it alone, unless the claim is
    older than the queue's task timeout (its worker died). A diagnosis already answered is
    not asked again, and the next step (fix attempts, proposal) is itself idempotent. Any
    failure ends the diagnosis as failed with the error, and the incident leaves `diagnosing`.
    """
    try:
        return _run_diagnosis(diagnosis_id, provider=provider)
    except Exception as exc:
        logger.exception("diagnosis task failed", extra={"diagnosis_id": diagnosis_id})
        fail_diagnosis(diagnosis_id, f"{type(exc).__name__}: {exc}")
        return "failed"


def _run_diagnosis(diagnosis_id: int, *, provider: LLMProvider | None) -> str:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.Q_CLUSTER["timeout"])
    claimed = (
        Diagnosis.objects.filter(pk=diagnosis_id)
        .filter(
            Q(status=DiagnosisStatus.QUEUED)
            | Q(status=DiagnosisStatus.RUNNING, provider="") & (Q(started_at__isnull=True) | Q(started_at__lt=stale))
        )
        .update(status=DiagnosisStatus.RUNNING, started_at=now, updated_at=now)
    )
    diagnosis = Diagnosis.objects.select_related("incident").filter(pk=diagnosis_id).first()
    if diagnosis is None or diagnosis.status != DiagnosisStatus.RUNNING:
        return "not running"
    if not diagnosis.provider and not claimed:
        return "in progress elsewhere"
    if not _still_diagnosing(diagnosis):
        return "incident no longer diagnosing"
    provider = provider or get_llm_provider()
    context = None
    if not diagnosis.provider:
        context, _ = build_context(diagnosis.incident)
        result, used = _ask(provider, "diagnose", diagnosis, lambda p: p.diagnose(context))
        _store_diagnosis(diagnosis, result, used, context)
    return _next_step(diagnosis, context)


def fail_diagnosis(diagnosis_id: int, error: str) -> None:
    """A diagnosis or fix task failed: end the diagnosis as failed and give the incident back, with the error.

    The incident leaves `diagnosing` for `triggered` (a human's queue; Reanalyze tries
    again); it is not escalated, because nothing says a human is needed *now*.
    """
    diagnosis = Diagnosis.objects.filter(pk=diagnosis_id).first()
    if diagnosis is None:
        return
    FixAttempt.objects.filter(
        diagnosis=diagnosis, status__in=[FixAttemptStatus.GENERATING, FixAttemptStatus.TESTING]
    ).update(status=FixAttemptStatus.ERROR, output=error[:4000], finished_at=timezone.now())
    _finish(diagnosis, DiagnosisStatus.FAILED, outcome="failed: see the error", error=error[:4000])
    _hand_back(
        diagnosis.incident_id,
        f"Diagnosis #{diagnosis.pk} failed: {error[:300]}. Reanalyze to try again.",
        data={"diagnosis_id": diagnosis.pk},
    )


def _hand_back(incident_id: int, message: str, *, data: dict | None = None) -> None:
    """The incident leaves `diagnosing` for a human's queue (`triggered`), saying why on the timeline."""
    with transaction.atomic():
        incident = Incident.objects.select_for_update().filter(pk=incident_id).first()
        if incident is None:
            return
        if incident.status == S.DIAGNOSING:
            apply_transition(incident, S.TRIGGERED, actor="quench", message=message[:2000])
            incident.save(update_fields=["status", "updated_at"])
        else:
            record_activity(incident, ActivityKind.NOTE, message[:2000], data=data or {})


def _ask(provider: LLMProvider, step: str, diagnosis: Diagnosis, call):
    """Call the provider; when a hosted model fails for good (quota, outage), fall back to the offline analyzer.

    Returns (answer, provider used). The failure is kept in the decision chain.
    """
    try:
        return call(provider), provider
    except LLMError as exc:
        if provider.name == "offline":
            raise
        logger.warning(
            "LLM provider failed, using the offline analyzer",
            extra={"incident_id": diagnosis.incident_id, "provider": provider.name, "step": step},
        )
        usage = exc.usage.as_dict() if exc.usage else {}
        _append_chain(
            diagnosis,
            {**usage, "step": step, "provider": provider.name, "model": provider.model, "error": exc.message[:500]},
        )
        from remediation.llm.offline import OfflineAnalyzer

        fallback = OfflineAnalyzer()
        return call(fallback), fallback


def _append_chain(diagnosis: Diagnosis, entry: dict) -> None:
    entry = {"at": timezone.now().isoformat(), **entry}
    with transaction.atomic():
        locked = Diagnosis.objects.select_for_update().get(pk=diagnosis.pk)
        locked.decision_chain = [*locked.decision_chain, entry]
        usage_in, usage_out = entry.get("input_tokens", 0), entry.get("output_tokens", 0)
        locked.input_tokens += usage_in
        locked.output_tokens += usage_out
        locked.save(update_fields=["decision_chain", "input_tokens", "output_tokens", "updated_at"])
    diagnosis.decision_chain = locked.decision_chain
    diagnosis.input_tokens, diagnosis.output_tokens = locked.input_tokens, locked.output_tokens


def _line_number(value) -> int | None:
    """A line number the database can hold; a traceback may carry anything (99999999999999999999)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 < value <= MAX_LINE_NUMBER else None


def _store_diagnosis(diagnosis: Diagnosis, result: DiagnosisResult, provider: LLMProvider, context) -> None:
    playbook = None
    if result.playbook_id and any(candidate["id"] == result.playbook_id for candidate in context.playbooks):
        playbook = Playbook.objects.filter(pk=result.playbook_id).first()
    if playbook is None and context.playbooks:
        playbook = Playbook.objects.filter(pk=context.playbooks[0]["id"]).first()
    action = result.recommended_action if result.recommended_action in RecommendedAction.values else "escalate"
    if action == RecommendedAction.CODE_FIX and not context.has_repository:
        action = RecommendedAction.PLAYBOOK if playbook else RecommendedAction.ESCALATE
    if action == RecommendedAction.PLAYBOOK and playbook is None:
        action = RecommendedAction.ESCALATE
    diagnosis.hypothesis = result.hypothesis
    diagnosis.confidence = min(1.0, max(0.0, float(result.confidence)))
    diagnosis.evidence = [str(item) for item in result.evidence][:30]
    diagnosis.explanation = result.explanation
    diagnosis.culprit_file = result.culprit_file[:500]
    diagnosis.culprit_line = _line_number(result.culprit_line)
    diagnosis.culprit_function = result.culprit_function[:200]
    diagnosis.category = result.category[:60]
    diagnosis.recommended_action = action
    diagnosis.risk_level = result.risk_level if result.risk_level in RiskLevel.values else RiskLevel.MEDIUM
    diagnosis.playbook = playbook
    diagnosis.provider = provider.name
    diagnosis.model = provider.model
    diagnosis.context_summary = {
        "traceback_chars": len(context.traceback),
        "frames": len(context.frames),
        "events": len(context.events),
        "source_files": [file.path for file in context.source_files],
        "similar_incidents": [item["id"] for item in context.similar_incidents],
        "knowledge": [item["id"] for item in context.knowledge],
        "playbooks": [item["id"] for item in context.playbooks],
        "complaints": len(context.complaints),
        "repository": context.has_repository,
    }
    diagnosis.save()
    usage = result.usage.as_dict() if result.usage else {"step": "diagnose", "provider": provider.name}
    _append_chain(diagnosis, {**usage, "outcome": f"{action}, confidence {diagnosis.confidence:.2f}"})
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=diagnosis.incident_id)
        record_activity(
            incident,
            ActivityKind.NOTE,
            f"Diagnosis #{diagnosis.pk}: {result.hypothesis[:400]} (recommends {action})",
            data={"diagnosis_id": diagnosis.pk},
        )
        if result.category and not incident.category:
            incident.category = result.category[:60]
            incident.save(update_fields=["category", "updated_at"])
        diagnosis_ready.send(sender=Diagnosis, diagnosis=diagnosis, incident=incident)


def _next_step(diagnosis: Diagnosis, context=None) -> str:
    if diagnosis.recommended_action == RecommendedAction.CODE_FIX:
        enqueue_fix_attempt(diagnosis.pk, diagnosis.attempts.count() + 1)
        return "fixing"
    if diagnosis.recommended_action == RecommendedAction.PLAYBOOK:
        propose_playbook(diagnosis.pk)
        return "playbook proposed"
    hand_to_human(diagnosis.pk, context=context)
    return "diagnosed"


def hand_to_human(diagnosis_id: int, *, context=None, reason: str = "") -> None:
    """Nothing Quench can carry out fits (no repository, no traceback, an infrastructure alert).

    The diagnosis ends as "diagnosed" with its hypothesis, the runbooks and playbooks that
    match and a next step; the incident goes back to `triggered`, where a human picks it up.
    Not an escalation: nothing failed, and nobody needs paging for it.
    """
    diagnosis = Diagnosis.objects.select_related("incident").get(pk=diagnosis_id)
    if context is None:
        context, _ = build_context(diagnosis.incident)
    runbooks = [hit["title"] for hit in context.knowledge if hit.get("kind") == "runbook"][:3]
    playbooks = [row["name"] for row in context.playbooks][:3]
    if runbooks:
        next_step = "follow the runbook “" + "”, “".join(runbooks) + "”"
    elif playbooks:
        next_step = "consider the playbook “" + "”, “".join(playbooks) + "”"
    elif not context.has_repository and diagnosis.incident.exception_type:
        next_step = "give the service a repository in Quench (Services) so that fixes can be written and tested"
    else:
        next_step = "investigate by hand; no runbook or playbook matches yet"
    why = reason or ("no code fix applies" if not context.has_repository else "no automatic remediation fits")
    _finish(diagnosis, DiagnosisStatus.SUCCEEDED, outcome=f"diagnosed, {why}: {next_step}")
    _hand_back(
        diagnosis.incident_id,
        f"Diagnosed ({why}): {diagnosis.hypothesis[:400]} Next step: {next_step}.",
        data={"diagnosis_id": diagnosis.pk, "runbooks": runbooks, "playbooks": playbooks},
    )


def _still_diagnosing(diagnosis: Diagnosis) -> bool:
    """False (and the diagnosis closed) when the incident left `diagnosing` meanwhile."""
    status = Incident.objects.values_list("status", flat=True).get(pk=diagnosis.incident_id)
    if status == S.DIAGNOSING:
        return True
    _finish(diagnosis, DiagnosisStatus.SUCCEEDED, outcome=f"stopped: the incident became {status}")
    return False


def _finish(diagnosis: Diagnosis, status: str, *, outcome: str, error: str = "") -> None:
    Diagnosis.objects.filter(pk=diagnosis.pk, status__in=DIAGNOSIS_IN_FLIGHT).update(
        status=status, outcome=outcome[:200], error=error, finished_at=timezone.now(), updated_at=timezone.now()
    )
    diagnosis.status, diagnosis.outcome = status, outcome[:200]


def _escalate_incident(incident_id: int, message: str, *, data: dict | None = None) -> None:
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident_id)
        if incident.status in (S.DIAGNOSING, S.AWAITING_APPROVAL):
            apply_transition(incident, S.ESCALATED, actor="quench", message=message)
            incident.save(update_fields=["status", "updated_at"])
            if data:
                record_activity(incident, ActivityKind.NOTE, "Escalation details", data=data)
        else:
            record_activity(incident, ActivityKind.NOTE, message, data=data or {})


def diagnosis_result(diagnosis: Diagnosis) -> DiagnosisResult:
    """A stored diagnosis as providers see it (for the patch and critic steps)."""
    return DiagnosisResult(
        hypothesis=diagnosis.hypothesis,
        confidence=diagnosis.confidence or 0.0,
        evidence=list(diagnosis.evidence),
        explanation=diagnosis.explanation,
        culprit_file=diagnosis.culprit_file,
        culprit_line=diagnosis.culprit_line,
        culprit_function=diagnosis.culprit_function,
        category=diagnosis.category,
        recommended_action=diagnosis.recommended_action,
        risk_level=diagnosis.risk_level,
        playbook_id=diagnosis.playbook_id,
    )


# --- fix attempts ----------------------------------------------------------------------------


def _attempt_record(attempt: FixAttempt) -> AttemptRecord:
    return AttemptRecord(
        number=attempt.number,
        patch=attempt.patch,
        status=attempt.status,
        output=attempt.output,
        exit_code=attempt.exit_code,
        critic_feedback=attempt.critic_feedback,
        reviewer_feedback=_reviewer_feedback(attempt),
    )


def _reviewer_feedback(attempt: FixAttempt) -> str:
    """What the humans' world said of this attempt: a reviewer's rejection, or a failed verification."""
    approval = (
        ApprovalRequest.objects.filter(
            fix_attempt=attempt, status__in=[ApprovalStatus.REJECTED, ApprovalStatus.APPROVED]
        )
        .select_related("execution")
        .first()
    )
    if approval is None:
        return ""
    if approval.status == ApprovalStatus.REJECTED:
        return approval.feedback
    execution = getattr(approval, "execution", None)
    if execution is not None and execution.verification in FAILED_VERIFICATIONS:
        return (
            f"This fix was approved and carried out ({execution.branch or 'no branch'}), but verification failed: "
            f"{execution.verification_note} Do not propose it again; find what it missed."
        )
    return ""


def _previous_reviews(diagnosis: Diagnosis) -> list[AttemptRecord]:
    """Fixes of the incident's earlier diagnoses that humans rejected, or that failed once carried out.

    The next patch is given them with the reviewer's words (or what verification saw), so a
    regressed incident's new diagnosis knows which fix did not hold.
    """
    reviewed = (
        ApprovalRequest.objects.filter(incident_id=diagnosis.incident_id)
        .filter(
            Q(status=ApprovalStatus.REJECTED)
            | Q(status=ApprovalStatus.APPROVED, execution__verification__in=FAILED_VERIFICATIONS)
        )
        .exclude(fix_attempt__isnull=True)
        .exclude(diagnosis=diagnosis)
        .select_related("fix_attempt")
        .order_by("decided_at")
    )
    return [_attempt_record(approval.fix_attempt) for approval in reviewed]


def run_fix_attempt(diagnosis_id: int, number: int, *, provider: LLMProvider | None = None) -> str:
    """Write patch number `number`, test it in the sandbox, and propose it or let the critic plan the next.

    Idempotent: a finished attempt is not redone (a redelivered task only re-drives what
    follows it), and an attempt interrupted mid-way is redone from its start. A failure
    nobody foresaw ends the diagnosis as failed with the error (see `fail_diagnosis`).
    """
    try:
        return _run_fix_attempt(diagnosis_id, number, provider=provider)
    except Exception as exc:
        logger.exception("fix attempt task failed", extra={"diagnosis_id": diagnosis_id, "attempt": number})
        fail_diagnosis(diagnosis_id, f"Fix attempt {number}: {type(exc).__name__}: {exc}")
        return "failed"


def _run_fix_attempt(diagnosis_id: int, number: int, *, provider: LLMProvider | None) -> str:
    diagnosis = Diagnosis.objects.select_related("incident__service_record").filter(pk=diagnosis_id).first()
    if diagnosis is None or diagnosis.status != DiagnosisStatus.RUNNING:
        return "not running"
    if not _still_diagnosing(diagnosis):
        return "incident no longer diagnosing"
    maximum = max(1, settings.QUENCH_FIX_MAX_ATTEMPTS)
    attempt, _ = FixAttempt.objects.get_or_create(
        diagnosis=diagnosis,
        number=number,
        defaults={"incident_id": diagnosis.incident_id, "review_round": review_round(diagnosis)},
    )
    if attempt.status == FixAttemptStatus.PASSED:
        request_approval(diagnosis.pk, fix_attempt_id=attempt.pk)
        return "proposed"
    if attempt.status not in (FixAttemptStatus.GENERATING, FixAttemptStatus.TESTING):
        return _after_failure(diagnosis, attempt, maximum)
    # Claim the attempt: a duplicate task finds it claimed and leaves it alone; a claim
    # older than the queue's task timeout belongs to a killed worker and is taken over.
    now = timezone.now()
    stale = now - timedelta(seconds=settings.Q_CLUSTER["timeout"])
    claimed = (
        FixAttempt.objects.filter(pk=attempt.pk, status__in=[FixAttemptStatus.GENERATING, FixAttemptStatus.TESTING])
        .filter(Q(started_at__isnull=True) | Q(started_at__lt=stale))
        .update(started_at=now, status=FixAttemptStatus.GENERATING)
    )
    if not claimed:
        return "in progress elsewhere"
    attempt.started_at, attempt.status = now, FixAttemptStatus.GENERATING

    provider = provider or get_llm_provider()
    earlier = [_attempt_record(a) for a in diagnosis.attempts.filter(number__lt=number).order_by("number")]
    history = _previous_reviews(diagnosis) + earlier
    attempt.feedback_used = "\n\n".join(
        text for record in history for text in (record.critic_feedback, record.reviewer_feedback) if text
    )[-8000:]
    try:
        context, snapshot = build_context(diagnosis.incident)
        proposal, used = _ask(
            provider, "patch", diagnosis, lambda p: p.propose_patch(context, diagnosis_result(diagnosis), history)
        )
    except Exception as exc:
        logger.exception("writing a patch failed", extra={"incident_id": diagnosis.incident_id})
        attempt.status, attempt.output = FixAttemptStatus.ERROR, f"{type(exc).__name__}: {exc}"[:4000]
        attempt.finished_at = timezone.now()
        attempt.save()
        return _after_failure(diagnosis, attempt, maximum)
    if proposal is not None and proposal.usage:
        _append_chain(diagnosis, {**proposal.usage.as_dict(), "outcome": f"patch {number}"})
    if proposal is None:
        attempt.status, attempt.summary = FixAttemptStatus.NO_PATCH, "The provider could not write a patch."
        attempt.provider, attempt.model = used.name, used.model
        attempt.finished_at = timezone.now()
        attempt.save()
        return _after_failure(diagnosis, attempt, maximum, give_up=True)

    service = diagnosis.incident.service_record
    attempt.summary = proposal.summary
    attempt.patch = proposal.diff
    attempt.files_changed = proposal.files_changed
    attempt.adds_regression_test = proposal.adds_regression_test
    attempt.risk_level = proposal.risk_level if proposal.risk_level in RiskLevel.values else ""
    attempt.provider, attempt.model = used.name, used.model
    if proposal.usage:
        attempt.input_tokens, attempt.output_tokens = proposal.usage.input_tokens, proposal.usage.output_tokens
    attempt.test_command = service.test_command
    attempt.base_commit = snapshot.commit if snapshot else ""
    attempt.status = FixAttemptStatus.TESTING
    attempt.save()

    from remediation.sandbox import run_patch

    started = time.monotonic()
    result = run_patch(
        repository=service.repository,
        branch=service.default_branch,
        diff=proposal.diff,
        argv=service.test_argv,
        type_check_argv=service.type_check_argv,
        type_check_mode=service.type_check,
    )
    attempt.status = result.status
    attempt.exit_code = result.exit_code
    attempt.output = result.output if result.output else result.message
    attempt.output_truncated = result.output_truncated
    attempt.duration_ms = result.duration_ms or int((time.monotonic() - started) * 1000)
    attempt.base_commit = result.base_commit or attempt.base_commit
    attempt.isolated, attempt.failed_check = result.isolated, result.failed_check
    attempt.type_check, attempt.type_check_message = result.type_check, result.type_check_message[:500]
    attempt.finished_at = timezone.now()
    attempt.save()
    _record_attempt(diagnosis, attempt, result.message)
    if attempt.status == FixAttemptStatus.PASSED:
        request_approval(diagnosis.pk, fix_attempt_id=attempt.pk)
        return "proposed"
    _critique(diagnosis, attempt, provider, context)
    return _after_failure(diagnosis, attempt, maximum)


def _record_attempt(diagnosis: Diagnosis, attempt: FixAttempt, message: str) -> None:
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=diagnosis.incident_id)
        record_activity(
            incident,
            ActivityKind.NOTE,
            f"Fix attempt {attempt.number}: {attempt.get_status_display().lower()} ({message[:200]})",
            data={"diagnosis_id": diagnosis.pk, "fix_attempt_id": attempt.pk},
        )


def _critique(diagnosis: Diagnosis, attempt: FixAttempt, provider: LLMProvider, context) -> None:
    """The critic's verdict on a failed attempt, given the context the patch was written from."""
    if attempt.critic_what_failed:
        return
    try:
        feedback, _used = _ask(
            provider,
            "critique",
            diagnosis,
            lambda p: p.critique(context, diagnosis_result(diagnosis), _attempt_record(attempt)),
        )
    except Exception as exc:
        logger.exception("the critic failed", extra={"incident_id": diagnosis.incident_id})
        attempt.critic_what_failed = f"The test run ended {attempt.status} (exit code {attempt.exit_code})."
        attempt.critic_why = f"The critic could not analyse it: {type(exc).__name__}."
        attempt.critic_next = "Take a different approach than this patch."
    else:
        attempt.critic_what_failed = feedback.what_failed
        attempt.critic_why = feedback.why
        attempt.critic_next = feedback.next_attempt_must
        if feedback.usage:
            _append_chain(diagnosis, {**feedback.usage.as_dict(), "outcome": f"critique of attempt {attempt.number}"})
    attempt.save(update_fields=["critic_what_failed", "critic_why", "critic_next"])


def review_round(diagnosis: Diagnosis) -> int:
    """1 until a reviewer rejects one of the diagnosis's fixes; each rejection starts the next round."""
    return 1 + ApprovalRequest.objects.filter(diagnosis=diagnosis, status=ApprovalStatus.REJECTED).count()


def _after_failure(diagnosis: Diagnosis, attempt: FixAttempt, maximum: int, *, give_up: bool = False) -> str:
    """Try again with the critic's feedback, or — out of attempts or ideas — fall back or escalate.

    The attempt budget counts per review round: a reviewer's rejection earns the fix a fresh
    QUENCH_FIX_MAX_ATTEMPTS tries at following the feedback.
    """
    used = diagnosis.attempts.filter(review_round=attempt.review_round).count()
    if not give_up and used < maximum:
        enqueue_fix_attempt(diagnosis.pk, attempt.number + 1)
        return "retrying"
    if diagnosis.playbook_id:
        propose_playbook(diagnosis.pk)
        return "playbook proposed"
    attempts = list(diagnosis.attempts.order_by("number"))
    if give_up and attempt.review_round > 1:
        why = "no other patch follows the reviewer's feedback"
    elif give_up and attempt.number == 1:
        why = "no patch could be written"
    else:
        why = f"{len(attempts)} fix attempt(s) failed"
    _finish(diagnosis, DiagnosisStatus.SUCCEEDED, outcome=f"escalated: {why}")
    _escalate_incident(
        diagnosis.incident_id,
        f"Escalated after diagnosis #{diagnosis.pk}: {why}.",
        data={
            "diagnosis_id": diagnosis.pk,
            "fix_attempts": [
                {"id": a.pk, "number": a.number, "status": a.status, "critic": a.critic_feedback[:1000]}
                for a in attempts
            ],
        },
    )
    return "escalated"


# --- proposals -------------------------------------------------------------------------------


def propose_playbook(diagnosis_id: int) -> ApprovalRequest | None:
    """Propose the diagnosis's playbook with a dry run of its steps."""
    from remediation.playbooks import dry_run

    diagnosis = Diagnosis.objects.select_related("incident__service_record", "playbook").get(pk=diagnosis_id)
    playbook = diagnosis.playbook
    if playbook is None:
        hand_to_human(diagnosis_id, reason="no playbook fits")
        return None
    summary = f"Run playbook “{playbook.name}”" + (f": {playbook.description}" if playbook.description else "")
    return request_approval(
        diagnosis_id,
        playbook_id=playbook.pk,
        summary=summary,
        risk_level=playbook.risk_level,
        dry_run_steps=dry_run(playbook, diagnosis.incident),
    )


def request_approval(
    diagnosis_id: int,
    *,
    fix_attempt_id: int | None = None,
    playbook_id: int | None = None,
    summary: str = "",
    risk_level: str = "",
    dry_run_steps: list | None = None,
) -> ApprovalRequest | None:
    """Create the pending approval for a tested fix or a playbook, once (a repeat returns the first).

    The incident moves to awaiting_approval; an older pending proposal is superseded.
    None when the incident left `diagnosing` meanwhile (nothing is proposed for it).
    """
    now = timezone.now()
    with transaction.atomic():
        diagnosis = Diagnosis.objects.select_for_update().get(pk=diagnosis_id)
        incident = Incident.objects.select_for_update().get(pk=diagnosis.incident_id)
        if fix_attempt_id is not None:
            existing = ApprovalRequest.objects.filter(fix_attempt_id=fix_attempt_id).first()
        else:
            existing = ApprovalRequest.objects.filter(diagnosis=diagnosis, kind=ProposalKind.PLAYBOOK).first()
        if existing is not None:
            return existing
        if incident.status != S.DIAGNOSING:
            record_activity(incident, ActivityKind.NOTE, f"A proposal was ready but the incident is {incident.status}.")
            _finish(
                diagnosis, DiagnosisStatus.SUCCEEDED, outcome=f"not proposed: the incident became {incident.status}"
            )
            return None
        if fix_attempt_id is not None:
            attempt = FixAttempt.objects.get(pk=fix_attempt_id)
            kind = ProposalKind.CODE_FIX
            summary = summary or attempt.summary or f"Code fix (attempt {attempt.number})"
            # The patch's own risk (a later attempt may change something riskier than the first idea).
            risk_level = risk_level or attempt.risk_level or diagnosis.risk_level or RiskLevel.MEDIUM
        else:
            kind = ProposalKind.PLAYBOOK
        _supersede_pending_approvals(incident, now=now, actor="quench", reason="a newer proposal replaced it")
        approval = ApprovalRequest.objects.create(
            incident=incident,
            diagnosis=diagnosis,
            kind=kind,
            fix_attempt_id=fix_attempt_id,
            playbook_id=playbook_id,
            summary=summary,
            risk_level=risk_level or RiskLevel.MEDIUM,
            dry_run=dry_run_steps or [],
            expires_at=now + timedelta(hours=settings.QUENCH_APPROVAL_TTL_HOURS),
        )
        apply_transition(
            incident,
            S.AWAITING_APPROVAL,
            actor="quench",
            message=f"{approval.get_kind_display()} proposed, awaiting approval: {summary[:300]}",
            now=now,
        )
        incident.save(update_fields=["status", "updated_at"])
        _finish(
            diagnosis,
            DiagnosisStatus.SUCCEEDED,
            outcome=f"{approval.get_kind_display().lower()} awaiting approval (#{approval.pk})",
        )
        if kind == ProposalKind.PLAYBOOK and _may_run_unattended(playbook_id):
            approval_id = approval.pk
            transaction.on_commit(lambda: enqueue_auto_approval(approval_id), robust=True)
        else:  # a proposal that runs by policy asks nobody
            approval_requested.send(sender=ApprovalRequest, approval=approval)
    logger.info("remediation proposed", extra={"incident_id": incident.pk, "approval_id": approval.pk})
    return approval


def _may_run_unattended(playbook_id: int | None) -> bool:
    """A low-risk playbook that allows it runs without a human (see `approvals.approve_by_policy`)."""
    return Playbook.objects.filter(pk=playbook_id, auto_approve=True, risk_level=RiskLevel.LOW).exists()

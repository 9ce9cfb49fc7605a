"""Verifying a carried-out remediation: merged, healthy, then quiet — or not.

`watch_executions` is one pass of the watcher (`manage.py watch_executions`; the scheduler
runs it every minute). Each execution under verification moves on at most one stage a pass:

    code fix:  awaiting_merge ──merged──► health_check ──2xx──► quiet_window ──quiet──► verified (resolved)
                     └─ PR closed unmerged / branch deleted ──► abandoned (the incident waits for a human)
    playbook:  (its check steps passed when it ran) ──────────► quiet_window
    any:       the fingerprint fires in the quiet window ──► recurred (regressed, diagnosed again)
               the service stays unhealthy ──► failed (escalated)

Every stage change is a conditional update on the execution's verification state inside a
transaction holding the incident's lock, so two watchers (two clusters) never both apply it.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from incidents.choices import ActivityKind, IncidentStatus
from incidents.models import Event, Incident
from incidents.services.lifecycle import apply_transition, record_activity
from remediation.choices import VERIFICATION_OPEN, ProposalKind, VerificationStatus
from remediation.codehosts import CLOSED, MERGED, CodeHostError, code_host_for
from remediation.execution import change_for, check_url, published_of
from remediation.models import Execution
from remediation.queue import enqueue_knowledge_of_fix
from remediation.repositories import RepositoryError
from remediation.services import request_diagnosis

logger = logging.getLogger(__name__)

S = IncidentStatus
V = VerificationStatus
# A merged fix whose service does not answer healthy for this long has failed verification.
UNHEALTHY_GRACE = timedelta(minutes=15)


def watch_executions(*, now=None) -> dict[str, int]:
    """One pass over every execution under verification; counts of what changed."""
    counts: dict[str, int] = {}
    for execution_id in Execution.objects.filter(verification__in=VERIFICATION_OPEN).values_list("pk", flat=True):
        try:
            outcome = verify(execution_id, now=now or timezone.now())
        except Exception:  # one broken execution must not stop the others' verification
            logger.exception("verifying an execution failed", extra={"execution_id": execution_id})
            outcome = "error"
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def verify(execution_id: int, *, now) -> str:
    """Move one execution on by at most one stage; what happened."""
    execution = Execution.objects.select_related(
        "approval__fix_attempt", "approval__diagnosis", "incident__service_record"
    ).get(pk=execution_id)
    if execution.incident.status != S.VERIFYING:
        return _move(
            execution,
            V.ENDED,
            note=f"Verification ended: the incident became {execution.incident.status}.",
            now=now,
        )
    if execution.verification == V.AWAITING_MERGE:
        return _check_merge(execution, now=now)
    if execution.verification == V.HEALTH_CHECK:
        return _check_health(execution, now=now)
    return _check_quiet(execution, now=now)


def _move(execution: Execution, to: str, *, note: str, now, transition: str = "", message: str = "", **fields) -> str:
    """Advance the verification from its current stage (once), and the incident with it when asked."""
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=execution.incident_id)
        moved = Execution.objects.filter(pk=execution.pk, verification=execution.verification).update(
            verification=to, verification_note=note[:2000], updated_at=now, **fields
        )
        if not moved:
            return "raced"
        if transition and incident.status == S.VERIFYING:
            apply_transition(incident, transition, actor="quench", message=message or note, now=now)
            if transition == S.REGRESSED:
                incident.regression_count += 1
            incident.save()
        elif message:
            record_activity(incident, ActivityKind.NOTE, message[:1000])
    return to


def _check_merge(execution: Execution, *, now) -> str:
    try:
        change = change_for(execution)
        state = code_host_for(execution.incident.service_record).branch_state(change, published_of(execution))
    except (CodeHostError, RepositoryError) as exc:
        Execution.objects.filter(pk=execution.pk).update(
            verification_note=f"Could not check the branch: {exc}"[:2000], updated_at=now
        )
        return "unknown"
    if state.state == MERGED:
        return _move(execution, V.HEALTH_CHECK, note=state.detail, now=now, merged_at=now, message=state.detail)
    if state.state == CLOSED:
        return _move(
            execution,
            V.ABANDONED,
            note=state.detail,
            now=now,
            transition=S.ACKNOWLEDGED,
            message=f"{state.detail} The fix is not going in: reanalyze for a new proposal, or resolve by hand.",
        )
    if execution.verification_note != state.detail:
        Execution.objects.filter(pk=execution.pk).update(verification_note=state.detail, updated_at=now)
    return "waiting"


def _quiet_fields(now) -> dict:
    return {"healthy_at": now, "quiet_until": now + timedelta(seconds=settings.QUENCH_VERIFY_WINDOW_SECONDS)}


def _check_health(execution: Execution, *, now) -> str:
    service = execution.incident.service_record
    url = service.health_check_url if service else ""
    fields = _quiet_fields(now)
    if not url:
        note = f"No health check configured; watching for a recurrence until {fields['quiet_until']:%H:%M:%S} UTC."
        return _move(execution, V.QUIET_WINDOW, note=note, now=now, message=note, **fields)
    healthy, detail = check_url(url)
    if healthy:
        note = f"Healthy ({url}: {detail}); watching for a recurrence until {fields['quiet_until']:%H:%M:%S} UTC."
        return _move(execution, V.QUIET_WINDOW, note=note, now=now, message=note, **fields)
    since = execution.merged_at or now
    if now - since >= UNHEALTHY_GRACE:
        note = f"Verification failed: {url} has not answered healthy since the merge ({detail[:300]})."
        return _move(execution, V.FAILED, note=note, now=now, transition=S.ESCALATED)
    Execution.objects.filter(pk=execution.pk).update(
        verification_note=f"Not healthy yet ({url}: {detail[:300]}); checking again.", updated_at=now
    )
    return "unhealthy"


def recurrences(execution: Execution):
    """Events of the incident's fingerprint that fired after the fix was in place and healthy."""
    since = execution.healthy_at or execution.finished_at
    return Event.objects.filter(incident_id=execution.incident_id, received_at__gt=since).exclude(status="resolved")


def _check_quiet(execution: Execution, *, now) -> str:
    recurred = recurrences(execution).order_by("received_at").first()
    if recurred is not None:
        what = "fix" if execution.kind == ProposalKind.CODE_FIX else "playbook run"
        note = (
            f"The fingerprint fired again at {recurred.received_at:%Y-%m-%d %H:%M:%S} UTC, after the {what} "
            f"was in place: {recurred.title[:300]}"
        )
        outcome = _move(execution, V.RECURRED, note=note, now=now, transition=S.REGRESSED)
        if outcome == V.RECURRED:
            request_diagnosis(execution.incident_id, trigger="regressed")
        return outcome
    if now < execution.quiet_until:
        return "quiet"
    window = settings.QUENCH_VERIFY_WINDOW_SECONDS
    note = f"Verified: no recurrence in the {window // 60} min after the fix was in place and healthy."
    outcome = _move(execution, V.VERIFIED, note=note, now=now, transition=S.RESOLVED, verified_at=now)
    if outcome == V.VERIFIED:
        execution_id = execution.pk
        transaction.on_commit(lambda: enqueue_knowledge_of_fix(execution_id), robust=True)
    return outcome

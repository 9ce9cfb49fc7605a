"""Carrying out an approved proposal: publish the tested fix, or run the playbook's steps.

`run_execution` is a django-q2 task body, and at-least-once delivery means it can run
twice, or in two clusters at once. It claims the `Execution` row with a conditional
update (a claim older than the queue's task timeout belongs to a dead worker and is
taken over); publishing is itself idempotent (see `remediation.codehosts.base`); a
playbook's steps are recorded as they run, and a step found half-run after a crash is
not repeated blindly: the execution fails and says so, because an HTTP call or a command
may not be safe to run twice.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from config.outbound import OutboundError
from config.outbound import request as outbound_request
from incidents.choices import ActivityKind, IncidentStatus
from incidents.models import Incident
from incidents.services.lifecycle import apply_transition, record_activity
from remediation.choices import ExecutionStatus, ProposalKind, VerificationStatus
from remediation.codehosts import Change, CodeHostError, Published, code_host_for
from remediation.codehosts.git import merge_branch
from remediation.models import Execution
from remediation.playbooks import NAMED_TASKS
from remediation.repositories import RepositoryError
from remediation.signals import execution_failed, pull_request_opened

logger = logging.getLogger(__name__)

S = IncidentStatus
STEP_OUTPUT_LIMIT = 4000
PR_OUTPUT_LIMIT = 6000


def branch_name(execution: Execution) -> str:
    attempt = execution.approval.fix_attempt
    return f"quench/incident-{execution.incident_id}-attempt-{attempt.number}"


def incident_url(incident_id: int) -> str:
    return settings.SITE_URL + reverse("admin:incidents_incident_change", args=[incident_id])


def change_for(execution: Execution) -> Change:
    """The tested patch of a code-fix execution as a `Change` (all of it derived from stored records)."""
    approval = execution.approval
    attempt = approval.fix_attempt
    incident = execution.incident
    diagnosis = approval.diagnosis
    service = incident.service_record
    if service is None:
        raise CodeHostError(f"Incident #{incident.pk} has no Service record any more; nothing to publish to.")
    root_cause = diagnosis.hypothesis.strip() or "(no hypothesis recorded)"
    commit_message = (
        f"Fix: {incident.title[:200]}\n\n"
        f"Root cause: {root_cause[:1500]}\n\n"
        f"{attempt.summary.strip()[:1500]}\n\n"
        f"Quench incident #{incident.pk}, fix attempt {attempt.number}, approved by {approval.decided_by}.\n"
    )
    output = attempt.output.strip()
    if len(output) > PR_OUTPUT_LIMIT:
        output = "…\n" + output[-PR_OUTPUT_LIMIT:]
    body = "\n".join(
        [
            f"Quench proposes this fix for [incident #{incident.pk}]({incident_url(incident.pk)}): "
            f"**{incident.title[:300]}** ({incident.severity}, {incident.event_count} events).",
            "",
            "### Root cause",
            root_cause[:3000],
            "",
            "### What the patch does",
            attempt.summary.strip()[:3000] or "(no summary)",
            "",
            f"### Tests (`{attempt.test_command}` → exit {attempt.exit_code})",
            "```",
            output.replace("```", "ʼʼʼ"),
            "```",
            "",
            f"Approved by {approval.decided_by}" + (f": {approval.note}" if approval.note else "") + ".",
        ]
    )
    return Change(
        repository=service.repository,
        default_branch=service.default_branch,
        base_commit=attempt.base_commit,
        diff=attempt.patch,
        branch=branch_name(execution),
        commit_message=commit_message,
        title=f"Fix: {incident.title}"[:250],
        body=body,
        committed_at=approval.decided_at or approval.created_at,
    )


def published_of(execution: Execution) -> Published:
    return Published(
        branch=execution.branch,
        commit_sha=execution.commit_sha,
        pull_request_url=execution.pull_request_url,
        pull_request_number=execution.pull_request_number,
    )


def _claim(execution_id: int) -> bool:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.Q_CLUSTER["timeout"])
    return bool(
        Execution.objects.filter(pk=execution_id, status=ExecutionStatus.RUNNING)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=stale))
        .update(claimed_at=now, updated_at=now)
    )


def run_execution(execution_id: int) -> str:
    """Carry out an approved proposal once; what happened, for the task result."""
    if not _claim(execution_id):
        return "done or in progress elsewhere"
    execution = Execution.objects.select_related(
        "approval__fix_attempt", "approval__playbook", "approval__diagnosis", "incident__service_record"
    ).get(pk=execution_id)
    if execution.started_at is None:
        execution.started_at = timezone.now()
        execution.save(update_fields=["started_at", "updated_at"])
    if execution.incident.status != S.REMEDIATING:
        _finish(execution, ExecutionStatus.FAILED, error=f"Not run: the incident became {execution.incident.status}.")
        return "incident no longer remediating"
    if execution.kind == ProposalKind.CODE_FIX:
        return _publish(execution)
    return _run_playbook(execution)


def _finish(execution: Execution, status: str, *, error: str = "", **fields) -> None:
    execution.status, execution.error, execution.finished_at = status, error[:4000], timezone.now()
    for name, value in fields.items():
        setattr(execution, name, value)
    execution.save()


# --- code fixes ------------------------------------------------------------------------------


def _publish(execution: Execution) -> str:
    started = time.monotonic()
    try:
        change = change_for(execution)
        host = code_host_for(execution.incident.service_record)
        published = host.publish(change)
    except (CodeHostError, RepositoryError) as exc:
        logger.warning("publishing a fix failed", extra={"incident_id": execution.incident_id, "error": str(exc)})
        _failed(execution, f"Publishing the fix failed: {exc}")
        return "failed"
    where = (
        f"pull request #{published.pull_request_number} opened: {published.pull_request_url}"
        if published.pull_request_url
        else f"branch {published.branch} pushed ({published.commit_sha[:12]})"
    )
    _succeeded(
        execution,
        f"Fix published: {where}. Verification waits for the merge.",
        code_host=host.name,
        branch=published.branch,
        commit_sha=published.commit_sha,
        pull_request_url=published.pull_request_url,
        pull_request_number=published.pull_request_number,
        verification=VerificationStatus.AWAITING_MERGE,
        output=f"{where} in {int((time.monotonic() - started) * 1000)} ms",
        verification_note=f"Waiting for {published.branch} to be merged into {change.default_branch}.",
    )
    logger.info("fix published", extra={"incident_id": execution.incident_id, "branch": published.branch})
    return "published"


def _succeeded(execution: Execution, message: str, **fields) -> None:
    """The execution did its part: record it and move the incident on to verification."""
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=execution.incident_id)
        _finish(execution, ExecutionStatus.SUCCEEDED, **fields)
        if execution.kind == ProposalKind.CODE_FIX and (execution.pull_request_url or execution.branch):
            pull_request_opened.send(sender=Execution, execution=execution)
        if incident.status == S.REMEDIATING:
            apply_transition(incident, S.VERIFYING, actor="quench", message=message)
            incident.save(update_fields=["status", "updated_at"])


def _failed(execution: Execution, error: str) -> None:
    """The execution failed: record it and hand the incident to a human."""
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=execution.incident_id)
        _finish(execution, ExecutionStatus.FAILED, error=error, verification=VerificationStatus.FAILED)
        execution_failed.send(sender=Execution, execution=execution)
        if incident.status in (S.REMEDIATING, S.VERIFYING):
            apply_transition(incident, S.ESCALATED, actor="quench", message=f"{error[:500]} A human must look.")
            incident.save(update_fields=["status", "updated_at"])
        else:
            record_activity(incident, ActivityKind.NOTE, error[:500])


# --- playbooks -------------------------------------------------------------------------------


def _run_playbook(execution: Execution) -> str:
    """Run the approved (rendered) steps in order; stop at the first failure."""
    approval = execution.approval
    if not execution.steps and (earlier := _within_cooldown(execution)) is not None:
        _failed(
            execution,
            f"Playbook “{approval.playbook.name}” already ran for {execution.incident.service or 'this service'} "
            f"at {earlier:%H:%M:%S} UTC; its cooldown is {approval.playbook.cooldown_minutes} min, so it was not run again.",
        )
        return "cooldown"
    steps = list(execution.steps)
    for position, rendered in enumerate(approval.dry_run, start=1):
        if position <= len(steps):
            record = steps[position - 1]
            if record.get("status") == "succeeded":
                continue  # done before a redelivery
            _failed(
                execution,
                f"Playbook step {position} ({record.get('name') or record.get('type')}) was interrupted; "
                "it is not repeated automatically because it may not be safe to run twice.",
            )
            return "failed"
        step = rendered["step"]
        record = {
            "position": position,
            "name": rendered.get("name") or step.get("type"),
            "type": step.get("type"),
            "description": rendered.get("description", ""),
            "status": "running",
            "started_at": timezone.now().isoformat(),
        }
        steps.append(record)
        Execution.objects.filter(pk=execution.pk).update(steps=steps, updated_at=timezone.now())
        started = time.monotonic()
        try:
            ok, output = run_step(step, incident_id=execution.incident_id)
        except Exception as exc:  # a bug in a named task must not leave the step "running"
            logger.exception("playbook step crashed", extra={"incident_id": execution.incident_id})
            ok, output = False, f"{type(exc).__name__}: {exc}"
        record.update(
            status="succeeded" if ok else "failed",
            output=output[:STEP_OUTPUT_LIMIT],
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        execution.steps = steps
        Execution.objects.filter(pk=execution.pk).update(steps=steps, updated_at=timezone.now())
        if not ok:
            _failed(execution, f"Playbook step {position} ({record['name']}) failed: {output[:300]}")
            return "failed"
    now = timezone.now()
    quiet_until = now + timedelta(seconds=settings.QUENCH_VERIFY_WINDOW_SECONDS)
    _succeeded(
        execution,
        f"Playbook “{approval.playbook.name}” ran ({len(steps)} steps); watching for a recurrence.",
        steps=steps,
        output=f"{len(steps)} step(s) succeeded",
        verification=VerificationStatus.QUIET_WINDOW,
        healthy_at=now,
        quiet_until=quiet_until,
        verification_note=f"Its check steps passed; watching for a recurrence until {quiet_until:%H:%M:%S} UTC.",
    )
    return "playbook ran"


def _within_cooldown(execution: Execution):
    """When the same playbook last started for the same service within its cooldown (another execution)."""
    playbook = execution.approval.playbook
    since = timezone.now() - timedelta(minutes=playbook.cooldown_minutes)
    return (
        Execution.objects.filter(
            approval__playbook=playbook, incident__service=execution.incident.service, started_at__gte=since
        )
        .exclude(pk=execution.pk)
        .order_by("-started_at")
        .values_list("started_at", flat=True)
        .first()
    )


def run_step(step: dict, *, incident_id: int) -> tuple[bool, str]:
    """Run one rendered playbook step; (succeeded, output)."""
    kind = step.get("type")
    timeout = float(step.get("timeout") or settings.QUENCH_PLAYBOOK_STEP_TIMEOUT_SECONDS)
    if kind == "http":
        return _http_step(step, timeout=timeout)
    if kind == "check":
        return check_url(
            step["url"],
            expect_status=int(step.get("expect_status", 200)),
            contains=step.get("contains", ""),
            timeout=timeout,
        )
    if kind == "command":
        return _command_step(step["command"], timeout=timeout)
    if kind == "task":
        path = NAMED_TASKS.get(step["task"])
        if path is None:
            return False, f"Unknown named task {step['task']!r}."
        result = import_string(path)(incident_id, **(step.get("kwargs") or {}))
        return True, str(result)
    if kind == "wait":
        seconds = float(step["seconds"])
        time.sleep(seconds)
        return True, f"waited {seconds:g} s"
    return False, f"Unknown step type {kind!r}."


def _http_step(step: dict, *, timeout: float) -> tuple[bool, str]:
    body = step.get("body")
    try:
        response = outbound_request(
            step["method"],
            step["url"],
            headers=step.get("headers") or None,
            json=body if isinstance(body, (dict, list)) else None,
            content=body if isinstance(body, str) else None,
            timeout=timeout,
            allow_private=True,
        )
    except OutboundError as exc:
        return False, str(exc)
    expected = step.get("expect_status")
    ok = response.status_code == int(expected) if expected else response.ok
    return ok, f"HTTP {response.status_code} in {response.elapsed_ms} ms\n{response.text[:2000]}"


def check_url(
    url: str, *, expect_status: int = 200, contains: str = "", timeout: float | None = None
) -> tuple[bool, str]:
    """GET `url`: succeeded when it answers `expect_status` (and its body holds `contains`)."""
    try:
        response = outbound_request(
            "GET", url, timeout=timeout or settings.QUENCH_HEALTH_CHECK_TIMEOUT_SECONDS, allow_private=True
        )
    except OutboundError as exc:
        return False, str(exc)
    if response.status_code != expect_status:
        return False, f"HTTP {response.status_code} (expected {expect_status})\n{response.text[:500]}"
    if contains and contains not in response.text:
        return False, f"HTTP {response.status_code}, but the body does not contain {contains!r}"
    return True, f"HTTP {response.status_code} in {response.elapsed_ms} ms"


def _command_step(argv: list[str], *, timeout: float) -> tuple[bool, str]:
    executable = os.path.basename(argv[0]) if argv else ""
    if executable not in settings.QUENCH_PLAYBOOK_COMMANDS:
        return False, f"{executable!r} is not on QUENCH_PLAYBOOK_COMMANDS; refused."
    try:
        completed = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"},
            start_new_session=True,
        )
    except FileNotFoundError:
        return False, f"{argv[0]!r} is not installed."
    except subprocess.TimeoutExpired:
        return False, f"Stopped after {timeout:g} s."
    output = (completed.stdout + completed.stderr).strip()
    return completed.returncode == 0, f"exit {completed.returncode}\n{output[-STEP_OUTPUT_LIMIT:]}"


def merge_execution(execution: Execution) -> str:
    """Merge a published fix's branch on a local git repository (the demo, or a plain server by hand).

    GitHub pull requests are merged on GitHub; the watcher notices either way.
    """
    service = execution.incident.service_record
    if execution.kind != ProposalKind.CODE_FIX or not execution.branch:
        raise CodeHostError(f"Execution #{execution.pk} published no branch.")
    if service is None or execution.code_host != "git":
        raise CodeHostError(f"Merge pull request #{execution.pull_request_number} on GitHub; Quench notices the merge.")
    return merge_branch(
        service.repository,
        execution.branch,
        service.default_branch,
        message=f"Merge {execution.branch}: fix for incident #{execution.incident_id}",
    )

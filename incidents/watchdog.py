"""The watchdog: Quench checks its own pipeline and raises an incident of its own when it stalls.

Each registered check answers "is this part of the pipeline failing right now?". One pass
(`run_watchdog`, scheduled every minute and `manage.py watchdog`) records each verdict in
a `WatchdogCondition` row and, when a condition starts failing, sends a firing signal
through the normal ingest service with service `quench` and the dedup key
`quench-watchdog:<name>` (so each condition has exactly one incident, deduplicated like
any other); when it clears, a resolved signal closes that incident. `/healthz` reads the
rows: a failing condition makes Quench "degraded" or "failing", as the check was registered.

Checks of the incidents app are registered here (`register_builtin_checks`); the apps above
register theirs in `AppConfig.ready()`: remediation (diagnoses failing repeatedly, approvals
overdue but not expired, the sandbox unisolated), knowledge (dead letters piling up),
notifications (approvals nobody was told about, dead deliveries piling up).

The notifications app registers two in its `ready()` (notifications/watchdog_checks.py):
approvals that reached no channel, and notifications going dead.

A check is `check(now) -> Finding`, quick, and must not raise (if it does, the condition
counts as failing with the exception's name as the problem).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django_q.models import Failure, Schedule, Success

from config.api.health import QUEUE_STUCK_AFTER, queue_waiting, register_health_check
from incidents.choices import ActivityKind, IncidentStatus
from incidents.models import Activity, Incident, WatchdogCondition
from incidents.services.ingest import ingest_signals
from incidents.sources.base import Signal, SignalKind, SignalStatus

logger = logging.getLogger(__name__)

SERVICE = "quench"
SOURCE = "quench"
DEGRADED = "degraded"
FAILING = "failing"
# /healthz says the watchdog itself is late when its last pass is older than this.
WATCHDOG_LATE_AFTER = timedelta(minutes=10)
SCHEDULE_LATE_AFTER = timedelta(minutes=5)
_SEVERITY_TO_SIGNAL = {"P0": "critical", "P1": "critical", "P2": "error", "P3": "warning"}


@dataclass(frozen=True)
class Finding:
    """A check's verdict: failing or not, what is wrong in one sentence, and figures to show."""

    failing: bool
    problem: str = ""
    detail: dict = field(default_factory=dict)


OK = Finding(False)


@dataclass(frozen=True)
class WatchdogCheck:
    name: str
    check: Callable[[datetime], Finding]
    severity: str  # of the incident it raises
    health: str  # what /healthz says while it fails: degraded, failing, or "" (another check reports it)


_registry: dict[str, WatchdogCheck] = {}


def register_watchdog_check(
    name: str, check: Callable[[datetime], Finding], *, severity: str = "P2", health: str = DEGRADED
) -> None:
    """Add (or replace, so a second `ready()` is harmless) the watchdog condition `name`.

    `health=""` keeps the condition out of /healthz, for one that a health check of its own
    already reports there (the sandbox's), so the reason is not listed twice.
    """
    if health not in (DEGRADED, FAILING, ""):
        raise ValueError(f"health must be {DEGRADED!r}, {FAILING!r} or empty")
    _registry[name] = WatchdogCheck(name, check, severity, health)


def registered_checks() -> list[WatchdogCheck]:
    return list(_registry.values())


# --- the checks of the incidents app ----------------------------------------------------


# States a new or reopened incident waits in until the pipeline wakes it up.
WAITING_FOR_THE_PIPELINE = (IncidentStatus.TRIGGERED, IncidentStatus.REGRESSED)


def stuck_after() -> dict[str, timedelta]:
    """How long an incident may stay in a state that Quench itself must move it out of."""
    minutes = int(getattr(settings, "QUENCH_WATCHDOG_STUCK_MINUTES", 30))
    return {
        IncidentStatus.TRIGGERED: timedelta(minutes=minutes),  # a wake-up should start a diagnosis at once
        IncidentStatus.REGRESSED: timedelta(minutes=minutes),
        IncidentStatus.DIAGNOSING: timedelta(minutes=minutes),
        IncidentStatus.REMEDIATING: timedelta(minutes=4 * minutes),  # a pull request or playbook run
    }


def check_stuck_incidents(now: datetime) -> Finding:
    """Incidents left in a state Quench should have moved them out of (its own incidents excepted).

    A triggered (or regressed) incident is Quench's to move only until the pipeline has looked
    at it: once it was woken up for attention, or came back from a diagnosis (no fix to carry
    out: it waits for a human), time spent there is not a stall of Quench's.
    """
    entering = Activity.objects.filter(incident=OuterRef("pk"), to_status=OuterRef("status")).order_by(
        "-created_at", "-id"
    )
    woken = Activity.objects.filter(incident=OuterRef("pk"), kind=ActivityKind.WAKEUP).order_by("-created_at", "-id")
    limits = stuck_after()
    candidates = (
        Incident.objects.filter(status__in=list(limits))
        .exclude(service=SERVICE)
        .annotate(
            entered_at=Subquery(entering.values("created_at")[:1]),
            entered_from=Subquery(entering.values("from_status")[:1]),
            woken_at=Subquery(woken.values("created_at")[:1]),
        )
        .values("pk", "status", "entered_at", "entered_from", "woken_at", "first_seen")
    )
    stuck = []
    for row in candidates:
        since = row["entered_at"] or row["first_seen"]
        if row["status"] in WAITING_FOR_THE_PIPELINE:
            handled = row["entered_from"] == IncidentStatus.DIAGNOSING or (
                row["woken_at"] is not None and row["woken_at"] >= since
            )
            if handled:
                continue
        if now - since > limits[row["status"]]:
            stuck.append({"incident_id": row["pk"], "status": row["status"], "since": since.isoformat()})
    if not stuck:
        return OK
    stuck.sort(key=lambda item: item["since"])
    ids = ", ".join(f"#{item['incident_id']} ({item['status']})" for item in stuck[:5])
    return Finding(True, f"{len(stuck)} incident(s) stuck: {ids}", {"count": len(stuck), "incidents": stuck[:20]})


def check_queue(now: datetime) -> Finding:
    """Tasks waiting in the ORM broker for longer than a cluster would leave them."""
    backlog, oldest = queue_waiting()
    if backlog and oldest and now - oldest > QUEUE_STUCK_AFTER:
        waited = int((now - oldest).total_seconds())
        return Finding(
            True,
            f"{backlog} task(s) queued, the oldest for {waited} s: is a cluster (manage.py qcluster) running?",
            {"backlog": backlog, "oldest_seconds": waited},
        )
    return OK


def check_scheduler(now: datetime) -> Finding:
    """Schedules whose next run is well in the past: the cluster's scheduler is not running."""
    late = list(
        Schedule.objects.exclude(repeats=0)
        .filter(next_run__lt=now - SCHEDULE_LATE_AFTER)
        .order_by("next_run")
        .values_list("name", "next_run")[:10]
    )
    if not late:
        return OK
    name, next_run = late[0]
    return Finding(
        True,
        f"{len(late)} schedule(s) overdue, e.g. “{name}” due {int((now - next_run).total_seconds())} s ago",
        {"overdue": [{"name": item[0], "next_run": item[1].isoformat()} for item in late]},
    )


def check_task_failures(now: datetime) -> Finding:
    """Many tasks failing in the last hour (django-q2's Failure records)."""
    threshold = int(getattr(settings, "QUENCH_WATCHDOG_TASK_FAILURES", 5))
    since = now - timedelta(hours=1)
    failures = Failure.objects.filter(stopped__gte=since).count()
    if failures < threshold:
        return OK
    successes = Success.objects.filter(stopped__gte=since).count()
    functions = sorted(set(Failure.objects.filter(stopped__gte=since).values_list("func", flat=True)[:50]))
    return Finding(
        True,
        f"{failures} task(s) failed in the last hour ({successes} succeeded): {', '.join(functions[:3])}",
        {"failures": failures, "successes": successes, "functions": functions},
    )


def register_builtin_checks() -> None:
    """The incidents app's own conditions, and the /healthz view of all conditions."""
    register_watchdog_check("stuck_incidents", check_stuck_incidents, severity="P2", health=DEGRADED)
    register_watchdog_check("queue_stalled", check_queue, severity="P1", health=FAILING)
    register_watchdog_check("scheduler_stalled", check_scheduler, severity="P1", health=FAILING)
    register_watchdog_check("tasks_failing", check_task_failures, severity="P2", health=DEGRADED)
    register_health_check("watchdog", watchdog_health_degraded, critical=False)
    register_health_check("pipeline", watchdog_health_failing, critical=True)


# --- one pass ------------------------------------------------------------------------------


def _signal(check: WatchdogCheck, finding: Finding, status: str, sent_at: datetime) -> Signal:
    return Signal(
        source=SOURCE,
        kind=SignalKind.ALERT,
        status=status,
        title=f"Quench watchdog: {check.name.replace('_', ' ')}",
        message=finding.problem or "The condition cleared.",
        service=SERVICE,
        severity=_SEVERITY_TO_SIGNAL.get(check.severity, "error"),
        alertname=f"QuenchWatchdog_{check.name}",
        labels={"condition": check.name},
        dedup_key=f"quench-watchdog:{check.name}",
        # Signals are sent only when a condition changes (the WatchdogCondition row says which),
        # so each has its own id; a re-raise after someone resolved the incident is a regression.
        source_id=f"watchdog:{check.name}:{sent_at.isoformat()}:{status}",
        payload={"condition": check.name, "problem": finding.problem, "detail": finding.detail},
    )


def evaluate(check: WatchdogCheck, now: datetime) -> Finding:
    try:
        return check.check(now)
    except Exception as exc:  # a broken check is itself a failing condition, never a crashed pass
        logger.exception("watchdog check failed", extra={"condition": check.name})
        return Finding(True, f"the check itself failed: {type(exc).__name__}")


def run_watchdog(*, now: datetime | None = None) -> dict[str, str]:
    """One pass over every condition; what happened to each: ok, failing, raised, cleared."""
    now = now or timezone.now()
    return {check.name: _settle(check, evaluate(check, now), now) for check in registered_checks()}


def _settle(check: WatchdogCheck, finding: Finding, now: datetime) -> str:
    """Record one verdict and raise or resolve the condition's incident when the verdict changed.

    Under the condition row's lock, so two passes running at once (two clusters, a cron
    job beside the scheduler) send one signal between them, not two.
    """
    with transaction.atomic():
        condition, _ = WatchdogCondition.objects.select_for_update().get_or_create(
            name=check.name, defaults={"checked_at": now}
        )
        was_failing = condition.failing
        condition.checked_at = now
        if finding.failing:
            incident_open = (
                condition.incident_id is not None
                and Incident.objects.filter(pk=condition.incident_id).exclude(status=IncidentStatus.RESOLVED).exists()
            )
            if not was_failing or not incident_open:
                condition.since = condition.since if was_failing and condition.since else now
                result = ingest_signals([_signal(check, finding, SignalStatus.FIRING, now)])[0]
                condition.incident_id = result.incident_id
                outcome = "raised"
                logger.warning("watchdog condition failing: %s", finding.problem, extra={"condition": check.name})
            else:
                outcome = "failing"
            condition.failing, condition.problem, condition.detail = True, finding.problem[:500], finding.detail
        else:
            if was_failing:
                ingest_signals([_signal(check, finding, SignalStatus.RESOLVED, now)])
                outcome = "cleared"
                logger.info("watchdog condition cleared", extra={"condition": check.name})
            else:
                outcome = "ok"
            condition.failing, condition.problem, condition.detail, condition.since = False, "", {}, None
        condition.save()
    return outcome


# --- what /healthz sees ---------------------------------------------------------------------


def _failing_conditions(level: str) -> list[WatchdogCondition]:
    names = [check.name for check in registered_checks() if check.health == level]
    return list(WatchdogCondition.objects.filter(name__in=names, failing=True).order_by("name"))


def watchdog_health_degraded() -> dict:
    """Non-critical /healthz check: degraded-level conditions failing, or the watchdog not running."""
    failing = _failing_conditions(DEGRADED)
    last = WatchdogCondition.objects.order_by("-checked_at").values_list("checked_at", flat=True).first()
    problems = [f"{condition.name}: {condition.problem}" for condition in failing]
    # Never run yet is a fresh install (the scheduler check covers a cluster that never starts).
    if last is not None and timezone.now() - last > WATCHDOG_LATE_AFTER:
        problems.append(f"the watchdog last ran at {last.isoformat()}")
    if problems:
        return {"ok": False, "problem": "; ".join(problems), "conditions": [c.name for c in failing]}
    return {"ok": True, "last_run": last.isoformat() if last else None}


def watchdog_health_failing() -> dict:
    """Critical /healthz check: conditions that stop the pipeline (queue, scheduler) failing."""
    failing = _failing_conditions(FAILING)
    if failing:
        return {
            "ok": False,
            "problem": "; ".join(f"{condition.name}: {condition.problem}" for condition in failing),
            "conditions": [condition.name for condition in failing],
        }
    return {"ok": True}

"""The watchdog: each condition raises one `quench` incident through ingest when it fires, resolves it when
it clears; /healthz says ok, degraded (with reasons) or failing."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Failure, OrmQ, Schedule

from incidents import watchdog
from incidents.models import Incident, WatchdogCondition
from incidents.services import acknowledge_incident
from incidents.tasks import heartbeat
from incidents.watchdog import OK, Finding, register_watchdog_check, run_watchdog
from knowledge.models import DeadLetter
from remediation.models import ApprovalRequest
from tests.cluster import run_cluster_until
from tests.concurrency import at_once
from tests.record_factories import ActivityFactory, ApprovalFactory, DiagnosisFactory, IncidentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def scheduler_on_time(db):
    """The migrations' schedules are due when the test database was made; push them to the future."""
    Schedule.objects.update(next_run=timezone.now() + timedelta(minutes=1))


def watchdog_incident(name: str) -> Incident:
    return Incident.objects.get(service="quench", dedup_key=f"quench-watchdog:{name}")


def fires_then_clears(name: str, make_it_fail, make_it_clear, *, now=None):
    """Run the watchdog across a failure and its repair; the incident it raised, reloaded."""
    assert run_watchdog(now=now)[name] == "ok"
    assert not Incident.objects.filter(service="quench").exists()

    make_it_fail()
    assert run_watchdog(now=now)[name] == "raised"
    incident = watchdog_incident(name)
    assert incident.status == "triggered" and incident.source == "quench" and incident.event_count == 1
    condition = WatchdogCondition.objects.get(name=name)
    assert condition.failing and condition.incident_id == incident.pk and condition.problem

    # Still failing: the same incident, no new event (deduplicated by fingerprint and source id).
    assert run_watchdog(now=now)[name] == "failing"
    assert Incident.objects.filter(service="quench").count() == 1
    incident.refresh_from_db()
    assert incident.event_count == 1

    make_it_clear()
    assert run_watchdog(now=now)[name] == "cleared"
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert not WatchdogCondition.objects.get(name=name).failing
    assert run_watchdog(now=now)[name] == "ok"
    return incident


def test_stuck_incidents(settings):
    settings.QUENCH_WATCHDOG_STUCK_MINUTES = 30
    fresh = IncidentFactory(first_seen=timezone.now() - timedelta(minutes=5))
    old = IncidentFactory(first_seen=timezone.now() - timedelta(hours=2))

    def stuck():
        Incident.objects.filter(pk=old.pk).update(status="triggered")

    def unstuck():
        acknowledge_incident(old.pk, actor="alice")

    Incident.objects.filter(pk=old.pk).update(status="acknowledged")
    incident = fires_then_clears("stuck_incidents", stuck, unstuck)
    assert f"#{old.pk} (triggered)" in incident.message and f"#{fresh.pk}" not in incident.message
    assert incident.title == "Quench watchdog: stuck incidents"


def test_a_stuck_incident_counts_from_when_it_entered_its_state(settings):
    """An old incident that became `diagnosing` a minute ago is not stuck."""
    settings.QUENCH_WATCHDOG_STUCK_MINUTES = 30
    incident = IncidentFactory(first_seen=timezone.now() - timedelta(hours=5), status="diagnosing")
    ActivityFactory(incident=incident, to_status="diagnosing", created_at=timezone.now() - timedelta(minutes=1))
    assert run_watchdog()["stuck_incidents"] == "ok"


def test_an_incident_the_pipeline_has_looked_at_is_waiting_for_a_human_not_stuck(settings):
    """Triggered after a diagnosis found nothing to carry out, or woken up for attention: not Quench's stall."""
    settings.QUENCH_WATCHDOG_STUCK_MINUTES = 30
    hours_ago = timezone.now() - timedelta(hours=3)
    diagnosed = IncidentFactory(first_seen=hours_ago, status="triggered")
    ActivityFactory(incident=diagnosed, from_status="diagnosing", to_status="triggered", created_at=hours_ago)
    woken = IncidentFactory(first_seen=hours_ago, status="triggered")
    ActivityFactory(incident=woken, to_status="triggered", created_at=hours_ago)
    ActivityFactory(incident=woken, kind="wakeup", created_at=hours_ago + timedelta(seconds=5))
    assert run_watchdog()["stuck_incidents"] == "ok"

    never_woken = IncidentFactory(first_seen=hours_ago, status="triggered")
    ActivityFactory(incident=never_woken, to_status="triggered", created_at=hours_ago)
    assert run_watchdog()["stuck_incidents"] == "raised"
    message = Incident.objects.get(service="quench").message
    assert f"#{never_woken.pk} (triggered)" in message
    assert f"#{diagnosed.pk} " not in message and f"#{woken.pk} " not in message


def test_the_queue_not_running():
    def waiting():
        OrmQ.objects.create(key="quench", payload="x", lock=timezone.now() - timedelta(minutes=30))

    fires_then_clears("queue_stalled", waiting, lambda: OrmQ.objects.all().delete())


def test_the_scheduler_not_running():
    def overdue():
        Schedule.objects.filter(name="quench: watchdog (self-check)").update(
            next_run=timezone.now() - timedelta(minutes=20)
        )

    incident = fires_then_clears(
        "scheduler_stalled", overdue, lambda: Schedule.objects.update(next_run=timezone.now() + timedelta(minutes=1))
    )
    assert "quench: watchdog (self-check)" in incident.message


def test_tasks_failing(settings):
    settings.QUENCH_WATCHDOG_TASK_FAILURES = 3

    def failures():
        now = timezone.now()
        for number in range(3):
            Failure.objects.create(
                id=f"{number:032x}", name=f"failed-{number}", func="remediation.tasks.run_diagnosis",
                started=now, stopped=now, success=False,
            )  # fmt: skip

    incident = fires_then_clears("tasks_failing", failures, lambda: Failure.objects.all().delete())
    assert "3 task(s) failed in the last hour" in incident.message


def test_diagnoses_failing_repeatedly(settings):
    settings.QUENCH_WATCHDOG_FAILED_DIAGNOSES = 3
    now = timezone.now()

    def failing():
        for minutes in (3, 2, 1):
            DiagnosisFactory(status="failed", error="LLMError: quota", finished_at=now - timedelta(minutes=minutes))

    def one_succeeds():
        DiagnosisFactory(status="succeeded", finished_at=now)

    incident = fires_then_clears("diagnoses_failing", failing, one_succeeds, now=now + timedelta(seconds=1))
    assert "the last 3 diagnoses failed" in incident.message and "LLMError: quota" in incident.message


def test_approvals_past_expiry_not_expired():
    def overdue():
        ApprovalFactory(expires_at=timezone.now() - timedelta(hours=1))

    fires_then_clears("approvals_not_expiring", overdue, lambda: ApprovalRequest.objects.update(status="expired"))


def test_the_sandbox_unisolated(settings, tmp_path):
    settings.QUENCH_SANDBOX_BWRAP = "bwrap"

    def unisolated():
        settings.QUENCH_SANDBOX_BWRAP = str(tmp_path / "no-such-bwrap")

    def isolated():
        settings.QUENCH_SANDBOX_BWRAP = "bwrap"

    incident = fires_then_clears("sandbox_unisolated", unisolated, isolated)
    assert "bubblewrap was not found" in incident.message


def test_dead_letters_piling_up(settings):
    settings.QUENCH_WATCHDOG_DEAD_LETTERS = 3

    def pile_up():
        for _ in range(3):
            DeadLetter.objects.create(
                operation="knowledge_write", payload={}, reason="OperationalError", last_attempt_at=timezone.now()
            )

    def replayed():
        DeadLetter.objects.update(resolved_at=timezone.now())

    incident = fires_then_clears("dead_letters", pile_up, replayed)
    assert "3 knowledge write(s) in dead letters" in incident.message


def test_one_old_dead_letter_is_enough(settings):
    settings.QUENCH_WATCHDOG_DEAD_LETTERS = 10
    letter = DeadLetter.objects.create(
        operation="knowledge_write", payload={}, reason="OperationalError", last_attempt_at=timezone.now()
    )
    assert run_watchdog()["dead_letters"] == "ok"
    DeadLetter.objects.filter(pk=letter.pk).update(created_at=timezone.now() - timedelta(hours=2))
    assert run_watchdog()["dead_letters"] == "raised"


def test_a_resolved_watchdog_incident_is_raised_again_while_the_condition_lasts():
    OrmQ.objects.create(key="quench", payload="x", lock=timezone.now() - timedelta(minutes=30))
    run_watchdog()
    incident = watchdog_incident("queue_stalled")
    Incident.objects.filter(pk=incident.pk).update(status="resolved", resolved_at=timezone.now())

    assert run_watchdog()["queue_stalled"] == "raised"
    incident.refresh_from_db()
    assert incident.status == "regressed" and incident.regression_count == 1


def test_a_check_that_raises_is_a_failing_condition():
    def broken(now):
        raise RuntimeError("boom")

    register_watchdog_check("test_broken", broken)
    try:
        assert run_watchdog()["test_broken"] == "raised"
        assert WatchdogCondition.objects.get(name="test_broken").problem == "the check itself failed: RuntimeError"
    finally:
        watchdog._registry.pop("test_broken")


# --- /healthz -----------------------------------------------------------------------------------


def test_healthz_ok_degraded_and_failing(client, settings):
    heartbeat()
    settings.QUENCH_SANDBOX_BWRAP = "bwrap"
    run_watchdog()
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["checks"]["watchdog"]["ok"] and body["checks"]["pipeline"]["ok"]

    # A degraded-level condition: 200, with the reason.
    for _ in range(10):
        DeadLetter.objects.create(operation="knowledge_write", payload={}, reason="x", last_attempt_at=timezone.now())
    run_watchdog()
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["reasons"] == [f"watchdog: dead_letters: {WatchdogCondition.objects.get(name='dead_letters').problem}"]

    # A failing-level condition: 503.
    Schedule.objects.filter(name="quench: watchdog (self-check)").update(next_run=timezone.now() - timedelta(hours=1))
    run_watchdog()
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    assert body["checks"]["pipeline"]["conditions"] == ["scheduler_stalled"]


def test_healthz_notices_a_watchdog_that_stopped_running(client):
    heartbeat()
    WatchdogCondition.objects.create(name="queue_stalled", checked_at=timezone.now() - timedelta(hours=1))

    body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert "the watchdog last ran at" in body["checks"]["watchdog"]["problem"]


def test_the_management_command_and_the_schedule(capsys):
    call_command("watchdog")
    out = capsys.readouterr().out
    assert "stuck_incidents: ok" in out and "dead_letters: ok" in out
    schedule = Schedule.objects.get(name="quench: watchdog (self-check)")
    assert schedule.func == "incidents.tasks.run_watchdog" and schedule.minutes == 1 and schedule.repeats == -1


def test_a_registered_check_can_be_added_by_an_upper_app():
    """The slot the notifications app uses for undelivered approvals and dead deliveries."""
    state = {"failing": True}

    def undelivered(now):
        return Finding(True, "2 approval(s) with no notification delivered") if state["failing"] else OK

    register_watchdog_check("test_undelivered", undelivered, severity="P2")
    try:
        assert run_watchdog()["test_undelivered"] == "raised"
        state["failing"] = False
        assert run_watchdog()["test_undelivered"] == "cleared"
    finally:
        watchdog._registry.pop("test_undelivered")


@pytest.mark.django_db(transaction=True)
def test_two_passes_at_once_raise_one_incident_with_one_event():
    Schedule.objects.update(next_run=timezone.now() + timedelta(minutes=1))
    OrmQ.objects.create(key="quench", payload="x", lock=timezone.now() - timedelta(minutes=30))
    outcomes = at_once(lambda: run_watchdog()["queue_stalled"], 2)

    assert sorted(outcomes) == ["failing", "raised"]
    incident = watchdog_incident("queue_stalled")
    assert incident.event_count == 1


def test_the_conditions_are_listed_in_the_admin(admin_client):
    OrmQ.objects.create(key="quench", payload="x", lock=timezone.now() - timedelta(minutes=30))
    run_watchdog()

    page = admin_client.get("/admin/incidents/watchdogcondition/?failing__exact=1").content.decode()
    incident = watchdog_incident("queue_stalled")
    assert "queue_stalled" in page and f'href="../incident/{incident.pk}/change/"' in page
    assert "stuck_incidents" not in page


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_scheduled_watchdog_raises_its_incident_in_a_real_cluster(settings):
    settings.QUENCH_WATCHDOG_DEAD_LETTERS = 2
    Schedule.objects.update(next_run=timezone.now() + timedelta(hours=1))
    # As migration 0009 makes it (an earlier transactional test may have flushed the table).
    Schedule.objects.update_or_create(
        name="quench: watchdog (self-check)",
        defaults={
            "func": "incidents.tasks.run_watchdog",
            "schedule_type": "I",
            "minutes": 1,
            "repeats": -1,
            "next_run": timezone.now() - timedelta(seconds=1),
        },
    )
    for _ in range(2):
        DeadLetter.objects.create(operation="knowledge_write", payload={}, reason="x", last_attempt_at=timezone.now())

    # The cluster's scheduler looks at the schedules about every 30 s; give it a few rounds under load.
    run_cluster_until(lambda: Incident.objects.filter(service="quench").exists(), seconds=150)

    incident = watchdog_incident("dead_letters")
    assert incident.title == "Quench watchdog: dead letters"
    assert WatchdogCondition.objects.get(name="dead_letters").failing


def test_an_unisolated_sandbox_is_one_reason_in_healthz_not_two(client, settings, tmp_path):
    heartbeat()
    settings.QUENCH_SANDBOX_BWRAP = str(tmp_path / "no-such-bwrap")
    assert run_watchdog()["sandbox_unisolated"] == "raised"

    body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert [reason.split(":")[0] for reason in body["reasons"]] == ["sandbox"]

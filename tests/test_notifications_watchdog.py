"""The watchdog's notification conditions: approvals nobody was told about, notifications going dead."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from incidents.watchdog import run_watchdog
from notifications.models import Notification
from tests.notify_receiver import make_channel
from tests.record_factories import ApprovalFactory
from tests.test_watchdog import fires_then_clears

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def scheduler_on_time(db):
    Schedule.objects.update(next_run=timezone.now() + timedelta(minutes=1))


def hook(name="hook", **fields):
    return make_channel(
        "webhook", name=name, config={"url": "https://ops.example.com/q"}, secrets={"secret": "x"}, **fields
    )


def old_approval():
    approval = ApprovalFactory()
    type(approval).objects.filter(pk=approval.pk).update(created_at=timezone.now() - timedelta(hours=1))
    return approval


def test_an_approval_no_channel_was_told_about():
    channel = hook(events=["approval_requested"])
    type(channel).objects.filter(pk=channel.pk).update(created_at=timezone.now() - timedelta(days=1))
    approvals = []

    def nobody_told():
        approvals.append(old_approval())

    def told():
        Notification.objects.create(
            channel=channel,
            event="approval_requested",
            dedup_key=f"approval_requested:{approvals[0].pk}",
            approval=approvals[0],
            incident=approvals[0].incident,
            status="sent",
            next_attempt_at=timezone.now(),
        )

    incident = fires_then_clears("undelivered_approvals", nobody_told, told)
    assert "1 pending approval(s) older than 30 minutes reached no channel" in incident.message


def test_an_approval_from_before_any_channel_listened_is_not_counted():
    old_approval()
    channel = hook(events=["approval_requested"])
    assert run_watchdog()["undelivered_approvals"] == "ok"
    type(channel).objects.filter(pk=channel.pk).update(created_at=timezone.now() - timedelta(days=1))
    assert run_watchdog()["undelivered_approvals"] == "raised"


def test_a_recent_approval_is_not_yet_a_problem():
    hook()
    ApprovalFactory()
    assert run_watchdog()["undelivered_approvals"] == "ok"


def test_with_no_channel_for_approvals_there_is_nobody_to_tell():
    hook(events=["incident_opened"])  # a channel, but not for approvals
    hook("off", events=["approval_requested"], enabled=False)
    old_approval()
    assert run_watchdog()["undelivered_approvals"] == "ok"


def test_dead_notifications_piling_up(settings):
    settings.QUENCH_WATCHDOG_DEAD_DELIVERIES = 2
    channel = hook()

    def two_die():
        for n in range(2):
            Notification.objects.create(
                channel=channel,
                event="incident_opened",
                dedup_key=f"dead:{n}",
                status="dead",
                next_attempt_at=timezone.now(),
            )

    def resent():
        Notification.objects.filter(status="dead").update(status="sent")

    incident = fires_then_clears("dead_deliveries", two_die, resent)
    assert "2 notification(s) went dead in the last 24 hours" in incident.message


def test_notifications_that_died_long_ago_do_not_keep_it_failing(settings):
    settings.QUENCH_WATCHDOG_DEAD_DELIVERIES = 1
    channel = hook()
    old = Notification.objects.create(
        channel=channel, event="incident_opened", dedup_key="dead:old", status="dead", next_attempt_at=timezone.now()
    )
    Notification.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=2))
    assert run_watchdog()["dead_deliveries"] == "ok"

"""Unacknowledged P0/P1 escalation, the daily summary and the admin's "send test"."""

from datetime import UTC, datetime, timedelta

import pytest

from incidents.models import Activity, Event, Incident
from incidents.services import acknowledge_incident, resolve_incident
from notifications import services
from notifications.messages import build_message
from notifications.models import Notification
from tests.notify_receiver import Receiver, make_channel, open_incident


@pytest.fixture
def token(make_integration):
    return make_integration("generic").raw_token


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.QUENCH_ESCALATE_AFTER_MINUTES = 15
    settings.QUENCH_ALLOW_PRIVATE_WEBHOOKS = True


def hook(name: str, **fields):
    return make_channel(
        "webhook", name=name, config={"url": "https://ops.example.com/q"}, secrets={"secret": "x"}, **fields
    )


def unacknowledged(channel) -> list[str]:
    return list(
        Notification.objects.filter(channel=channel, event="incident_unacknowledged").values_list(
            "dedup_key", flat=True
        )
    )


def test_an_unacknowledged_p1_is_re_notified_then_escalated(post_json, token):
    oncall, pager = hook("oncall"), hook("pager", is_escalation=True)
    incident = open_incident(post_json, token, severity="P1")
    opened = incident.created_at
    assert services.escalate_unacknowledged(now=opened + timedelta(minutes=14)) == 0

    assert services.escalate_unacknowledged(now=opened + timedelta(minutes=16)) == 1
    assert unacknowledged(oncall) == [f"unacknowledged:incident-{incident.pk}:0:reminder"]
    assert unacknowledged(pager) == []
    assert services.escalate_unacknowledged(now=opened + timedelta(minutes=17)) == 0  # once per step

    assert services.escalate_unacknowledged(now=opened + timedelta(minutes=31)) == 1
    assert unacknowledged(pager) == [f"unacknowledged:incident-{incident.pk}:0:escalation"]
    assert len(unacknowledged(oncall)) == 1
    # The pager hears nothing else: escalation channels get escalations only.
    assert list(Notification.objects.filter(channel=pager).values_list("event", flat=True)) == [
        "incident_unacknowledged"
    ]

    message = build_message(Notification.objects.get(channel=pager))
    assert "Escalated: nobody has acknowledged this P1 for 31 minutes." in message.lines
    assert message.acknowledge_url and message.headline == "Still unacknowledged"


def test_acknowledged_or_less_severe_incidents_are_not_escalated(post_json, token):
    oncall = hook("oncall")
    moderate = open_incident(post_json, token, title="Slow", severity="P2")
    severe = open_incident(post_json, token, title="Down", severity="P0")
    acknowledge_incident(severe.pk, actor="alice")
    later = max(moderate.created_at, severe.created_at) + timedelta(hours=1)
    assert services.escalate_unacknowledged(now=later) == 0
    assert unacknowledged(oncall) == []


def test_a_regression_after_an_acknowledgement_starts_the_clock_again(post_json, token):
    oncall = hook("oncall")
    incident = open_incident(post_json, token, severity="P0")
    acknowledge_incident(incident.pk, actor="alice")
    resolve_incident(incident.pk, actor="alice")
    open_incident(post_json, token, severity="P0")  # fires again: regressed, not acknowledged since
    incident.refresh_from_db()
    assert incident.status == "regressed" and incident.acknowledged_at < incident.regressed_at
    assert services.escalate_unacknowledged(now=incident.regressed_at + timedelta(minutes=16)) == 1
    assert unacknowledged(oncall) == [f"unacknowledged:incident-{incident.pk}:1:reminder"]


def test_the_sweeper_escalates(post_json, token, monkeypatch):
    from notifications import queue

    monkeypatch.setattr(queue.django_q_tasks, "async_task", lambda *args, **kwargs: None)
    oncall = hook("oncall")
    incident = open_incident(post_json, token, severity="P1")
    counts = services.sweep(now=incident.created_at + timedelta(minutes=20))
    assert counts["escalated"] == 1 and len(unacknowledged(oncall)) == 1


def test_the_daily_summary_counts_yesterday_once(post_json, token, settings):
    settings.QUENCH_DAILY_SUMMARY_HOUR = 8
    daily = hook("daily", events=["daily_summary"])
    hook("no summaries", events=["incident_opened"])
    yesterday = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)
    for title, severity in (("A", "P1"), ("B", "P2"), ("C", "P2")):
        incident = open_incident(post_json, token, title=title, severity=severity)
        Incident.objects.filter(pk=incident.pk).update(created_at=yesterday, first_seen=yesterday)
        Event.objects.filter(incident=incident).update(received_at=yesterday)
    resolve_incident(Incident.objects.get(title="C").pk, actor="alice")
    Incident.objects.filter(title="C").update(resolved_at=yesterday + timedelta(hours=1))
    Activity.objects.filter(incident__title="C").update(created_at=yesterday + timedelta(hours=1))
    open_incident(post_json, token, title="Today", severity="P0")  # not yesterday's

    assert services.send_daily_summary(now=datetime(2026, 12, 7, 7, 59, tzinfo=UTC)) == 0  # too early
    assert services.send_daily_summary(now=datetime(2026, 12, 7, 8, 5, tzinfo=UTC)) == 1
    assert services.send_daily_summary(now=datetime(2026, 12, 7, 9, 5, tzinfo=UTC)) == 0  # once a day
    summary = Notification.objects.get(event="daily_summary")
    assert summary.channel == daily and summary.dedup_key == "daily_summary:2026-12-06"
    assert summary.context["lines"] == [
        "Incidents opened: 3 (P1 1, P2 2)",
        "Those incidents now: resolved 1, triggered 2",
        "Resolved that day: 1",
        "Open incidents now: 3",
        "Approvals waiting: 0",
        # The dashboard's figures for the same incidents: alice's resolve was the first response.
        "Of those: MTTA 1h 0m, MTTR 1h 0m",
        "How they ended: human 1, open 2",
        f"Noisiest: #{Incident.objects.get(title='A').pk} A (1 events)",
    ]

    receiver = Receiver()
    try:
        daily.config["url"] = f"{receiver.url}/daily"
        daily.save()
        assert services.deliver(summary.pk) == "sent"
        body = receiver.requests[0].json()
        assert body["event"] == "daily_summary" and body["incident"] is None
        assert body["summary"]["title"] == "Quench daily summary for 2026-12-06"
        assert body["summary"]["lines"][0] == "Incidents opened: 3 (P1 1, P2 2)"
    finally:
        receiver.close()


def test_send_test_from_the_admin_reaches_even_a_disabled_channel(client, django_user_model):
    receiver = Receiver()
    try:
        channel = make_channel("webhook", config={"url": f"{receiver.url}/t"}, secrets={"secret": "x"}, enabled=False)
        django_user_model.objects.create_superuser("boss", password="pw-boss-123456")
        client.login(username="boss", password="pw-boss-123456")
        response = client.post(
            "/admin/notifications/channel/", {"action": "send_test", "_selected_action": [channel.pk]}, follow=True
        )
        assert "Test queued for 1 channel(s)" in response.content.decode()
        test = Notification.objects.get(event="test")
        assert services.deliver(test.pk) == "sent"
        body = receiver.requests[0].json()
        assert body["event"] == "test" and body["summary"]["title"] == "Test of channel “webhook channel”"
    finally:
        receiver.close()


def test_the_sweep_is_scheduled_every_minute_and_runs_by_hand(post_json, token, monkeypatch):
    from io import StringIO

    from django.core.management import call_command
    from django_q.models import Schedule

    from notifications import queue

    assert Schedule.objects.filter(func="notifications.tasks.sweep", schedule_type="I", minutes=1).exists()
    assert Schedule.objects.filter(func="notifications.tasks.daily_summary", schedule_type="H").exists()
    monkeypatch.setattr(queue.django_q_tasks, "async_task", lambda *args, **kwargs: None)
    receiver = Receiver()
    try:
        make_channel("webhook", config={"url": f"{receiver.url}/h"}, secrets={"secret": "x"})
        open_incident(post_json, token, severity="P3")
        out = StringIO()
        call_command("notifications_sweep", deliver=True, stdout=out)
        assert "Delivered: {'sent': 1}" in out.getvalue()
        assert len(receiver.requests) == 1
    finally:
        receiver.close()

"""Delivering the outbox: signed webhook bodies, retries with backoff, dead rows, disabled channels, exactly once."""

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from notifications import services, vault
from notifications.models import Channel, Delivery, Notification
from tests.cluster import run_cluster_until
from tests.concurrency import at_once
from tests.notify_receiver import Receiver, make_channel, open_incident, refused_url

SECRET = "s3cret-shared-with-the-receiver"


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _local_targets(settings):
    settings.QUENCH_ALLOW_PRIVATE_WEBHOOKS = True
    settings.QUENCH_NOTIFY_TIMEOUT_SECONDS = 1
    settings.SITE_URL = "https://quench.example.com"


@pytest.fixture
def token(make_integration):
    return make_integration("generic").raw_token


def signed_by_secret(received) -> bool:
    """What an endpoint does with X-Quench-Signature: recompute the HMAC of "<timestamp>.<body>"."""
    timestamp = received.headers.get("x-quench-timestamp", "")
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"sha256={expected}", received.headers.get("x-quench-signature", ""))


def webhook(receiver, **fields):
    receiver.verify = signed_by_secret
    return make_channel("webhook", config={"url": f"{receiver.url}/hook"}, secrets={"secret": SECRET}, **fields)


def only_notification(**filters) -> Notification:
    rows = list(Notification.objects.filter(**filters))
    assert len(rows) == 1, rows
    return rows[0]


def test_the_webhook_is_signed_and_shaped_as_documented(receiver, post_json, token):
    channel = webhook(receiver)
    incident = open_incident(post_json, token, title="Checkout fails: KeyError 'price'", severity="P1")
    notification = only_notification(channel=channel)
    assert notification.event == "incident_opened" and notification.status == "pending"

    assert services.deliver(notification.pk) == "sent"
    [request] = receiver.requests
    assert receiver.verified == [True]
    assert request.path == "/hook"
    timestamp = request.headers["x-quench-timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-quench-signature"] == f"sha256={expected}"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert set(body) == {"event", "incident", "approval", "sent_at"}
    assert body["event"] == "incident_opened" and body["approval"] is None
    assert body["incident"] == {
        "id": incident.pk,
        "title": "Checkout fails: KeyError 'price'",
        "severity": "P1",
        "status": "Triggered",
        "service": "shop",
        "url": f"https://quench.example.com/admin/incidents/incident/{incident.pk}/change/",
    }
    notification.refresh_from_db()
    assert notification.status == "sent" and notification.attempts == 1
    [delivery] = notification.deliveries.all()
    assert delivery.status == "sent" and delivery.response_code == 200 and delivery.response_body == "ok"


def test_a_receiver_with_another_secret_refuses_and_the_channel_is_disabled(receiver, post_json, token):
    channel = webhook(receiver)
    Channel.objects.filter(pk=channel.pk).update(
        config={**channel.config, "secret": vault.encrypt("not-the-shared-one")}
    )
    open_incident(post_json, token)
    assert services.deliver(Notification.objects.get().pk) == "permanent"
    assert receiver.verified == [False]
    channel.refresh_from_db()
    assert not channel.enabled and "HTTP 401" in channel.disabled_reason


def test_a_tampered_body_does_not_verify(receiver, post_json, token):
    webhook(receiver)
    open_incident(post_json, token)
    services.deliver(Notification.objects.get().pk)
    request = receiver.requests[0]
    timestamp = request.headers["x-quench-timestamp"]
    forged = request.body.replace(b"P1", b"P3")
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + forged, hashlib.sha256).hexdigest()
    assert request.headers["x-quench-signature"] != f"sha256={expected}"


def test_a_500_is_retried_with_backoff_then_sent_once(receiver, post_json, token, settings):
    settings.QUENCH_NOTIFY_RETRY_BASE_SECONDS = 30
    webhook(receiver)
    open_incident(post_json, token)
    notification = Notification.objects.get()
    receiver.answer((500, {}, b"upstream broke"))
    before = timezone.now()
    assert services.deliver(notification.pk) == "retry"
    notification.refresh_from_db()
    assert notification.status == "retrying"
    # Attempt 1: 30 s base, "equal jitter" → between 15 and 30 s.
    assert before + timedelta(seconds=15) <= notification.next_attempt_at <= timezone.now() + timedelta(seconds=30)
    failed = notification.deliveries.get()
    assert (failed.status, failed.response_code, failed.response_body) == ("retry", 500, "upstream broke")
    assert failed.next_retry_at == notification.next_attempt_at and "HTTP 500" in failed.error

    assert services.deliver(notification.pk) == "not due, already sent, or taken by another worker"
    assert len(receiver.requests) == 1
    assert services.deliver(notification.pk, now=notification.next_attempt_at) == "sent"
    assert services.deliver(notification.pk, now=notification.next_attempt_at + timedelta(hours=1)) != "sent"
    assert len(receiver.requests) == 2
    assert list(notification.deliveries.order_by("attempt").values_list("status", flat=True)) == ["retry", "sent"]


def test_a_429_waits_as_long_as_retry_after_says(receiver, post_json, token):
    webhook(receiver)
    open_incident(post_json, token)
    notification = Notification.objects.get()
    receiver.answer((429, {"Retry-After": "120"}, b"slow down"))
    before = timezone.now()
    assert services.deliver(notification.pk) == "retry"
    notification.refresh_from_db()
    assert before + timedelta(seconds=120) <= notification.next_attempt_at <= timezone.now() + timedelta(seconds=126)
    assert notification.deliveries.get().response_code == 429


def test_timeouts_and_refused_connections_are_retried(receiver, post_json, token):
    channel = webhook(receiver)
    open_incident(post_json, token)
    notification = Notification.objects.get()
    receiver.answer("timeout")
    assert services.deliver(notification.pk) == "retry"
    timed_out = notification.deliveries.get()
    assert "timed out" in timed_out.error and timed_out.response_code is None and timed_out.duration_ms >= 900

    Channel.objects.filter(pk=channel.pk).update(config={**channel.config, "url": refused_url()})
    notification.refresh_from_db()
    assert services.deliver(notification.pk, now=notification.next_attempt_at) == "retry"
    refused = notification.deliveries.get(attempt=2)
    assert "failed" in refused.error and refused.status == "retry"


def test_after_the_last_attempt_it_is_dead_and_can_be_resent(receiver, post_json, token, settings):
    settings.QUENCH_NOTIFY_MAX_ATTEMPTS = 3
    webhook(receiver)
    open_incident(post_json, token)
    notification = Notification.objects.get()
    receiver.default = (503, {}, b"down")
    now = timezone.now()
    outcomes = []
    for _ in range(5):
        outcomes.append(services.deliver(notification.pk, now=now))
        now += timedelta(hours=2)
    assert outcomes[:3] == ["retry", "retry", "dead"]
    assert len(receiver.requests) == 3  # nothing after it died
    notification.refresh_from_db()
    assert notification.status == "dead" and "HTTP 503" in notification.last_error
    assert services.dead_deliveries_count() == 1

    receiver.default = (200, {}, b"ok")
    assert services.resend(notification.pk) is True
    assert services.resend(notification.pk) is False  # not dead any more
    assert services.deliver(notification.pk) == "sent"
    assert list(notification.deliveries.order_by("attempt").values_list("status", flat=True)) == [
        "retry",
        "retry",
        "dead",
        "sent",
    ]
    assert services.dead_deliveries_count() == 0


def test_a_404_disables_the_channel_and_says_why(receiver, post_json, token):
    channel = webhook(receiver)
    open_incident(post_json, token, dedup_key="one")
    first = Notification.objects.get()
    receiver.answer((404, {}, b"no such hook"))
    assert services.deliver(first.pk) == "permanent"
    channel.refresh_from_db()
    assert channel.enabled is False and "HTTP 404" in channel.disabled_reason and channel.disabled_at
    first.refresh_from_db()
    assert first.status == "dead" and first.deliveries.get().status == "permanent"

    # Rows already queued for it are skipped, not posted; new events do not queue for it.
    Channel.objects.filter(pk=channel.pk).update(enabled=True)
    open_incident(post_json, token, title="Another", dedup_key="two")
    Channel.objects.filter(pk=channel.pk).update(enabled=False)
    second = Notification.objects.exclude(pk=first.pk).get()
    assert services.deliver(second.pk) == "skipped: channel disabled"
    open_incident(post_json, token, title="A third", dedup_key="three")
    assert Notification.objects.count() == 2
    assert len(receiver.requests) == 1


def test_one_event_is_written_once_per_channel(receiver, post_json, token):
    channel = webhook(receiver)
    incident = open_incident(post_json, token)
    for _ in range(3):
        with transaction.atomic():
            services.notify("incident_opened", dedup_key=f"incident_opened:incident-{incident.pk}", incident=incident)
    assert Notification.objects.filter(channel=channel).count() == 1


def test_a_worker_lost_mid_send_is_buried_not_resent(receiver, post_json, token):
    webhook(receiver)
    open_incident(post_json, token)
    notification = Notification.objects.get()
    long_ago = timezone.now() - timedelta(minutes=11)
    Notification.objects.filter(pk=notification.pk).update(status="sending", claimed_at=long_ago, attempts=1)
    assert services.sweep() == {"stale": 1}
    notification.refresh_from_db()
    assert notification.status == "dead" and "may have been delivered" in notification.last_error
    assert notification.deliveries.get().status == "unknown"
    assert services.deliver(notification.pk) != "sent" and receiver.requests == []


def test_the_sweeper_enqueues_due_retries_and_lost_enqueues(receiver, post_json, token, monkeypatch):
    from notifications import queue

    webhook(receiver)
    open_incident(post_json, token)
    notification = Notification.objects.get()
    enqueued = []
    monkeypatch.setattr(queue.django_q_tasks, "async_task", lambda func, *args, **kw: enqueued.append((func, args)))
    assert services.sweep() == {}  # just written: its on-commit task will take it
    later = timezone.now() + timedelta(minutes=2)
    assert services.sweep(now=later) == {"enqueued": 1}
    assert enqueued == [("notifications.tasks.deliver_notification", (notification.pk,))]


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_post_once(receiver, post_json, make_integration):
    webhook(receiver)
    open_incident(post_json, make_integration("generic").raw_token)
    notification = Notification.objects.get()
    receiver.delay = 0.3  # every worker is inside its send window at once
    results = at_once(lambda: services.deliver(notification.pk), 8, timeout=30)
    assert sorted(results) == ["not due, already sent, or taken by another worker"] * 7 + ["sent"]
    assert len(receiver.requests) == 1
    assert Delivery.objects.count() == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_clusters_and_redelivered_tasks_post_once(receiver, post_json, make_integration, settings):
    """Real django-q2: the on-commit task plus three redeliveries, two clusters, one post per channel."""
    from django_q.models import OrmQ

    from notifications.queue import enqueue_delivery

    # The cluster also wakes the incident up and diagnoses it: these channels take only openings.
    only_openings = {"events": ["incident_opened"]}
    first, second = (
        webhook(receiver, name="ops hook", **only_openings),
        webhook(receiver, name="audit hook", **only_openings),
    )
    receiver.delay = 0.2
    open_incident(post_json, make_integration("generic").raw_token)  # on commit: one task per row
    rows = list(Notification.objects.values_list("pk", flat=True))
    assert len(rows) == 2
    for notification_id in rows * 3:
        enqueue_delivery(notification_id)

    run_cluster_until(
        lambda: Notification.objects.filter(status="sent").count() == 2 and not OrmQ.objects.exists(),
        90,
        clusters=2,
    )
    assert Notification.objects.filter(status="sent").count() == 2
    assert sorted(json.loads(r.body)["event"] for r in receiver.requests) == ["incident_opened"] * 2
    assert len(receiver.requests) == 2
    assert Delivery.objects.filter(notification__channel=first).count() == 1
    assert Delivery.objects.filter(notification__channel=second).count() == 1

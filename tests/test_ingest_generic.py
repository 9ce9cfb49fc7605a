"""Generic JSON ingestion end to end: stored events, deduplicated incidents, retries, regressions."""

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.choices import EventOutcome, IncidentStatus
from incidents.models import Activity, Event, Incident

URL = "/api/v1/ingest/events"

TRACEBACK = """Traceback (most recent call last):
  File "/srv/app/.venv/lib/python3.11/site-packages/django/core/handlers/base.py", line 197, in _get_response
    response = wrapped_callback(request, *callback_args, **callback_kwargs)
  File "/srv/app/shop/payments/service.py", line {line}, in charge_order
    currency = payload["currency"]
KeyError: 'currency'"""


def crash(order_id=1, line=112, **extra):
    event = {
        "service": "payments",
        "environment": "production",
        "title": f"KeyError: 'currency' for order {order_id}",
        "exception_type": "KeyError",
        "traceback": TRACEBACK.format(line=line),
        "path": f"/api/orders/{order_id}/capture",
        "method": "POST",
        "severity": "error",
    }
    event.update(extra)
    return event


@pytest.fixture
def token(make_integration):
    return make_integration("generic").raw_token


def test_a_crash_opens_an_incident_and_stores_the_event(post_json, token):
    response = post_json(URL, crash(), token)

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["accepted"] == 1 and body["duplicates"] == 0
    assert body["results"][0]["outcome"] == EventOutcome.OPENED
    incident = Incident.objects.get()
    assert incident.status == IncidentStatus.TRIGGERED
    assert incident.service == "payments"
    assert incident.exception_type == "KeyError"
    assert incident.event_count == 1
    assert incident.culprit.endswith("charge_order")
    assert incident.route == "/api/orders/{id}/capture"
    assert incident.timeline.filter(kind="opened").exists()
    assert Event.objects.get().incident == incident


def test_the_same_crash_elsewhere_groups_into_one_incident(post_json, token):
    for order_id, line in [(1, 112), (2, 113), (3, 140)]:
        assert post_json(URL, crash(order_id, line), token).status_code == 202

    incident = Incident.objects.get()
    assert incident.event_count == 3
    assert Event.objects.filter(incident=incident).count() == 3
    assert incident.frequency()["1h"] == 3


def test_a_different_service_is_a_different_incident(post_json, token):
    post_json(URL, crash(), token)
    post_json(URL, crash(service="orders"), token)

    assert Incident.objects.count() == 2


def test_a_retried_delivery_stores_nothing_new(post_json, token):
    event = crash(event_id="evt-123")
    first = post_json(URL, event, token)
    retry = post_json(URL, event, token)

    assert first.json()["accepted"] == 1
    assert retry.status_code == 202
    assert retry.json()["duplicates"] == 1 and retry.json()["accepted"] == 0
    assert Event.objects.count() == 1
    assert Incident.objects.get().event_count == 1


def test_a_retry_with_dedup_key_and_time_is_a_duplicate(post_json, token):
    event = crash(dedup_key="payments-currency", occurred_at="2026-11-23T10:00:00Z")
    post_json(URL, event, token)
    post_json(URL, event, token)

    assert Event.objects.count() == 1


def test_dedup_key_takes_precedence_over_the_fingerprint(post_json, token):
    post_json(URL, crash(dedup_key="one-problem"), token)
    post_json(URL, crash(service="orders", exception_type="ValueError", dedup_key="one-problem"), token)

    incident = Incident.objects.get()
    assert incident.event_count == 2
    assert incident.fingerprint_strategy == "dedup_key"


def test_a_batch_is_one_request_many_events(post_json, token):
    response = post_json(URL, [crash(1), crash(2), crash(3, service="search")], token)

    assert response.status_code == 202
    assert [r["outcome"] for r in response.json()["results"]] == ["opened", "appended", "opened"]
    assert Incident.objects.count() == 2


def test_resolved_by_the_source_then_firing_again_is_a_regression(post_json, token):
    post_json(URL, crash(dedup_key="k"), token)
    resolved = post_json(URL, crash(dedup_key="k", status="resolved"), token)
    assert resolved.json()["results"][0]["outcome"] == EventOutcome.RESOLVED
    incident = Incident.objects.get()
    assert incident.status == IncidentStatus.RESOLVED

    again = post_json(URL, crash(dedup_key="k"), token)

    assert again.json()["results"][0]["outcome"] == EventOutcome.REGRESSED
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.REGRESSED
    assert incident.regression_count == 1
    assert incident.resolved_at is None
    assert Incident.objects.count() == 1
    assert Activity.objects.filter(incident=incident, kind="regressed").count() == 1


def test_a_late_retry_racing_the_resolve_is_still_a_duplicate(post_json, token):
    event = crash(dedup_key="k", event_id="same-id")
    post_json(URL, event, token)
    post_json(URL, crash(dedup_key="k", status="resolved", event_id="resolve-1"), token)

    retry = post_json(URL, event, token)

    assert retry.json()["results"][0]["outcome"] == EventOutcome.DUPLICATE
    assert Incident.objects.get().status == IncidentStatus.RESOLVED


def test_the_same_source_id_long_after_the_resolve_is_a_regression(post_json, token):
    """A source still sending what someone closed (Alertmanager re-notifying) means it is not fixed."""
    event = crash(dedup_key="k", event_id="same-id")
    post_json(URL, event, token)
    post_json(URL, crash(dedup_key="k", status="resolved", event_id="resolve-1"), token)
    Event.objects.update(received_at=timezone.now() - timedelta(minutes=30))

    again = post_json(URL, event, token)

    assert again.json()["results"][0]["outcome"] == EventOutcome.REGRESSED
    assert Incident.objects.get().regression_count == 1


def test_a_resolve_during_a_remediation_is_only_noted(post_json, token):
    post_json(URL, crash(dedup_key="k"), token)
    Incident.objects.update(status=IncidentStatus.AWAITING_APPROVAL)

    response = post_json(URL, crash(dedup_key="k", status="resolved"), token)

    assert response.json()["results"][0]["outcome"] == EventOutcome.NOTED
    incident = Incident.objects.get()
    assert incident.status == IncidentStatus.AWAITING_APPROVAL
    assert incident.timeline.filter(kind="source_resolved").exists()


def test_a_resolve_for_something_never_seen_is_accepted_and_ignored(post_json, token):
    response = post_json(URL, crash(status="resolved"), token)

    assert response.status_code == 202
    assert Incident.objects.count() == 0


def test_secrets_in_the_payload_are_redacted_before_storage(post_json, token):
    secret = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    event = crash(
        message=f"push failed with token {secret}",
        labels={"db": "postgres://app:hunter2secret@db.internal:5432/shop"},
    )
    post_json(URL, event, token)

    stored = Event.objects.get()
    everything = f"{stored.payload} {stored.message} {stored.labels} {Incident.objects.get().message}"
    assert secret not in everything
    assert "hunter2secret" not in everything


@pytest.mark.django_db(transaction=True)
def test_an_incident_resolved_between_read_and_write_is_regressed_not_appended(post_json, monkeypatch):
    """The bulk path reads without a lock; a state change in between sends the batch down the locked path."""
    import threading

    from django.db import connection

    from incidents.services import ingest
    from tests.factories import IntegrationFactory

    token = IntegrationFactory(kind="generic").raw_token
    post_json(URL, crash(), token)
    real_check = ingest._is_plain_repeat
    calls = []

    def resolve_meanwhile(incident, signal):
        if not calls:
            # Another connection resolves and commits while this request is between its read and its write.
            def other_engineer():
                Incident.objects.filter(pk=incident.pk).update(
                    status=IncidentStatus.RESOLVED, resolved_at=timezone.now()
                )
                connection.close()

            thread = threading.Thread(target=other_engineer)
            thread.start()
            thread.join()
        calls.append(1)
        return real_check(incident, signal)

    monkeypatch.setattr(ingest, "_is_plain_repeat", resolve_meanwhile)
    response = post_json(URL, crash(order_id=2), token)

    assert response.json()["results"][0]["outcome"] == EventOutcome.REGRESSED
    incident = Incident.objects.get()
    assert incident.regression_count == 1
    assert incident.event_count == 2
    assert Event.objects.filter(incident=incident).count() == 2

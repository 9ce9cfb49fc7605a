"""Each webhook endpoint end to end: documented payload in, incidents and events out."""

import uuid

import pytest

from incidents.choices import EventOutcome, IncidentStatus
from incidents.demo import payloads
from incidents.models import Event, Incident
from tests.source_payloads import fixture_loader

load_sentry = fixture_loader("sentry")

AM = "/api/v1/ingest/alertmanager"
PD = "/api/v1/ingest/events-v2"


@pytest.fixture
def token(make_integration):
    return lambda kind, **fields: make_integration(kind, **fields).raw_token


def outcomes(response):
    assert response.status_code == 202, response.content
    return [result["outcome"] for result in response.json()["results"]]


def test_alertmanager_batch_groups_replicas_and_keeps_others_apart(post_json, token):
    response = post_json(AM, payloads.alertmanager_batch("firing"), token("alertmanager"))

    assert sorted(outcomes(response)) == ["appended", "opened", "opened", "opened"]
    by_alert = {incident.alertname: incident for incident in Incident.objects.all()}
    assert set(by_alert) == {"HighErrorRate", "Watchdog", "NodeFilesystemAlmostOutOfSpace"}
    high = by_alert["HighErrorRate"]
    assert high.event_count == 2  # two replicas, one problem
    assert high.service == "checkout"
    assert high.severity == "P1"
    assert by_alert["Watchdog"].category == "heartbeat"
    assert by_alert["Watchdog"].severity == "P3"
    assert by_alert["NodeFilesystemAlmostOutOfSpace"].category == "host"


def test_alertmanager_retry_stores_nothing_and_resolved_closes_once_all_alerts_resolve(post_json, token):
    am_token = token("alertmanager")
    post_json(AM, payloads.alertmanager_batch("firing"), am_token)
    events = Event.objects.count()

    retry = post_json(AM, payloads.alertmanager_batch("firing"), am_token)

    assert outcomes(retry) == ["duplicate"] * 4
    assert Event.objects.count() == events

    half = payloads.alertmanager_batch("resolved")
    half["alerts"] = half["alerts"][:1]
    assert outcomes(post_json(AM, half, am_token)) == [EventOutcome.NOTED]
    high = Incident.objects.get(alertname="HighErrorRate")
    assert high.status == IncidentStatus.TRIGGERED
    assert "1 still firing" in high.timeline.last().message

    rest = payloads.alertmanager_batch("resolved")
    rest["alerts"] = rest["alerts"][1:]
    assert outcomes(post_json(AM, rest, am_token)) == [EventOutcome.RESOLVED]
    assert Incident.objects.get(alertname="HighErrorRate").status == IncidentStatus.RESOLVED


def test_alertmanager_integration_default_service(post_json, token):
    body = payloads.alertmanager_batch("firing")
    body["alerts"] = [body["alerts"][3]]  # the filesystem alert names no service
    post_json(AM, body, token("alertmanager", default_service="db-hosts"))

    assert Incident.objects.get().service == "db-hosts"


def test_grafana_alert(post_json, token):
    response = post_json("/api/v1/ingest/grafana", payloads.grafana_alert(), token("grafana"))

    assert outcomes(response) == ["opened"]
    incident = Incident.objects.get()
    assert incident.alertname == "SlowSearchQueries"
    assert incident.service == "search"


def test_sentry_events_of_one_bug_make_one_incident_with_in_app_frames(post_json, token):
    sentry_token = token("sentry")
    url = f"/api/v1/ingest/sentry?token={sentry_token}"
    event_id = uuid.uuid4().hex
    assert outcomes(post_json(url, payloads.sentry_event(event_id))) == ["opened"]
    assert outcomes(post_json(url, payloads.sentry_event(event_id))) == ["duplicate"]
    assert outcomes(post_json(url, payloads.sentry_event(uuid.uuid4().hex))) == ["appended"]

    incident = Incident.objects.get()
    assert incident.exception_type == "AttributeError"
    assert incident.culprit == "shop.accounts.views.profile"
    assert incident.event_count == 2
    frames = [c for c in incident.fingerprint_components if c["name"] == "frames"][0]
    assert frames["contributes"] and not any("django" in value for value in frames["values"])
    event = Event.objects.first()
    assert event.path == "/accounts/8812/profile"
    assert event.method == "GET"


def test_events_v2_trigger_acknowledge_resolve_in_pagerduty_shape(post_json, make_integration):
    routing_key = make_integration("events_v2").raw_token
    trigger = payloads.events_v2_trigger(routing_key)

    response = post_json(PD, trigger)

    assert response.status_code == 202
    assert response.json() == {"status": "success", "message": "Event processed", "dedup_key": trigger["dedup_key"]}
    incident = Incident.objects.get()
    assert incident.service == "billing"
    assert incident.severity == "P2"
    assert routing_key not in str(Event.objects.get().payload)

    ack = {"routing_key": routing_key, "event_action": "acknowledge", "dedup_key": trigger["dedup_key"]}
    assert post_json(PD, ack).status_code == 202
    assert Incident.objects.get().status == IncidentStatus.ACKNOWLEDGED

    resolve = {"routing_key": routing_key, "event_action": "resolve", "dedup_key": trigger["dedup_key"]}
    assert post_json(PD, resolve).status_code == 202
    assert Incident.objects.get().status == IncidentStatus.RESOLVED


def test_events_v2_generated_dedup_key_resolves_the_same_incident(post_json, make_integration):
    routing_key = make_integration("events_v2").raw_token
    trigger = payloads.events_v2_trigger(routing_key)
    del trigger["dedup_key"]

    dedup_key = post_json(PD, trigger).json()["dedup_key"]
    again = post_json(PD, trigger).json()["dedup_key"]
    post_json(PD, {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key})

    assert dedup_key and dedup_key == again
    assert Incident.objects.get().status == IncidentStatus.RESOLVED


def test_events_v2_errors_in_pagerduty_shape(post_json, make_integration):
    routing_key = make_integration("events_v2").raw_token

    missing_key = post_json(PD, {"event_action": "trigger", "payload": {}})
    bad_action = post_json(PD, {"routing_key": routing_key, "event_action": "explode"})
    unknown_key = post_json(PD, {"routing_key": "qk_nope", "event_action": "trigger"})
    wrong_kind = post_json(PD, {"routing_key": make_integration("generic").raw_token, "event_action": "trigger"})
    malformed = post_json(PD, b"{", None)

    for response, status in [
        (missing_key, 400),
        (bad_action, 400),
        (unknown_key, 401),
        (wrong_kind, 401),
        (malformed, 400),
    ]:
        assert response.status_code == status, response.content
        body = response.json()
        assert body["status"] in ("invalid event", "unauthorized")
        assert body["errors"] and body["error"]
    assert "event_action" in str(bad_action.json()["detail"])
    assert Incident.objects.count() == 0


def test_sentry_frame_locals_are_kept_redacted_for_the_replay(post_json, token):
    from remediation.llm.offline.inputs import literal_locals

    payload = load_sentry("event_alert_django.json")
    frames = payload["data"]["event"]["exception"]["values"][-1]["stacktrace"]["frames"]
    frames[-1]["vars"] = {
        "order": "{'id': 42, 'amount_cents': 1999}",  # the SDK sends strings as reprs
        "currency": "'EUR'",
        "attempts": 2,  # ... and other values as JSON
        "password": "'hunter2'",
        "api_url": "'https://user:s3cr3t@payments.example.com/v1'",
    }
    response = post_json(f"/api/v1/ingest/sentry?token={token('sentry')}", payload)
    assert response.status_code == 202, response.content
    [stored] = [frame["vars"] for frame in Event.objects.get().frames if "vars" in frame]
    assert stored["password"] == "[REDACTED]"
    assert "s3cr3t" not in stored["api_url"]
    replayed = literal_locals({"vars": stored})
    assert replayed["order"] == {"id": 42, "amount_cents": 1999}
    assert (replayed["currency"], replayed["attempts"]) == ("EUR", 2)
    assert "password" not in replayed

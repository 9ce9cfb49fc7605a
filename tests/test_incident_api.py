"""The incident API: list with filters, detail with events and timeline, and the actions."""

import pytest

from incidents.choices import IncidentStatus
from incidents.models import Incident

INGEST = "/api/v1/ingest/events"


@pytest.fixture
def incidents(post_json, make_integration):
    token = make_integration("generic").raw_token
    events = [
        {"service": "payments", "title": "Card declined storm", "severity": "critical"},
        {"service": "payments", "title": "Refund job crashed", "exception_type": "ValueError", "severity": "error"},
        {"service": "search", "title": "Slow search index", "severity": "warning"},
    ]
    for body in events:
        assert post_json(INGEST, body, token).status_code == 202
    post_json(INGEST, events[0], token)  # a second occurrence
    return {incident.title: incident for incident in Incident.objects.all()}


@pytest.fixture
def api(client_api, engineer):
    client_api.force_login(engineer)
    return client_api


def test_list_is_paginated_and_newest_first(api, incidents):
    response = api.get("/api/v1/incidents")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert body["results"][0]["title"] == "Card declined storm"


@pytest.mark.parametrize(
    ("query", "titles"),
    [
        ("severity=P1", {"Card declined storm"}),
        ("severity=P2,P3", {"Refund job crashed", "Slow search index"}),
        ("service=search", {"Slow search index"}),
        ("search=refund", {"Refund job crashed"}),
        ("search=card storm", {"Card declined storm"}),
        ("status=open", {"Card declined storm", "Refund job crashed", "Slow search index"}),
        ("status=resolved", set()),
    ],
)
def test_list_filters(api, incidents, query, titles):
    response = api.get(f"/api/v1/incidents?{query}")

    assert response.status_code == 200, response.content
    assert {row["title"] for row in response.json()["results"]} == titles


def test_an_unknown_filter_value_is_a_400_naming_it(api, incidents):
    response = api.get("/api/v1/incidents?severity=P9")

    assert response.status_code == 400
    assert "severity" in response.json()["detail"]


def test_detail_has_events_timeline_frequency_and_fingerprint(api, incidents):
    incident = incidents["Card declined storm"]
    response = api.get(f"/api/v1/incidents/{incident.pk}")

    assert response.status_code == 200
    body = response.json()
    assert len(body["events"]) == 2
    assert body["frequency"] == {"last_1h": 2, "last_24h": 2, "last_7d": 2}
    assert body["timeline"][0]["kind"] == "opened"
    assert body["fingerprint_components"]
    assert all({"name", "contributes", "hint"} <= set(c) for c in body["fingerprint_components"])


def test_acknowledge_resolve_reopen(api, incidents):
    incident = incidents["Refund job crashed"]
    base = f"/api/v1/incidents/{incident.pk}"

    ack = api.post(f"{base}/acknowledge", {"note": "looking"}, format="json")
    assert ack.status_code == 200, ack.content
    assert ack.json()["status"] == IncidentStatus.ACKNOWLEDGED

    resolved = api.post(f"{base}/resolve", {}, format="json")
    assert resolved.json()["status"] == IncidentStatus.RESOLVED

    reopened = api.post(f"{base}/reopen", {}, format="json")
    assert reopened.json()["status"] == IncidentStatus.TRIGGERED
    kinds = [entry["to_status"] for entry in reopened.json()["timeline"] if entry["kind"] == "status"]
    assert kinds == ["acknowledged", "resolved", "triggered"]
    assert reopened.json()["timeline"][1]["actor"] == "oncall"


def test_a_refused_transition_is_409_saying_why(api, incidents):
    incident = incidents["Slow search index"]
    response = api.post(f"/api/v1/incidents/{incident.pk}/reopen", {}, format="json")

    assert response.status_code == 409
    assert "cannot become" in response.json()["error"]


def test_reopening_when_another_incident_is_open_for_the_fingerprint_is_409(
    api, incidents, post_json, make_integration
):
    incident = incidents["Slow search index"]
    api.post(f"/api/v1/incidents/{incident.pk}/resolve", {}, format="json")
    Incident.objects.filter(pk=incident.pk).update(fingerprint="f" * 64)  # make room, then reuse
    other = Incident.objects.get(pk=incidents["Refund job crashed"].pk)
    Incident.objects.filter(pk=incident.pk).update(fingerprint=other.fingerprint)

    response = api.post(f"/api/v1/incidents/{incident.pk}/reopen", {}, format="json")

    assert response.status_code == 409
    assert f"#{other.pk}" in response.json()["error"]


def test_an_unknown_incident_is_404(api, incidents):
    assert api.get("/api/v1/incidents/999999").status_code == 404
    assert api.post("/api/v1/incidents/999999/resolve", {}, format="json").status_code == 404


def test_a_too_long_note_is_400(api, incidents):
    incident = incidents["Slow search index"]
    response = api.post(f"/api/v1/incidents/{incident.pk}/acknowledge", {"note": "x" * 3000}, format="json")

    assert response.status_code == 400
    assert "note" in response.json()["detail"]


def test_anonymous_is_401_and_sees_nothing(client_api, incidents):
    response = client_api.get("/api/v1/incidents")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="api"'
    assert "results" not in response.json()


def test_a_user_without_permission_cannot_act(client_api, incidents, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_incident"))
    client_api.force_login(viewer)
    incident = incidents["Slow search index"]

    assert client_api.get("/api/v1/incidents").status_code == 200
    assert client_api.post(f"/api/v1/incidents/{incident.pk}/resolve", {}, format="json").status_code == 403


def test_an_integration_token_cannot_read_incidents(client_api, incidents, make_integration):
    token = make_integration("generic").raw_token
    response = client_api.get("/api/v1/incidents", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401


def test_openapi_schema_and_docs_page(client_api, db):
    schema = client_api.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in ("/api/v1/ingest/events", "/api/v1/ingest/alertmanager", "/api/v1/incidents/{id}/resolve"):
        assert path in text
    assert "dedup_key" in text and "traceback" in text
    assert client_api.get("/api/docs/").status_code == 200

"""The "reanalyze" action (API and admin): one diagnosis in flight, repeats deduplicated for 10 minutes."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from incidents.models import Incident
from incidents.services import resolve_incident
from remediation.choices import DiagnosisStatus
from remediation.models import Diagnosis


@pytest.fixture
def incident(post_json, make_integration):
    token = make_integration("generic").raw_token
    response = post_json("/api/v1/ingest/events", {"service": "shop", "title": "Checkout fails"}, token)
    return Incident.objects.get(pk=response.json()["results"][0]["incident_id"])


@pytest.fixture
def api(engineer):
    from rest_framework.test import APIClient

    client = APIClient()  # its own client: the ingest fixture's must stay token-authenticated
    client.force_authenticate(engineer)
    return client


def _reanalyze(api, incident_id):
    return api.post(f"/api/v1/incidents/{incident_id}/reanalyze")


def test_reanalyze_queues_one_diagnosis_and_deduplicates_repeats(api, incident):
    first = _reanalyze(api, incident.pk)
    assert first.status_code == 202
    assert first.json()["deduplicated"] is False
    diagnosis_id = first.json()["diagnosis"]["id"]
    assert first.json()["diagnosis"]["status"] == "queued"
    assert Incident.objects.get(pk=incident.pk).status == "diagnosing"

    again = _reanalyze(api, incident.pk)
    assert again.status_code == 202
    assert again.json() | {"diagnosis": None} == {"deduplicated": True, "diagnosis": None}
    assert again.json()["diagnosis"]["id"] == diagnosis_id

    # Finished, but asked again within 10 minutes: still the same one.
    Diagnosis.objects.filter(pk=diagnosis_id).update(status=DiagnosisStatus.SUCCEEDED)
    Incident.objects.filter(pk=incident.pk).update(status="escalated")
    assert _reanalyze(api, incident.pk).json()["diagnosis"]["id"] == diagnosis_id

    # Ten minutes later a new one starts.
    Diagnosis.objects.filter(pk=diagnosis_id).update(created_at=timezone.now() - timedelta(minutes=11))
    later = _reanalyze(api, incident.pk)
    assert later.json()["deduplicated"] is False
    assert later.json()["diagnosis"]["id"] != diagnosis_id
    assert Diagnosis.objects.filter(incident=incident).count() == 2


def test_reanalyze_of_a_resolved_incident_is_refused_with_409(api, incident):
    resolve_incident(incident.pk, actor="oncall")
    response = _reanalyze(api, incident.pk)
    assert response.status_code == 409
    assert "cannot be reanalyzed" in response.json()["error"]
    assert not Diagnosis.objects.exists()


def test_reanalyze_needs_the_change_permission(incident):
    from rest_framework.test import APIClient

    client = APIClient()
    viewer = User.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_incident"))
    client.force_authenticate(viewer)
    assert _reanalyze(client, incident.pk).status_code == 403
    client.force_authenticate(None)
    assert _reanalyze(client, incident.pk).status_code == 401
    assert not Diagnosis.objects.exists()


def test_unknown_incident_is_404(api):
    assert _reanalyze(api, 999999).status_code == 404


def test_the_admin_button_and_action_use_the_same_service(client, engineer, incident):
    client.force_login(engineer)
    url = f"/admin/incidents/incident/{incident.pk}/reanalyze/"
    assert client.get(url).status_code == 405
    response = client.post(url, follow=True)
    assert response.status_code == 200
    assert Diagnosis.objects.filter(incident=incident).count() == 1
    assert b"requested" in response.content
    response = client.post(
        "/admin/incidents/incident/",
        {"action": "reanalyze_selected", "_selected_action": [incident.pk]},
        follow=True,
    )
    assert b"not asked again" in response.content
    assert Diagnosis.objects.filter(incident=incident).count() == 1


def test_the_diagnoses_api_lists_an_incidents_diagnoses(api, incident):
    _reanalyze(api, incident.pk)
    listed = api.get(f"/api/v1/diagnoses?incident={incident.pk}")
    assert listed.status_code == 200
    body = listed.json()
    rows = body["results"] if isinstance(body, dict) else body
    assert [row["incident"] for row in rows] == [incident.pk]
    assert api.get("/api/v1/diagnoses?incident=abc").status_code == 400

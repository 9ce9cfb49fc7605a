"""The approvals API: the queue, approve and reject, with the permission and every refusal."""

import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from remediation.choices import ApprovalStatus
from remediation.models import ApprovalRequest, Execution, FixAttempt
from tests.approval_desk import approver, make_remote, make_service, open_incident, propose_fix, viewer


@pytest.fixture
def proposal(db, tmp_path, post_json, make_integration):
    path, patch = make_remote(tmp_path)
    make_service(path)
    return propose_fix(open_incident(post_json, make_integration("generic").raw_token), patch)


def _basic(username, password):
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def test_the_pending_queue_is_listed_most_severe_then_oldest(proposal, client_api, django_user_model, post_json):
    client_api.force_authenticate(approver(django_user_model))
    response = client_api.get("/api/v1/approvals?status=pending")
    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body["results"]] == [proposal.pk]
    item = body["results"][0]
    assert item["status"] == "pending" and item["kind"] == "code_fix"
    assert item["root_cause"].startswith("unit_price reads")
    assert "raise ValueError" in item["attempt"]["patch"]
    assert item["execution"] is None


def test_queue_order(db, tmp_path, client_api, django_user_model, post_json, make_integration):
    path, patch = make_remote(tmp_path)
    make_service(path)
    token = make_integration("generic").raw_token
    low = propose_fix(open_incident(post_json, token, severity="warning", dedup_key="a"), patch)
    high_new = propose_fix(open_incident(post_json, token, severity="critical", dedup_key="b"), patch)
    high_old = propose_fix(open_incident(post_json, token, severity="critical", dedup_key="c"), patch)
    ApprovalRequest.objects.filter(pk=high_old.pk).update(created_at=timezone.now() - timedelta(hours=2))
    client_api.force_authenticate(approver(django_user_model))
    ids = [item["id"] for item in client_api.get("/api/v1/approvals?status=pending").json()["results"]]
    assert ids == [high_old.pk, high_new.pk, low.pk]


def test_approve_over_basic_auth(proposal, client_api, django_user_model):
    approver(django_user_model)
    response = client_api.post(
        f"/api/v1/approvals/{proposal.pk}/approve",
        {"note": "ship it"},
        format="json",
        **_basic("approver", "pw-approver-123"),
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "approved" and body["decided_by"] == "approver" and body["note"] == "ship it"
    assert body["execution"]["status"] == "running"
    assert Execution.objects.filter(approval=proposal).count() == 1


def test_a_user_without_the_permission_gets_403_and_can_still_read(proposal, client_api, django_user_model):
    client_api.force_authenticate(viewer(django_user_model))
    assert client_api.get(f"/api/v1/approvals/{proposal.pk}").status_code == 200
    for verb, body in (("approve", {}), ("reject", {"feedback": "no"})):
        response = client_api.post(f"/api/v1/approvals/{proposal.pk}/{verb}", body, format="json")
        assert response.status_code == 403
        assert "approve remediation" in response.json()["error"]
    proposal.refresh_from_db()
    assert proposal.status == ApprovalStatus.PENDING


def test_anonymous_and_non_staff_users_are_refused(proposal, client_api, django_user_model):
    assert client_api.get("/api/v1/approvals").status_code == 401
    assert client_api.post(f"/api/v1/approvals/{proposal.pk}/approve", {}, format="json").status_code == 401
    client_api.force_authenticate(django_user_model.objects.create_user("mallory", password="pw-mallory-1"))
    assert client_api.get("/api/v1/approvals").status_code == 403


def test_a_decided_approval_answers_409_with_the_reason(proposal, client_api, django_user_model):
    client_api.force_authenticate(approver(django_user_model))
    assert client_api.post(f"/api/v1/approvals/{proposal.pk}/approve", {}, format="json").status_code == 200
    response = client_api.post(f"/api/v1/approvals/{proposal.pk}/reject", {"feedback": "late"}, format="json")
    assert response.status_code == 409
    assert response.json() == {
        "error": response.json()["error"],
        "detail": {"status": "approved"},
    }
    assert "no longer pending: it was approved by approver" in response.json()["error"]


def test_an_expired_approval_answers_409(proposal, client_api, django_user_model):
    ApprovalRequest.objects.filter(pk=proposal.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    client_api.force_authenticate(approver(django_user_model))
    response = client_api.post(f"/api/v1/approvals/{proposal.pk}/approve", {}, format="json")
    assert response.status_code == 409 and response.json()["detail"] == {"status": "expired"}


@pytest.mark.parametrize(
    "body, problem",
    [
        ({}, "This field is required."),
        ({"feedback": ""}, "Say why you reject it"),
        ({"feedback": "   "}, "Say why you reject it"),
        ({"feedback": None}, "This field may not be null."),
        ({"feedback": {"a": 1}}, "Not a valid string."),
        ({"feedback": "x" * 10_001}, "no more than 10000 characters"),
    ],
)
def test_reject_needs_feedback(proposal, client_api, django_user_model, body, problem):
    client_api.force_authenticate(approver(django_user_model))
    response = client_api.post(f"/api/v1/approvals/{proposal.pk}/reject", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid input."
    assert problem in response.json()["detail"]["feedback"]
    proposal.refresh_from_db()
    assert proposal.status == ApprovalStatus.PENDING


def test_reject_with_feedback_queues_a_new_attempt(proposal, client_api, django_user_model):
    client_api.force_authenticate(approver(django_user_model))
    response = client_api.post(
        f"/api/v1/approvals/{proposal.pk}/reject", {"feedback": "Validate where the item enters."}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    assert response.json()["feedback"] == "Validate where the item enters."
    proposal.incident.refresh_from_db()
    assert proposal.incident.status == "diagnosing"
    assert FixAttempt.objects.filter(diagnosis=proposal.diagnosis).count() == 1  # attempt 2 is queued


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/approvals?status=waiting",
        "/api/v1/approvals?incident=abc",
        "/api/v1/approvals?incident=99999999999999999999",
    ],
)
def test_bad_filters_are_400(proposal, client_api, django_user_model, path):
    client_api.force_authenticate(approver(django_user_model))
    response = client_api.get(path)
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid input."


def test_unknown_approval_is_404_and_bad_json_is_400(proposal, client_api, django_user_model):
    client_api.force_authenticate(approver(django_user_model))
    assert client_api.post("/api/v1/approvals/999999/approve", {}, format="json").status_code == 404
    response = client_api.generic(
        "POST", f"/api/v1/approvals/{proposal.pk}/approve", "{not json", content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["error"] == "Malformed JSON."
    response = client_api.post(f"/api/v1/approvals/{proposal.pk}/approve", {"note": ["a"]}, format="json")
    assert response.status_code == 400


def test_the_approval_endpoints_are_in_the_openapi_schema(client_api):
    schema = client_api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/v1/approvals" in schema["paths"]
    assert "post" in schema["paths"]["/api/v1/approvals/{id}/approve"]
    reject = schema["paths"]["/api/v1/approvals/{id}/reject"]["post"]
    assert {"200", "403", "409"} <= set(reject["responses"])

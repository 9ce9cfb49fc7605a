"""Signed action links: confirmation on GET, the change on POST, login and permission, expiry, single use."""

import time

import pytest
from django.core import signing
from django.test import Client
from django.utils.html import escape

from incidents.models import Activity, Incident
from notifications import links
from notifications.models import UsedActionLink
from remediation.models import ApprovalRequest, Execution
from tests.approval_desk import approver, make_remote, make_service, propose_fix, viewer
from tests.approval_desk import open_incident as open_pricing_incident
from tests.notify_receiver import open_incident


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = "http://testserver"


@pytest.fixture
def incident(post_json, make_integration):
    return open_incident(post_json, make_integration("generic").raw_token)


@pytest.fixture
def proposal(tmp_path, post_json, make_integration):
    remote, patch = make_remote(tmp_path)
    make_service(remote)
    return propose_fix(open_pricing_incident(post_json, make_integration("generic").raw_token), patch)


def path_of(url: str) -> str:
    return url.removeprefix("http://testserver")


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_link_needs_a_login_first(client, incident):
    url = path_of(links.action_url(links.ACKNOWLEDGE, incident.pk))
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/?next=")
    assert client.post(url).status_code == 302
    assert Incident.objects.get(pk=incident.pk).status == "triggered"


def test_get_only_asks_and_post_acknowledges_once(engineer, incident):
    client = logged_in(engineer)
    url = path_of(links.action_url(links.ACKNOWLEDGE, incident.pk))
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Acknowledge the incident?" in html and escape(incident.title) in html and 'method="post"' in html
    client.get(url)
    assert Incident.objects.get(pk=incident.pk).status == "triggered" and not UsedActionLink.objects.exists()

    response = client.post(url)
    assert response.status_code == 302 and response["Location"] == f"/admin/incidents/incident/{incident.pk}/change/"
    incident.refresh_from_db()
    assert incident.status == "acknowledged" and incident.acknowledged_at
    assert Activity.objects.filter(incident=incident, to_status="acknowledged", actor="oncall").exists()
    assert UsedActionLink.objects.get().used_by == "oncall"

    again = client.post(url)
    assert again.status_code == 409 and "already used by oncall" in again.content.decode()
    assert client.get(url).status_code == 409


def test_an_expired_or_forged_link_does_nothing(engineer, incident, monkeypatch, settings):
    client = logged_in(engineer)
    real_time = time.time
    with monkeypatch.context() as patched:
        patched.setattr(signing.time, "time", lambda: real_time() - (settings.QUENCH_ACTION_LINK_TTL_HOURS * 3600 + 60))
        old = path_of(links.action_url(links.ACKNOWLEDGE, incident.pk))
    response = client.post(old)
    assert response.status_code == 410 and "expired" in response.content.decode()

    fresh = path_of(links.action_url(links.ACKNOWLEDGE, incident.pk))
    token = fresh.rstrip("/").rsplit("/", 1)[1]
    forged = fresh.replace(token, token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"))
    response = client.post(forged)
    assert response.status_code == 400 and "not valid" in response.content.decode()
    assert Incident.objects.get(pk=incident.pk).status == "triggered" and not UsedActionLink.objects.exists()


def test_the_link_needs_the_permission(django_user_model, incident):
    nobody = django_user_model.objects.create_user("staffer", password="pw-staff-12345", is_staff=True)
    client = logged_in(nobody)
    url = path_of(links.action_url(links.ACKNOWLEDGE, incident.pk))
    response = client.post(url)
    assert response.status_code == 403 and "change incident" in response.content.decode()
    assert Incident.objects.get(pk=incident.pk).status == "triggered" and not UsedActionLink.objects.exists()


def test_post_needs_the_csrf_token(engineer, incident):
    client = Client(enforce_csrf_checks=True)
    client.force_login(engineer)
    url = path_of(links.action_url(links.ACKNOWLEDGE, incident.pk))
    assert client.post(url).status_code == 403
    page = client.get(url)
    csrf = page.context["csrf_token"]
    assert client.post(url, {"csrfmiddlewaretoken": str(csrf)}).status_code == 302
    assert Incident.objects.get(pk=incident.pk).status == "acknowledged"


def test_approve_needs_the_approver_permission_and_goes_through_the_approval_service(proposal, django_user_model):
    url = path_of(links.action_url(links.APPROVE, proposal.pk))
    watcher = logged_in(viewer(django_user_model))
    response = watcher.post(url)
    assert response.status_code == 403 and "approve remediation" in response.content.decode()
    assert ApprovalRequest.objects.get(pk=proposal.pk).status == "pending"

    client = logged_in(approver(django_user_model))
    page = client.get(url).content.decode()
    assert "Approve the proposal?" in page and "Refuse an item without a price" in page
    assert ApprovalRequest.objects.get(pk=proposal.pk).status == "pending"
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/remediation/approvalrequest/{proposal.pk}/change/"
    approval = ApprovalRequest.objects.get(pk=proposal.pk)
    assert approval.status == "approved" and approval.decided_by == "approver"
    assert approval.note == "Approved from a notification link"
    assert Execution.objects.filter(approval=approval).count() == 1
    assert Incident.objects.get(pk=approval.incident_id).status == "remediating"


def test_a_second_link_for_a_decided_approval_is_refused_with_the_reason(proposal, django_user_model):
    client = logged_in(approver(django_user_model))
    first = path_of(links.action_url(links.APPROVE, proposal.pk))
    second = path_of(links.action_url(links.APPROVE, proposal.pk))
    assert client.post(first).status_code == 302
    response = client.post(second)
    assert response.status_code == 409 and "no longer pending" in response.content.decode()
    assert Execution.objects.filter(approval_id=proposal.pk).count() == 1

"""The approval desk in Chromium: an approver approves, a reviewer rejects with feedback, a viewer cannot."""

import os

import pytest

from incidents.models import Incident
from remediation import services
from remediation.execution import run_execution
from remediation.models import ApprovalRequest, Diagnosis, Execution, FixAttempt
from tests.approval_desk import approver, make_remote, make_service, open_incident, propose_fix, viewer
from tests.browser import CHROMIUM, screenshot_dir
from tests.demo_service import drive

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed"),
]


@pytest.fixture
def proposal(tmp_path, post_json, make_integration):
    path, patch = make_remote(tmp_path)
    make_service(path)
    return propose_fix(open_incident(post_json, make_integration("generic").raw_token), patch), path


def _login(page, live_server, username, password):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def test_an_approver_approves_and_sees_the_execution_with_its_branch(page, live_server, proposal, django_user_model):
    approval, remote = proposal
    approver(django_user_model)
    _login(page, live_server, "approver", "pw-approver-123")

    page.goto(f"{live_server.url}/admin/remediation/approvalrequest/queue/")
    page.click(f"text={approval.summary[:40]}")
    desk = page.locator("#approval-desk")
    assert "unit_price reads" in desk.locator(".approval-root-cause").inner_text()
    assert "raise ValueError" in desk.locator("#approval-patch span.diff-add").nth(1).inner_text()
    assert "1 passed" in desk.locator("#approval-test-output").inner_text()
    page.screenshot(path=str(screenshot_dir() / "admin-approval.png"), full_page=True)

    page.fill("#approve-note", "Validating the price is right.")
    page.click("#approve-button")
    page.wait_for_selector(".messagelist")
    assert "Approved" in page.locator(".messagelist").inner_text()
    execution = Execution.objects.get(approval=approval)
    assert run_execution(execution.pk) == "published"  # what the queue does next

    page.reload()
    assert "Succeeded" in page.locator("#approval-execution .execution-status").inner_text()
    branch = f"quench/incident-{approval.incident_id}-attempt-1"
    assert branch in page.locator("#approval-execution .execution-branch").inner_text()
    assert not page.locator("#approval-actions").count()  # decided: no more buttons
    page.click("#approval-incident-link")
    assert branch in page.locator("#execution-summary + div").inner_text()
    assert "Verifying" in page.locator("div.form-row.field-status").inner_text()


def test_a_reviewer_rejects_with_feedback_and_sees_the_new_attempt(page, live_server, shop, crash, django_user_model):
    incident = crash("search-no-results")
    diagnosis = Diagnosis.objects.get(incident=incident)
    assert drive(diagnosis.pk) == "proposed"
    approval = ApprovalRequest.objects.get(incident=incident)
    approver(django_user_model, "reviewer")
    _login(page, live_server, "reviewer", "pw-approver-123")
    words = "Not like this: I would rather see another approach."

    page.goto(f"{live_server.url}/admin/incidents/incident/{incident.pk}/change/")
    page.fill("#incident-approval-actions textarea[name=feedback]", words)
    page.click("#incident-reject-button")
    page.wait_for_selector(".messagelist")
    assert "new fix attempt" in page.locator(".messagelist").inner_text()
    assert page.url.endswith(f"/admin/incidents/incident/{incident.pk}/change/")
    assert "Diagnosing" in page.locator("div.form-row.field-status").inner_text()

    # The queue runs fix attempt 2 with the reviewer's words (the offline analyzer and the sandbox).
    assert services.run_fix_attempt(diagnosis.pk, 2) == "proposed"
    attempt = FixAttempt.objects.get(diagnosis=diagnosis, number=2)
    assert words in attempt.feedback_used
    assert attempt.review_round == 2
    assert attempt.patch != approval.fix_attempt.patch
    new = ApprovalRequest.objects.get(fix_attempt=attempt)
    assert new.status == "pending"
    page.reload()
    panel = page.locator("#diagnosis-panel")
    assert "Fix attempt 2" in panel.inner_text()
    assert words in panel.locator(".attempt-rejected").inner_text()  # the rejected attempt says why
    assert "Code fix — Pending" in page.locator("#approval-summary").inner_text()
    # Its approval page keeps the rejected attempt in view, below the new patch.
    page.goto(f"{live_server.url}/admin/remediation/approvalrequest/{new.pk}/change/")
    assert "Attempt 1" in page.locator(".earlier-attempt").inner_text()
    assert words in page.locator("#approval-patch").inner_text()  # the feedback it was given


def test_a_user_without_the_permission_sees_but_cannot_decide(page, live_server, proposal, django_user_model):
    approval, _ = proposal
    viewer(django_user_model)
    _login(page, live_server, "viewer", "pw-viewer-1234")

    page.goto(f"{live_server.url}/admin/remediation/approvalrequest/{approval.pk}/change/")
    assert "unit_price reads" in page.locator("#approval-desk").inner_text()
    assert page.locator("#approval-no-permission").is_visible()
    assert page.locator("#approve-button").count() == 0
    page.goto(f"{live_server.url}/admin/incidents/incident/{approval.incident_id}/change/")
    assert page.locator("#incident-approve-button").count() == 0

    # Forging the form does not help: the server refuses it.
    status = page.evaluate(
        """async (url) => {
            const token = document.querySelector('[name=csrfmiddlewaretoken]').value;
            const response = await fetch(url, {method: 'POST', body: new URLSearchParams({csrfmiddlewaretoken: token}),
                                               headers: {'X-CSRFToken': token}});
            return response.status;
        }""",
        f"{live_server.url}/admin/remediation/approvalrequest/{approval.pk}/approve/",
    )
    assert status == 403
    approval.refresh_from_db()
    assert approval.status == "pending"
    assert Incident.objects.get(pk=approval.incident_id).status == "awaiting_approval"

"""An approve link from a message, in Chromium: login, a confirmation page, one POST, then the link is spent."""

import os

import pytest

from notifications.messages import build_message
from notifications.models import Notification
from remediation.models import ApprovalRequest, Execution
from tests.approval_desk import approver, make_remote, make_service, open_incident, propose_fix
from tests.browser import CHROMIUM, screenshot_dir
from tests.notify_receiver import make_channel

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed"),
]


def test_an_approver_follows_the_approve_link_of_a_message(
    page, live_server, tmp_path, post_json, make_integration, settings, django_user_model
):
    settings.SITE_URL = live_server.url
    make_channel(
        "webhook", config={"url": "https://ops.example.com/q"}, secrets={"secret": "x"}, events=["approval_requested"]
    )
    remote, patch = make_remote(tmp_path)
    make_service(remote)
    approval = propose_fix(open_incident(post_json, make_integration("generic").raw_token), patch)
    approver(django_user_model)
    # The link exactly as a message carries it.
    message = build_message(Notification.objects.get(approval=approval))
    link = dict(message.links())["Approve"]
    assert link.startswith(f"{live_server.url}/admin/notifications/action/")

    page.goto(link)  # not logged in: the admin's login, then back to the link
    page.fill("#id_username", "approver")
    page.fill("#id_password", "pw-approver-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#action-form")
    assert "Approve the proposal?" in page.locator("#action-title").inner_text()
    assert "Refuse an item without a price" in page.locator("#content-main").inner_text()
    page.screenshot(path=str(screenshot_dir() / "notification-approve-link.png"), full_page=True)
    page.reload()  # opening it again changes nothing
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "pending"

    page.click("#confirm-action")
    page.wait_for_selector(".messagelist")
    assert f"Proposal #{approval.pk} approved." in page.locator(".messagelist").inner_text()
    assert page.url.endswith(f"/admin/remediation/approvalrequest/{approval.pk}/change/")
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "approved"
    assert Execution.objects.filter(approval=approval).count() == 1

    page.goto(link)
    assert "already used by approver" in page.locator("#action-error").inner_text()
    assert page.locator("#action-form").count() == 0

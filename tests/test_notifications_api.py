"""The notifications API: staff only, secrets masked, filters validated, dead notifications resent."""

import json

import pytest
from django.contrib.auth.models import Permission

from notifications import services
from notifications.models import Notification
from tests.notify_receiver import make_channel, open_incident, refused_url

SECRET = "api-hook-secret-9d1c"


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_user("ops", password="pw-ops-1234567", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="notifications",
            codename__in=["view_channel", "view_notification", "change_notification"],
        )
    )
    client.force_login(user)
    return client


@pytest.fixture
def dead_notification(post_json, make_integration, settings):
    settings.QUENCH_ALLOW_PRIVATE_WEBHOOKS = True
    make_channel("webhook", config={"url": refused_url()}, secrets={"secret": SECRET})
    open_incident(post_json, make_integration("generic").raw_token)
    notification = Notification.objects.get()
    Notification.objects.filter(pk=notification.pk).update(status="dead", last_error="gave up")
    return notification


def test_channels_are_listed_with_secrets_masked(staff, dead_notification):
    response = staff.get("/api/v1/notification-channels")
    assert response.status_code == 200
    [channel] = response.json()["results"]
    assert channel["config"] == {"url": channel["config"]["url"], "secret": "********"}
    assert SECRET not in response.content.decode() and "encrypted" not in response.content.decode()


def test_dead_notifications_are_listed_and_resent(staff, dead_notification):
    listing = staff.get("/api/v1/notifications?status=dead").json()["results"]
    assert [row["id"] for row in listing] == [dead_notification.pk]
    assert listing[0]["event"] == "incident_opened" and listing[0]["channel"] == "webhook channel"
    assert staff.get("/api/v1/notifications?status=sent").json()["results"] == []

    response = staff.post(f"/api/v1/notifications/{dead_notification.pk}/resend")
    assert response.status_code == 202 and response.json()["status"] == "pending"
    again = staff.post(f"/api/v1/notifications/{dead_notification.pk}/resend")
    assert again.status_code == 409 and again.json()["error"] == "Only a dead or skipped notification can be resent."
    assert services.deliver(dead_notification.pk) == "retry"  # nothing listens there: attempt recorded
    detail = staff.get(f"/api/v1/notifications/{dead_notification.pk}").json()
    assert detail["deliveries"][0]["status"] == "retry" and SECRET not in json.dumps(detail)


def test_bad_filters_get_a_clear_400(staff):
    response = staff.get("/api/v1/notifications?status=lost")
    assert response.status_code == 400
    body = response.json()
    assert "error" in body and "status" in body["detail"]
    assert staff.get("/api/v1/notifications?channel=abc").status_code == 400
    assert staff.get("/api/v1/notifications?channel=").status_code == 400  # like ?status=: given, so not ignored


def test_only_staff_with_the_permission(client, django_user_model, dead_notification):
    assert client.get("/api/v1/notifications").status_code in (401, 403)
    user = django_user_model.objects.create_user("staffer", password="pw-staff-12345", is_staff=True)
    client.force_login(user)
    assert client.get("/api/v1/notification-channels").status_code == 403
    assert client.post(f"/api/v1/notifications/{dead_notification.pk}/resend").status_code == 403
    assert Notification.objects.get(pk=dead_notification.pk).status == "dead"

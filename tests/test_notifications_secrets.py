"""Channel secrets: stored encrypted or as env references, never shown in the admin, logs or delivery records."""

import json
import logging

import pytest
from django.db import connection

from notifications import services, vault
from notifications.models import Channel, Notification
from tests.notify_receiver import make_channel, open_incident, refused_url

PLAIN = "hook-secret-DO-NOT-SHOW-7f3a"


@pytest.fixture
def admin_client_logged(client, django_user_model):
    django_user_model.objects.create_superuser("boss", password="pw-boss-123456")
    client.login(username="boss", password="pw-boss-123456")
    return client


def _raw_config(channel_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT config::text FROM notifications_channel WHERE id = %s", [channel_id])
        return cursor.fetchone()[0]


def _add(client, **fields):
    data = {
        "name": "ops hook",
        "kind": "webhook",
        "enabled": "on",
        "config": json.dumps({"url": "https://ops.example.com/quench", "secret": PLAIN}),
        "min_severity": "P3",
        "services": "[]",
        **fields,
    }
    return client.post("/admin/notifications/channel/add/", data)


def test_a_secret_typed_into_the_admin_is_stored_encrypted_and_never_shown(admin_client_logged):
    response = _add(admin_client_logged)
    assert response.status_code == 302, response.content.decode()[:2000]
    channel = Channel.objects.get()
    stored = channel.config["secret"]
    assert set(stored) == {"encrypted"}
    raw = _raw_config(channel.pk)
    assert PLAIN not in raw
    assert channel.secret("secret") == PLAIN

    listing = admin_client_logged.get("/admin/notifications/channel/").content.decode()
    page = admin_client_logged.get(f"/admin/notifications/channel/{channel.pk}/change/").content.decode()
    for html in (listing, page):
        assert PLAIN not in html and stored["encrypted"] not in html
    assert vault.MASK in page and "https://ops.example.com/quench" in page


def test_saving_the_mask_keeps_the_secret_and_a_new_value_replaces_it(admin_client_logged):
    _add(admin_client_logged)
    channel = Channel.objects.get()
    url = f"/admin/notifications/channel/{channel.pk}/change/"
    form = {
        "name": "ops hook",
        "kind": "webhook",
        "enabled": "on",
        "min_severity": "P1",
        "services": '["shop"]',
    }
    masked = json.dumps({"url": "https://ops.example.com/quench", "secret": vault.MASK})
    assert admin_client_logged.post(url, {**form, "config": masked}).status_code == 302
    channel.refresh_from_db()
    assert channel.secret("secret") == PLAIN and channel.min_severity == "P1" and channel.services == ["shop"]

    fresh = json.dumps({"url": "https://ops.example.com/quench", "secret": "rotated-secret"})
    assert admin_client_logged.post(url, {**form, "config": fresh}).status_code == 302
    channel.refresh_from_db()
    assert channel.secret("secret") == "rotated-secret"


def test_an_env_reference_is_read_when_sending(admin_client_logged, monkeypatch):
    config = json.dumps({"url": "https://ops.example.com/quench", "secret": "env:OPS_HOOK_SECRET"})
    assert _add(admin_client_logged, config=config).status_code == 302
    channel = Channel.objects.get()
    assert channel.config["secret"] == {"env": "OPS_HOOK_SECRET"}
    page = admin_client_logged.get(f"/admin/notifications/channel/{channel.pk}/change/").content.decode()
    assert "env:OPS_HOOK_SECRET" in page
    with pytest.raises(vault.SecretUnavailable, match="OPS_HOOK_SECRET"):
        channel.secret("secret")
    monkeypatch.setenv("OPS_HOOK_SECRET", "from-the-environment")
    assert channel.secret("secret") == "from-the-environment"


def test_bad_config_is_refused_with_a_reason(admin_client_logged):
    response = _add(admin_client_logged, config=json.dumps({"url": "ftp://nope"}))
    assert response.status_code == 200
    assert "The webhook needs url (http or https)." in response.content.decode()
    response = _add(admin_client_logged, kind="email", config=json.dumps({"recipients": ["not an address"]}))
    assert "Not an email address" in response.content.decode()
    assert not Channel.objects.exists()


def test_a_failing_bot_token_url_leaks_into_no_log_or_record(post_json, make_integration, settings, caplog):
    settings.QUENCH_ALLOW_PRIVATE_WEBHOOKS = True
    settings.QUENCH_TELEGRAM_API_URL = refused_url().removesuffix("/hook")
    bot_token = "777777:SECRET-BOT-TOKEN"
    make_channel("telegram", config={"chat_id": "1"}, secrets={"bot_token": bot_token})
    open_incident(post_json, make_integration("generic").raw_token)
    notification = Notification.objects.get()
    with caplog.at_level(logging.DEBUG):
        assert services.deliver(notification.pk) == "retry"
    notification.refresh_from_db()
    delivery = notification.deliveries.get()
    assert "failed" in delivery.error
    for text in (delivery.error, delivery.response_body, notification.last_error):
        assert bot_token not in text and "SECRET-BOT" not in text
    for record in caplog.records:
        assert "SECRET-BOT" not in record.getMessage()
        assert "SECRET-BOT" not in json.dumps({k: str(v) for k, v in record.__dict__.items()})


def test_the_admin_lists_of_notifications_and_deliveries_show_no_secret(
    admin_client_logged, post_json, make_integration, settings
):
    settings.QUENCH_ALLOW_PRIVATE_WEBHOOKS = True
    make_channel("slack", secrets={"webhook_url": refused_url() + "/T0/B0/SECRETPATH"})
    open_incident(post_json, make_integration("generic").raw_token)
    services.deliver(Notification.objects.get().pk)
    for url in (
        "/admin/notifications/notification/",
        "/admin/notifications/delivery/",
        f"/admin/notifications/notification/{Notification.objects.get().pk}/change/",
    ):
        html = admin_client_logged.get(url).content.decode()
        assert "SECRETPATH" not in html, url


def test_routing_is_edited_in_the_admin(admin_client_logged):
    response = _add(
        admin_client_logged,
        events=["incident_opened", "approval_requested"],
        services='["shop", "billing"]',
        min_severity="P1",
        is_escalation="on",
    )
    assert response.status_code == 302
    channel = Channel.objects.get()
    assert channel.events == ["incident_opened", "approval_requested"]
    assert channel.services == ["shop", "billing"] and channel.min_severity == "P1" and channel.is_escalation
    listing = admin_client_logged.get("/admin/notifications/channel/").content.decode()
    assert "incident_opened, approval_requested; shop, billing" in listing


def test_a_changed_key_makes_stored_secrets_unreadable_with_a_clear_reason(settings):
    from cryptography.fernet import Fernet

    settings.QUENCH_NOTIFICATIONS_KEY = Fernet.generate_key().decode()
    stored = vault.encrypt(PLAIN)
    assert vault.reveal(stored, name="secret") == PLAIN
    settings.QUENCH_NOTIFICATIONS_KEY = Fernet.generate_key().decode()
    with pytest.raises(vault.SecretUnavailable, match="type it again"):
        vault.reveal(stored, name="secret")


def test_the_incident_page_lists_its_notifications(admin_client_logged, post_json, make_integration, settings):
    settings.QUENCH_ALLOW_PRIVATE_WEBHOOKS = True
    make_channel("webhook", name="ops hook", config={"url": refused_url()}, secrets={"secret": PLAIN})
    incident = open_incident(post_json, make_integration("generic").raw_token)
    services.deliver(Notification.objects.get().pk)
    html = admin_client_logged.get(f"/admin/incidents/incident/{incident.pk}/change/").content.decode()
    panel = html.split('id="incident-notifications"', 1)[1].split("</div>", 1)[0]
    assert "Incident opened" in panel and "ops hook (Signed webhook)" in panel and "Waiting to retry" in panel
    assert PLAIN not in html

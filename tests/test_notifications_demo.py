"""The demo's channels and receiver: a real signed delivery, verified by the receiver, recorded on both sides."""

import json
import threading

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connections

from incidents.services import resolve_incident
from notifications import services
from notifications.management.commands.demo_notification_receiver import make_server
from notifications.models import Channel, Notification
from tests.notify_receiver import open_incident


@pytest.mark.django_db(transaction=True)  # the receiver's thread reads the channel with its own connection
def test_the_demo_receiver_verifies_and_records_a_delivery(tmp_path, post_json, make_integration, settings):
    settings.QUENCH_ALLOW_PRIVATE_WEBHOOKS = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    log_path = tmp_path / "notifications.jsonl"
    lines = []
    server = make_server(0, log_path, out=lines.append)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        call_command("setup_demo_notifications", receiver_url=f"http://127.0.0.1:{port}/quench")
        call_command("setup_demo_notifications", receiver_url=f"http://127.0.0.1:{port}/quench")  # idempotent
        assert sorted(Channel.objects.values_list("name", flat=True)) == ["demo-email", "demo-webhook"]
        incident = open_incident(post_json, make_integration("generic").raw_token, title="Checkout down")
        resolve_incident(incident.pk, actor="alice")
        results = [services.deliver(pk) for pk in Notification.objects.order_by("pk").values_list("pk", flat=True)]
        # The webhook hears of both; the demo mails only what a person acts on (the resolution).
        assert results == ["sent", "sent", "sent"]
        assert sorted(Notification.objects.values_list("channel__name", "event")) == [
            ("demo-email", "incident_resolved"),
            ("demo-webhook", "incident_opened"),
            ("demo-webhook", "incident_resolved"),
        ]
    finally:
        server.shutdown()
        server.server_close()
        connections.close_all()
    assert lines[0] == f"[demo receiver] incident_opened · incident #{incident.pk} P1 “Checkout down” · signature ok"
    recorded = json.loads(log_path.read_text().splitlines()[0])
    assert recorded["signature_ok"] is True and recorded["payload"]["incident"]["id"] == incident.pk
    assert mail.outbox[0].to == ["oncall@example.com"]
    webhook = Notification.objects.get(channel__name="demo-webhook", event="incident_opened")
    assert webhook.status == "sent" and webhook.deliveries.get().response_body == "ok"

"""Each vendor's payload as its documentation shapes it, checked by a local receiver; vendor errors classified."""

import base64
import hashlib
import hmac
import re
import time

import pytest
from django.core import mail

from notifications import services
from notifications.models import Notification
from notifications.transports import escape_markdown_v2, escape_markdown_v2_url, feishu_sign, telegram_text
from tests.approval_desk import make_remote, make_service, propose_fix
from tests.approval_desk import open_incident as open_pricing_incident
from tests.notify_receiver import Receiver, make_channel, open_incident

P1_RED = "#EA580C"


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _local_targets(settings, receiver):
    settings.QUENCH_ALLOW_PRIVATE_WEBHOOKS = True
    settings.QUENCH_NOTIFY_TIMEOUT_SECONDS = 2
    settings.SITE_URL = "https://quench.example.com"
    settings.QUENCH_SLACK_API_URL = f"{receiver.url}/api"
    settings.QUENCH_TELEGRAM_API_URL = receiver.url


@pytest.fixture
def token(make_integration):
    return make_integration("generic").raw_token


def deliver_all() -> list[str]:
    return [services.deliver(pk) for pk in Notification.objects.order_by("pk").values_list("pk", flat=True)]


# --- Slack -------------------------------------------------------------------------------------


def test_slack_incoming_webhook_gets_block_kit_in_a_severity_coloured_attachment(receiver, post_json, token):
    make_channel("slack", secrets={"webhook_url": f"{receiver.url}/services/T000/B000/XXXX"})
    incident = open_incident(post_json, token, title="Checkout <fails> & more", severity="P1")
    assert deliver_all() == ["sent"]
    [request] = receiver.requests
    assert request.path == "/services/T000/B000/XXXX"
    body = request.json()
    assert body["text"] == "[P1] New incident: Checkout <fails> & more"
    [attachment] = body["attachments"]
    assert attachment["color"] == P1_RED
    blocks = attachment["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "New incident"}}
    url = f"https://quench.example.com/admin/incidents/incident/{incident.pk}/change/"
    # mrkdwn control characters are escaped; the title links to the incident.
    assert blocks[1]["text"] == {"type": "mrkdwn", "text": f"*<{url}|Checkout &lt;fails&gt; &amp; more>*"}
    assert {"type": "mrkdwn", "text": "*Service*\nshop"} in blocks[2]["fields"]
    buttons = {element["text"]["text"]: element for element in blocks[-1]["elements"]}
    assert buttons["Acknowledge"]["url"].startswith("https://quench.example.com/admin/notifications/action/")
    assert buttons["Open the incident"]["url"] == url


def test_slack_bot_posts_with_its_token_and_threads_replies_by_ts(receiver, post_json, token):
    channel = make_channel("slack", config={"channel": "C0INCIDENTS"}, secrets={"bot_token": "xoxb-test-token"})
    receiver.answer(
        (200, {}, {"ok": True, "channel": "C0INCIDENTS", "ts": "1700000000.000100"}),
        (200, {}, {"ok": True, "channel": "C0INCIDENTS", "ts": "1700000050.000200"}),
    )
    incident = open_incident(post_json, token)
    assert deliver_all() == ["sent"]
    from incidents.services import resolve_incident

    resolve_incident(incident.pk, actor="alice")
    assert deliver_all()[1] == "sent"
    first, reply = receiver.requests
    assert first.path == "/api/chat.postMessage"
    assert first.headers["authorization"] == "Bearer xoxb-test-token"
    assert first.json()["channel"] == "C0INCIDENTS" and "thread_ts" not in first.json()
    assert reply.json()["thread_ts"] == "1700000000.000100"
    assert reply.json()["attachments"][0]["color"] == "#16A34A"  # resolved is green
    opened = Notification.objects.get(channel=channel, event="incident_opened")
    assert opened.external_id == "1700000000.000100"


def test_slack_invalid_auth_disables_the_channel_and_ratelimited_waits(receiver, post_json, token):
    channel = make_channel("slack", config={"channel": "C1"}, secrets={"bot_token": "xoxb-revoked"})
    receiver.answer((429, {"Retry-After": "30"}, {"ok": False, "error": "ratelimited"}))
    open_incident(post_json, token)
    assert deliver_all() == ["retry"]
    notification = Notification.objects.get()
    assert notification.deliveries.get().response_code == 429
    receiver.answer((200, {}, {"ok": False, "error": "invalid_auth"}))
    assert services.deliver(notification.pk, now=notification.next_attempt_at) == "permanent"
    channel.refresh_from_db()
    assert not channel.enabled and "invalid_auth" in channel.disabled_reason


# --- Microsoft Teams ---------------------------------------------------------------------------


def test_teams_workflow_webhook_gets_an_adaptive_card(receiver, post_json, token):
    make_channel("teams", secrets={"url": f"{receiver.url}/workflows/abc/triggers/manual/paths/invoke?sig=xyz"})
    receiver.default = (202, {}, b"")
    open_incident(post_json, token, severity="P0", title="Database down")
    assert deliver_all() == ["sent"]
    body = receiver.requests[0].json()
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["body"][0]["text"] == "New incident" and card["body"][0]["color"] == "Attention"
    assert card["body"][1]["text"] == "Database down"
    facts = {fact["title"]: fact["value"] for fact in card["body"][2]["facts"]}
    assert facts["Severity"] == "P0" and facts["Service"] == "shop"
    assert {action["type"] for action in card["actions"]} == {"Action.OpenUrl"}
    assert [action["title"] for action in card["actions"]] == ["Acknowledge", "Open the incident"]


# --- Telegram ----------------------------------------------------------------------------------


def test_markdown_v2_escapes_every_special_character():
    specials = "_*[]()~`>#+-=|{}.!\\"
    assert escape_markdown_v2(specials) == "".join("\\" + char for char in specials)
    assert (
        escape_markdown_v2("KeyError: 'price' in cart.total (v1.2)!")
        == "KeyError: 'price' in cart\\.total \\(v1\\.2\\)\\!"
    )
    assert escape_markdown_v2("plain words, no specials") == "plain words, no specials"
    assert escape_markdown_v2_url("https://x.example/a_(b)\\c") == "https://x.example/a_(b\\)\\\\c"


def test_telegram_text_escapes_content_but_not_its_own_markup():
    from notifications.messages import Message

    text = telegram_text(
        Message(
            event="incident_opened",
            headline="New incident",
            title="price_total() failed [v2.1]",
            colour="#000",
            severity="P1",
            service="shop-api",
            incident_url="https://quench.example.com/admin/incidents/incident/7/change/",
        )
    )
    lines = text.split("\n")
    assert lines[0] == "*New incident*"
    assert lines[1] == (
        "[price\\_total\\(\\) failed \\[v2\\.1\\]](https://quench.example.com/admin/incidents/incident/7/change/)"
    )
    assert "*Service:* shop\\-api" in lines
    # Every special character outside markup is escaped: nothing unescaped is left once the
    # markup (bold stars, link brackets and link targets, where only ")" and "\\" are escaped) is removed.
    stripped = re.sub(r"\]\((?:[^)\\]|\\.)*\)", "]", text).replace("\\\\", "").replace("*", "")
    for char in "_[]()~`>#+-=|{}.!":
        for index, found in enumerate(stripped):
            if found == char and (index == 0 or stripped[index - 1] != "\\"):
                assert char in "[]", (char, stripped)  # only link brackets stay bare


def test_telegram_send_message_in_markdown_v2_and_replies_to_the_first_message(receiver, post_json, token):
    channel = make_channel("telegram", config={"chat_id": "-1001234567890"}, secrets={"bot_token": "123456:ABC-DEF"})
    receiver.answer(
        (200, {}, {"ok": True, "result": {"message_id": 4242, "chat": {"id": -1001234567890}}}),
        (200, {}, {"ok": True, "result": {"message_id": 4243}}),
    )
    incident = open_incident(post_json, token, title="Payment failed.")
    assert deliver_all() == ["sent"]
    from incidents.services import resolve_incident

    resolve_incident(incident.pk, actor="alice")
    deliver_all()
    first, reply = receiver.requests
    assert first.path == "/bot123456:ABC-DEF/sendMessage"
    body = first.json()
    assert body["chat_id"] == "-1001234567890" and body["parse_mode"] == "MarkdownV2"
    assert "Payment failed\\." in body["text"] and "reply_parameters" not in body
    assert reply.json()["reply_parameters"] == {"message_id": 4242, "allow_sending_without_reply": True}
    assert Notification.objects.get(channel=channel, event="incident_opened").external_id == "4242"


def test_telegram_blocked_bot_is_permanent_and_429_uses_retry_after(receiver, post_json, token):
    channel = make_channel("telegram", config={"chat_id": "42"}, secrets={"bot_token": "999:XYZ"})
    receiver.answer(
        (
            429,
            {},
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 7",
                "parameters": {"retry_after": 7},
            },
        ),
        (403, {}, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}),
    )
    open_incident(post_json, token)
    assert deliver_all() == ["retry"]
    notification = Notification.objects.get()
    waited = (notification.next_attempt_at - notification.deliveries.get().created_at).total_seconds()
    assert 6.5 <= waited <= 9
    assert services.deliver(notification.pk, now=notification.next_attempt_at) == "permanent"
    channel.refresh_from_db()
    assert not channel.enabled and "bot was blocked" in channel.disabled_reason
    # The token is in the URL path: it appears in no error Quench stored.
    for delivery in notification.deliveries.all():
        assert "999:XYZ" not in delivery.error


# --- Feishu / Lark -----------------------------------------------------------------------------


def test_feishu_sign_matches_the_documented_algorithm():
    # Feishu's reference: key = "<timestamp>\n<secret>", HMAC-SHA256 of an empty message, base64.
    expected = base64.b64encode(hmac.new(b"1599360473\nsecret", b"", hashlib.sha256).digest()).decode()
    assert feishu_sign(1599360473, "secret") == expected


def test_feishu_interactive_card_is_signed(receiver, post_json, token):
    make_channel(
        "feishu",
        secrets={"url": f"{receiver.url}/open-apis/bot/v2/hook/abc-123", "secret": "feishu-signing-secret"},
    )
    receiver.default = (200, {}, {"code": 0, "data": {}, "msg": "success"})

    def feishu_checks(received) -> bool:  # as Feishu does: recompute the sign from timestamp and secret
        payload = received.json()
        key = f"{payload.get('timestamp')}\nfeishu-signing-secret".encode()
        return payload.get("sign") == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()

    receiver.verify = feishu_checks
    open_incident(post_json, token, severity="P0", title="Orders stuck")
    assert deliver_all() == ["sent"]
    assert receiver.verified == [True]
    body = receiver.requests[0].json()
    # The receiver checks the signature as Feishu does: recompute it from timestamp and secret.
    timestamp = int(body["timestamp"])
    assert abs(timestamp - time.time()) < 3600
    key = f"{timestamp}\nfeishu-signing-secret".encode()
    assert body["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert body["msg_type"] == "interactive"
    card = body["card"]
    assert card["header"]["template"] == "red"
    assert card["header"]["title"] == {"tag": "plain_text", "content": "New incident: Orders stuck"}
    assert card["elements"][0]["fields"][0]["text"] == {"tag": "lark_md", "content": "**Severity**\nP0"}
    actions = card["elements"][-1]
    assert actions["tag"] == "action"
    assert [button["text"]["content"] for button in actions["actions"]] == ["Acknowledge", "Open the incident"]


def test_feishu_sign_failure_is_permanent_and_unsigned_bots_get_no_sign(receiver, post_json, token):
    channel = make_channel("feishu", secrets={"url": f"{receiver.url}/open-apis/bot/v2/hook/unsigned"})
    receiver.answer((200, {}, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"}))
    open_incident(post_json, token)
    assert deliver_all() == ["permanent"]
    assert "timestamp" not in receiver.requests[0].json() and "sign" not in receiver.requests[0].json()
    channel.refresh_from_db()
    assert not channel.enabled and "19021" in channel.disabled_reason


# --- Email -------------------------------------------------------------------------------------


def test_email_has_a_text_and_an_html_part(post_json, token, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    make_channel("email", config={"recipients": ["oncall@example.com", "lead@example.com"]})
    open_incident(post_json, token, title="Checkout <b>broken</b>", severity="P1")
    assert deliver_all() == ["sent"]
    [message] = mail.outbox
    assert message.to == ["oncall@example.com", "lead@example.com"]
    assert message.subject == "[P1] New incident: Checkout <b>broken</b>"
    assert "Severity: P1" in message.body and "Service: shop" in message.body
    assert "Acknowledge: https://quench.example.com/admin/notifications/action/" in message.body
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    assert "Checkout &lt;b&gt;broken&lt;/b&gt;" in html and "<b>broken</b>" not in html
    assert P1_RED in html


# --- what a message carries ---------------------------------------------------------------------


def test_an_approval_message_carries_root_cause_customers_and_links(receiver, tmp_path, post_json, token):
    from incidents.models import Complaint

    remote, patch = make_remote(tmp_path)
    make_service(remote)
    make_channel(
        "webhook", config={"url": f"{receiver.url}/hook"}, secrets={"secret": "x"}, events=["approval_requested"]
    )
    slack = make_channel(
        "slack", secrets={"webhook_url": f"{receiver.url}/slack"}, events=["approval_requested"], name="slack"
    )
    incident = open_pricing_incident(post_json, token)
    Complaint.objects.create(
        incident=incident,
        customer_id="c-17",
        customer_name="Acme GmbH",
        message="cannot pay",
        reported_at=incident.first_seen,
    )
    approval = propose_fix(incident, patch)
    assert deliver_all() == ["sent", "sent"]
    hook = next(r for r in receiver.requests if r.path == "/hook").json()
    assert hook["event"] == "approval_requested"
    assert hook["approval"]["id"] == approval.pk and hook["approval"]["status"] == "pending"
    assert (
        hook["approval"]["url"] == f"https://quench.example.com/admin/remediation/approvalrequest/{approval.pk}/change/"
    )
    assert hook["approval"]["approve_url"].startswith("https://quench.example.com/admin/notifications/action/")
    blocks = next(r for r in receiver.requests if r.path == "/slack").json()["attachments"][0]["blocks"]
    texts = " ".join(block.get("text", {}).get("text", "") for block in blocks)
    assert "*Root cause*\nunit_price reads item['price'] of an item that has none." in texts
    assert "*Affected customers*\nAcme GmbH (1)" in texts
    assert "Refuse an item without a price" in texts
    labels = [element["text"]["text"] for element in blocks[-1]["elements"]]
    assert labels == ["Open the approval", "Approve", "Open the incident"]
    assert Notification.objects.get(channel=slack).approval_id == approval.pk

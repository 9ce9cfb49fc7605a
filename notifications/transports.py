"""One transport per channel kind; `send()` returns what the vendor answered or raises TransportError.

Modelled on healthchecks' `hc/api/transports.py`: an HTTP base class owns the outbound call
(through `config.outbound`: timeouts, private-address guard) and turns the vendor's answer
into success, a retryable failure (timeouts, connection errors, 429 with Retry-After, 5xx),
a failure not worth retrying (the vendor rejected this payload), or a permanent one (the
endpoint or token is gone: 401/403/404/410, or the vendor's own error code for it), which
disables the channel. Payload shapes follow each vendor's documentation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import smtplib
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from config import outbound
from notifications.choices import ChannelKind
from notifications.messages import Message
from notifications.models import Channel
from notifications.vault import SecretUnavailable

MAX_RETRY_AFTER_SECONDS = 3600
PERMANENT_HTTP_CODES = frozenset({401, 403, 404, 410})


class TransportError(Exception):
    """A send failed. `permanent`: the channel cannot work again as configured (it gets disabled).

    `retry`: whether trying again later may succeed (timeouts, 429, 5xx); `retry_after`: the
    vendor's requested wait in seconds.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        retry: bool = True,
        retry_after: float | None = None,
        status_code: int | None = None,
        body: str = "",
    ):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry = retry and not permanent
        self.retry_after = retry_after
        self.status_code = status_code
        self.body = body


@dataclass(frozen=True)
class Sent:
    """A successful send: the vendor's answer and its id for the message (for threaded replies)."""

    status_code: int | None
    body: str
    external_id: str = ""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), capped; None if absent."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER_SECONDS))


class Transport:
    """Sends a Message to one channel."""

    def __init__(self, channel: Channel):
        self.channel = channel

    def send(self, message: Message, *, reply_to: str = "") -> Sent:
        """Send the message (as a reply to the vendor message `reply_to` where the vendor threads)."""
        raise NotImplementedError

    def secret(self, key: str) -> str:
        try:
            return self.channel.secret(key)
        except SecretUnavailable as exc:
            # A missing env variable or key is the operator's to fix; retrying soon will not help.
            raise TransportError(str(exc), retry=False) from None


class HttpTransport(Transport):
    """A transport that POSTs JSON; subclasses read vendor-specific errors from the answer."""

    vendor = "The endpoint"
    secret_path = True  # webhook URLs and bot tokens sit in the path: never in messages

    def post(
        self, url: str, *, json_body=None, content: bytes | None = None, headers=None
    ) -> outbound.OutboundResponse:
        try:
            response = outbound.request(
                "POST",
                url,
                json=json_body,
                content=content,
                headers=headers,
                timeout=settings.QUENCH_NOTIFY_TIMEOUT_SECONDS,
                secret_path=self.secret_path,
            )
        except outbound.OutboundRefused as exc:
            raise TransportError(str(exc), retry=False) from None
        except outbound.OutboundError as exc:
            raise TransportError(str(exc)) from None
        if not 200 <= response.status_code < 300:
            self.raise_for_response(response)
        return response

    def raise_for_response(self, response: outbound.OutboundResponse):
        code, body = response.status_code, response.text
        message = f"{self.vendor} answered HTTP {code}: {body[:200]}".strip()
        if code == 429:
            raise TransportError(
                message, retry_after=parse_retry_after(response.headers.get("retry-after")), status_code=code, body=body
            )
        if code >= 500 or code == 408:
            raise TransportError(message, status_code=code, body=body)
        if code in PERMANENT_HTTP_CODES:
            raise TransportError(message, permanent=True, status_code=code, body=body)
        raise TransportError(message, retry=False, status_code=code, body=body)


# --- Slack -------------------------------------------------------------------------------------

# chat.postMessage errors that mean the token or channel will not work again.
SLACK_PERMANENT = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "missing_scope",
        "no_permission",
        "restricted_action",
        "team_access_not_granted",
        "org_login_required",
    }
)
SLACK_TRANSIENT = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"})


def slack_escape(text: str) -> str:
    """Slack mrkdwn: &, < and > are control characters and must be entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(message: Message) -> dict:
    """Block Kit blocks inside a coloured attachment (the bar shows the severity) plus a text fallback."""
    e = slack_escape
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": message.headline[:150]}},
    ]
    title = (
        f"*<{message.incident_url}|{e(message.title[:300])}>*"
        if message.incident_url
        else f"*{e(message.title[:300])}*"
    )
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": title}})
    short = [(label, value) for label, value in message.facts() if label in ("Severity", "Status", "Service")]
    if short:
        blocks.append(
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": f"*{label}*\n{e(value)}"} for label, value in short],
            }
        )
    for label, value in message.facts():
        if label in ("Root cause", "Affected customers"):
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*{label}*\n{e(value)[:2900]}"}})
    extra = list(message.lines)
    if message.approval:
        extra.insert(0, f"*Proposal* ({message.approval['risk_level']} risk): {message.approval['summary']}")
    if extra:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": e("\n".join(extra))[:2900]}})
    buttons = []
    for label, url in message.links():
        button = {"type": "button", "text": {"type": "plain_text", "text": label[:75]}, "url": url[:3000]}
        if label == "Approve":
            button["style"] = "primary"
        elif label == "Acknowledge":
            button["style"] = "danger"
        buttons.append(button)
    if buttons:
        blocks.append({"type": "actions", "elements": buttons[:25]})
    return {"text": message.subject, "attachments": [{"color": message.colour, "blocks": blocks}]}


class Slack(HttpTransport):
    """An incoming webhook (config `webhook_url`) or a bot token with chat.postMessage (`bot_token`, `channel`)."""

    vendor = "Slack"

    def send(self, message: Message, *, reply_to: str = "") -> Sent:
        payload = slack_payload(message)
        if not self.channel.has_secret("bot_token"):
            response = self.post(self.secret("webhook_url"), json_body=payload)
            return Sent(response.status_code, response.text)
        payload["channel"] = self.channel.config.get("channel", "")
        if reply_to:
            payload["thread_ts"] = reply_to
        response = self.post(
            f"{settings.QUENCH_SLACK_API_URL}/chat.postMessage",
            json_body=payload,
            headers={"Authorization": f"Bearer {self.secret('bot_token')}"},
        )
        try:
            answer = json.loads(response.text)
        except ValueError:
            raise TransportError(
                "Slack answered with something that is not JSON.", status_code=response.status_code, body=response.text
            ) from None
        if not answer.get("ok"):
            error = str(answer.get("error", "unknown_error"))
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise TransportError(
                f"Slack refused the message: {error}.",
                permanent=error in SLACK_PERMANENT,
                retry=error in SLACK_TRANSIENT,
                retry_after=retry_after,
                status_code=response.status_code,
                body=response.text,
            )
        return Sent(response.status_code, response.text, str(answer.get("ts", "")))

    def raise_for_response(self, response):
        # Incoming webhooks answer errors as text: 403 invalid_token, 404 no_service, 410 channel_is_archived.
        if response.status_code == 400 and response.text.strip() == "invalid_token":
            raise TransportError("Slack answered invalid_token.", permanent=True, status_code=400, body=response.text)
        super().raise_for_response(response)


# --- Microsoft Teams ---------------------------------------------------------------------------

TEAMS_COLOURS = {"P0": "Attention", "P1": "Attention", "P2": "Warning", "P3": "Accent"}


def teams_payload(message: Message) -> dict:
    """A Workflows webhook message carrying one Adaptive Card (schema 1.4)."""
    colour = "Good" if message.event == "incident_resolved" else TEAMS_COLOURS.get(message.severity, "Default")
    body: list[dict] = [
        {"type": "TextBlock", "text": message.headline, "weight": "Bolder", "size": "Medium", "color": colour},
        {"type": "TextBlock", "text": message.title, "wrap": True, "weight": "Bolder"},
    ]
    facts = [{"title": label, "value": value} for label, value in message.facts() if label != "Root cause"]
    if facts:
        body.append({"type": "FactSet", "facts": facts})
    if message.root_cause:
        body.append({"type": "TextBlock", "text": f"**Root cause:** {message.root_cause}", "wrap": True})
    if message.approval:
        body.append(
            {
                "type": "TextBlock",
                "text": f"**Proposal** ({message.approval['risk_level']} risk): {message.approval['summary']}",
                "wrap": True,
            }
        )
    body.extend({"type": "TextBlock", "text": line, "wrap": True} for line in message.lines)
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": label, "url": url} for label, url in message.links()],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


class Teams(HttpTransport):
    """A Teams Workflows ("When a Teams webhook request is received") URL (config `url`)."""

    vendor = "Teams"

    def send(self, message: Message, *, reply_to: str = "") -> Sent:
        response = self.post(self.secret("url"), json_body=teams_payload(message))
        return Sent(response.status_code, response.text)


# --- Telegram ----------------------------------------------------------------------------------

_MARKDOWN_V2_SPECIAL = re.compile(r"([_*\[\]()~`>#+\-=|{}.!\\])")


def escape_markdown_v2(text: str) -> str:
    """Escape text for Telegram's MarkdownV2: `\\` and each of _*[]()~`>#+-=|{}.! get a backslash."""
    return _MARKDOWN_V2_SPECIAL.sub(r"\\\1", text)


def escape_markdown_v2_url(url: str) -> str:
    """Inside the (...) of an inline link only `)` and `\\` are escaped."""
    return url.replace("\\", "\\\\").replace(")", "\\)")


def telegram_text(message: Message) -> str:
    """The message in MarkdownV2: a bold headline, the linked title, facts, buttons as links."""
    e = escape_markdown_v2
    title = e(message.title[:300])
    if message.incident_url:
        title = f"[{title}]({escape_markdown_v2_url(message.incident_url)})"
    lines = [f"*{e(message.headline)}*", title, ""]
    lines += [f"*{e(label)}:* {e(value[:800])}" for label, value in message.facts()]
    if message.approval:
        lines.append(
            f"*Proposal* {e('(' + message.approval['risk_level'] + ' risk)')}: {e(message.approval['summary'])}"
        )
    lines += [e(line) for line in message.lines]
    links = [f"[{e(label)}]({escape_markdown_v2_url(url)})" for label, url in message.links()]
    if links:
        lines += ["", " · ".join(links)]
    return "\n".join(lines)[:4096]


# Telegram descriptions that mean the bot cannot post to this chat again.
TELEGRAM_PERMANENT = ("chat not found", "bot was blocked", "bot was kicked", "not enough rights", "user is deactivated")


class Telegram(HttpTransport):
    """A bot's sendMessage to one chat (config `bot_token`, `chat_id`); replies by message id."""

    vendor = "Telegram"

    def send(self, message: Message, *, reply_to: str = "") -> Sent:
        payload: dict = {
            "chat_id": self.channel.config.get("chat_id"),
            "text": telegram_text(message),
            "parse_mode": "MarkdownV2",
            "link_preview_options": {"is_disabled": True},
        }
        if reply_to:
            payload["reply_parameters"] = {"message_id": int(reply_to), "allow_sending_without_reply": True}
        url = f"{settings.QUENCH_TELEGRAM_API_URL}/bot{self.secret('bot_token')}/sendMessage"
        response = self.post(url, json_body=payload)
        try:
            message_id = json.loads(response.text)["result"]["message_id"]
        except (ValueError, KeyError, TypeError):
            message_id = ""
        return Sent(response.status_code, response.text, str(message_id))

    def raise_for_response(self, response):
        try:
            answer = json.loads(response.text)
        except ValueError:
            answer = {}
        description = str(answer.get("description", response.text[:200]))
        code = response.status_code
        if code == 429:
            retry_after = (answer.get("parameters") or {}).get("retry_after")
            raise TransportError(
                f"Telegram: {description}",
                retry_after=parse_retry_after(str(retry_after) if retry_after else response.headers.get("retry-after")),
                status_code=code,
                body=response.text,
            )
        if code in (401, 403, 404) or any(phrase in description.lower() for phrase in TELEGRAM_PERMANENT):
            raise TransportError(f"Telegram: {description}", permanent=True, status_code=code, body=response.text)
        super().raise_for_response(response)


# --- Feishu / Lark -----------------------------------------------------------------------------

FEISHU_TEMPLATES = {"P0": "red", "P1": "orange", "P2": "yellow", "P3": "blue"}
# Feishu answers HTTP 200 with its own code: these mean the bot or its settings refuse us for good.
FEISHU_PERMANENT = frozenset({19021, 19022, 19024, 19001})  # sign, IP allow-list, keyword, bad webhook token
FEISHU_TRANSIENT = frozenset({11232, 9499})  # frequency limited, server busy


def feishu_sign(timestamp: int, secret: str) -> str:
    """Feishu's custom-bot signature: base64(HMAC-SHA256(key="<timestamp>\\n<secret>", message=b""))."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", digestmod=hashlib.sha256).digest()).decode()


def feishu_card(message: Message) -> dict:
    """An interactive card: a coloured header, facts in two columns, lark_md text, URL buttons."""
    template = "green" if message.event == "incident_resolved" else FEISHU_TEMPLATES.get(message.severity, "grey")
    elements: list[dict] = []
    short = [(label, value) for label, value in message.facts() if label in ("Severity", "Status", "Service")]
    if short:
        elements.append(
            {
                "tag": "div",
                "fields": [
                    {"is_short": True, "text": {"tag": "lark_md", "content": f"**{label}**\n{value}"}}
                    for label, value in short
                ],
            }
        )
    for label, value in message.facts():
        if label in ("Root cause", "Affected customers", "Pull request"):
            elements.append({"tag": "div", "text": {"tag": "lark_md", "content": f"**{label}**\n{value}"}})
    extra = list(message.lines)
    if message.approval:
        extra.insert(0, f"**Proposal** ({message.approval['risk_level']} risk): {message.approval['summary']}")
    if extra:
        elements.append({"tag": "div", "text": {"tag": "lark_md", "content": "\n".join(extra)}})
    buttons = [
        {
            "tag": "button",
            "text": {"tag": "plain_text", "content": label},
            "type": "primary" if label == "Approve" else ("danger" if label == "Acknowledge" else "default"),
            "url": url,
        }
        for label, url in message.links()
    ]
    if buttons:
        elements.append({"tag": "action", "actions": buttons})
    return {
        "config": {"wide_screen_mode": True},
        "header": {
            "template": template,
            "title": {"tag": "plain_text", "content": f"{message.headline}: {message.title}"[:200]},
        },
        "elements": elements,
    }


class Feishu(HttpTransport):
    """A Feishu/Lark custom bot webhook (config `url`, optional signing `secret`)."""

    vendor = "Feishu"

    def send(self, message: Message, *, reply_to: str = "") -> Sent:
        payload: dict = {"msg_type": "interactive", "card": feishu_card(message)}
        if self.channel.has_secret("secret"):
            timestamp = int(time.time())
            payload = {"timestamp": str(timestamp), "sign": feishu_sign(timestamp, self.secret("secret")), **payload}
        response = self.post(self.secret("url"), json_body=payload)
        try:
            answer = json.loads(response.text)
        except ValueError:
            answer = {}
        code = answer.get("code", answer.get("StatusCode", 0))
        if code:
            text = str(answer.get("msg", answer.get("StatusMessage", "")))[:200]
            raise TransportError(
                f"Feishu refused the message: {code} {text}",
                permanent=code in FEISHU_PERMANENT,
                retry=code in FEISHU_TRANSIENT,
                status_code=response.status_code,
                body=response.text,
            )
        return Sent(response.status_code, response.text)


# --- Generic signed webhook --------------------------------------------------------------------


def webhook_body(message: Message) -> dict:
    """`{"event", "incident": {...}|null, "approval": {...}|null, "sent_at"}`, as the README documents."""
    incident = None
    if message.incident_id is not None:
        incident = {
            "id": message.incident_id,
            "title": message.title,
            "severity": message.severity,
            "status": message.status,
            "service": message.service,
            "url": message.incident_url,
        }
    body: dict = {
        "event": message.event,
        "incident": incident,
        "approval": message.approval,
        "sent_at": message.sent_at,
    }
    if message.incident_id is None:
        body["summary"] = {"title": message.title, "lines": message.lines}
    return body


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256 of "<timestamp>.<body>" with the channel's secret."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class Webhook(HttpTransport):
    """A JSON POST to any URL (config `url`), signed with the channel's `secret`."""

    vendor = "The webhook"
    secret_path = False  # the URL is not a secret here; the signature is

    def send(self, message: Message, *, reply_to: str = "") -> Sent:
        body = json.dumps(webhook_body(message), separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Quench-Event": message.event,
            # The same for every attempt of one notification: receivers can drop a repeat.
            "X-Quench-Notification": message.notification_key,
            "X-Quench-Timestamp": timestamp,
            "X-Quench-Signature": webhook_signature(self.secret("secret"), timestamp, body),
        }
        response = self.post(self.channel.config["url"], content=body, headers=headers)
        return Sent(response.status_code, response.text)


# --- Email -------------------------------------------------------------------------------------


class Email(Transport):
    """Django's email backend: a text part and an HTML part to the channel's `recipients`."""

    def send(self, message: Message, *, reply_to: str = "") -> Sent:
        recipients = list(self.channel.config.get("recipients", []))
        html = render_to_string("notifications/email.html", {"message": message})
        email = EmailMultiAlternatives(
            subject=message.subject.replace("\n", " "),
            body=message.text(),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=recipients,
        )
        email.attach_alternative(html, "text/html")
        try:
            email.send(fail_silently=False)
        except smtplib.SMTPRecipientsRefused as exc:
            raise TransportError(
                f"The mail server refused the recipients: {list(exc.recipients)}", permanent=True
            ) from None
        except smtplib.SMTPAuthenticationError:
            raise TransportError(
                "The mail server refused Quench's login (EMAIL_HOST_USER/PASSWORD).", retry=False
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TransportError(f"Sending email failed: {type(exc).__name__}: {str(exc)[:200]}") from None
        return Sent(None, f"accepted by the email backend for {len(recipients)} recipient(s)")


TRANSPORTS: dict[str, type[Transport]] = {
    ChannelKind.SLACK: Slack,
    ChannelKind.TEAMS: Teams,
    ChannelKind.TELEGRAM: Telegram,
    ChannelKind.FEISHU: Feishu,
    ChannelKind.WEBHOOK: Webhook,
    ChannelKind.EMAIL: Email,
}


def transport_for(channel: Channel) -> Transport:
    """The transport of the channel's kind."""
    return TRANSPORTS[channel.kind](channel)

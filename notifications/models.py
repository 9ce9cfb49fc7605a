"""Channels people are told on, the outbox of notifications, every delivery attempt, used action links."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import Q

from incidents.choices import SEVERITY_RANK, Severity
from incidents.models import Incident
from notifications import vault
from notifications.choices import (
    ROUTABLE_EVENTS,
    ChannelKind,
    DeliveryStatus,
    NotificationEvent,
    NotificationStatus,
)

# Which config keys of each kind are secrets (stored encrypted or as an env reference).
SECRET_KEYS: dict[str, tuple[str, ...]] = {
    ChannelKind.SLACK: ("webhook_url", "bot_token"),
    ChannelKind.TEAMS: ("url",),
    ChannelKind.TELEGRAM: ("bot_token",),
    ChannelKind.FEISHU: ("url", "secret"),
    ChannelKind.WEBHOOK: ("secret",),
    ChannelKind.EMAIL: (),
}

# What each kind needs, for the admin's help and `clean()`.
CONFIG_HELP = {
    ChannelKind.SLACK: '{"webhook_url": "https://hooks.slack.com/services/…"} or {"bot_token": "xoxb-…", "channel": "C0123"}',
    ChannelKind.TEAMS: '{"url": "https://….logic.azure.com/workflows/…"} (a Workflows "post to a channel when a webhook request is received" URL)',
    ChannelKind.TELEGRAM: '{"bot_token": "123456:ABC…", "chat_id": "-1001234567890"}',
    ChannelKind.FEISHU: '{"url": "https://open.feishu.cn/open-apis/bot/v2/hook/…", "secret": "signing secret (optional)"}',
    ChannelKind.WEBHOOK: '{"url": "https://ops.example.com/quench", "secret": "shared HMAC secret"}',
    ChannelKind.EMAIL: '{"recipients": ["oncall@example.com"]}',
}


class ChannelQuerySet(models.QuerySet):
    def routed(self, event: str, *, severity: str = "", service: str = "", escalation: bool = False) -> list:
        """The enabled channels (the escalation ones, or the others) whose routing takes `event`."""
        return [
            channel
            for channel in self.filter(enabled=True, is_escalation=escalation)
            if channel.wants(event, severity=severity, service=service)
        ]


class Channel(models.Model):
    """Where Quench tells people what happened: a Slack/Teams/Telegram/Feishu chat, a webhook, or email.

    Routing: a channel gets an event when the event is in `events` (empty: all), the
    incident is at least as severe as `min_severity`, and its service is in `services`
    (empty: all). Escalation channels get only escalations of unacknowledged P0/P1
    incidents. Secrets in `config` are stored encrypted or as environment-variable names
    (see `notifications.vault`) and never shown.
    """

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=ChannelKind.choices)
    config = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    min_severity = models.CharField(
        max_length=2, choices=Severity.choices, default=Severity.P3, help_text="Incidents less severe are not sent."
    )
    services = models.JSONField(default=list, blank=True, help_text='Only these services, e.g. ["shop"]; empty: all.')
    events = models.JSONField(default=list, blank=True, help_text="Only these events; empty: all.")
    is_escalation = models.BooleanField(
        default=False,
        help_text="An escalation channel (a pager, the managers' chat) is told only when a P0/P1 "
        "stays unacknowledged after the reminder.",
    )
    disabled_reason = models.CharField(
        max_length=500, blank=True, help_text="Why Quench disabled it (the vendor refused it for good)."
    )
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ChannelQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def clean(self) -> None:
        super().clean()
        if not isinstance(self.config, dict):
            raise ValidationError({"config": "Must be a JSON object, e.g. " + CONFIG_HELP.get(self.kind, "{}")})
        if not isinstance(self.services, list) or not all(isinstance(s, str) for s in self.services):
            raise ValidationError({"services": 'Must be a list of service names, e.g. ["shop"].'})
        if not isinstance(self.events, list) or any(event not in ROUTABLE_EVENTS for event in self.events):
            raise ValidationError({"events": "Must be a list of: " + ", ".join(ROUTABLE_EVENTS) + "."})
        config, has = self.config, (lambda key: bool(self.config.get(key)))
        problem = ""
        if self.kind == ChannelKind.SLACK:
            if not (has("webhook_url") or (has("bot_token") and has("channel"))):
                problem = "Slack needs webhook_url, or bot_token and channel."
        elif self.kind in (ChannelKind.TEAMS, ChannelKind.FEISHU) and not has("url"):
            problem = f"{self.get_kind_display()} needs url."
        elif self.kind == ChannelKind.TELEGRAM and not (has("bot_token") and has("chat_id")):
            problem = "Telegram needs bot_token and chat_id."
        elif self.kind == ChannelKind.WEBHOOK:
            url = config.get("url")
            if not (isinstance(url, str) and url.startswith(("http://", "https://"))):
                problem = "The webhook needs url (http or https)."
            elif not has("secret"):
                problem = "The webhook needs secret (its requests are signed with it)."
        elif self.kind == ChannelKind.EMAIL:
            recipients = config.get("recipients")
            if not isinstance(recipients, list) or not recipients:
                problem = 'Email needs recipients, e.g. ["oncall@example.com"].'
            else:
                for address in recipients:
                    try:
                        validate_email(address)
                    except (ValidationError, TypeError):
                        problem = f"Not an email address: {str(address)[:100]!r}."
                        break
        if problem:
            raise ValidationError({"config": f"{problem} Example: {CONFIG_HELP[self.kind]}"})

    def secret(self, key: str) -> str:
        """The plain value of a secret config key (only transports call this)."""
        return vault.reveal(self.config.get(key), name=key)

    def has_secret(self, key: str) -> bool:
        return bool(self.config.get(key))

    def public_config(self) -> dict:
        """The config as it may be shown: secrets masked or named by their env variable."""
        secret_keys = SECRET_KEYS.get(self.kind, ())
        return {key: (vault.masked(value) if key in secret_keys else value) for key, value in self.config.items()}

    def wants(self, event: str, *, severity: str = "", service: str = "") -> bool:
        """Whether this (enabled) channel's routing takes `event` about an incident of `severity` and `service`."""
        if self.events and event not in self.events:
            return False
        if severity and SEVERITY_RANK.get(severity, 3) > SEVERITY_RANK.get(self.min_severity, 3):
            return False
        return not (self.services and service and service not in self.services)


class Notification(models.Model):
    """The outbox: one message about one event for one channel, written in the transaction of the change.

    `(channel, dedup_key)` is unique, so an event is queued once per channel however often
    its cause is re-run; a worker sends it only after claiming it with a conditional update
    (`status` pending/retrying → sending), so it is posted at most once.
    """

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=30, choices=NotificationEvent.choices)
    dedup_key = models.CharField(max_length=200, help_text="The event's identity, e.g. approval_requested:approval-7.")
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    approval = models.ForeignKey(
        "remediation.ApprovalRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    execution = models.ForeignKey(
        "remediation.Execution", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    diagnosis = models.ForeignKey(
        "remediation.Diagnosis", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    context = models.JSONField(default=dict, blank=True, help_text="What the message needs beyond the records.")
    status = models.CharField(max_length=10, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    budget_start = models.PositiveSmallIntegerField(
        default=0, help_text="`attempts` when it was last resent by hand: the retry limit counts from here."
    )
    next_attempt_at = models.DateTimeField(help_text="Not sent before this time (retries back off).")
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    external_id = models.CharField(
        max_length=100,
        blank=True,
        help_text="The vendor's message id (Slack ts, Telegram message_id): replies thread under it.",
    )
    last_error = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Exactly once per (event, channel): a second write of the same event is refused here.
            models.UniqueConstraint(fields=["channel", "dedup_key"], name="one_notification_per_event_and_channel"),
        ]
        indexes = [
            # The sweeper's query: what is due to be (re)tried.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "retrying", "sending"]),
                name="notification_due",
            ),
            models.Index(fields=["incident", "channel"], name="notification_incident_channel"),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} → {self.channel.name if self.channel_id else '?'} ({self.status})"


class Delivery(models.Model):
    """One attempt to send a notification: what the vendor answered, how long it took, what happens next."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    attempt = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text="The vendor's answer, truncated.")
    error = models.CharField(max_length=1000, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["notification", "attempt"], name="one_delivery_per_attempt")]

    def __str__(self) -> str:
        return f"Attempt {self.attempt} of notification #{self.notification_id}: {self.status}"


class UsedActionLink(models.Model):
    """A signed action link that was used: the unique digest makes every link single-use."""

    token_digest = models.CharField(max_length=64, unique=True)
    action = models.CharField(max_length=20)
    object_id = models.PositiveBigIntegerField()
    used_by = models.CharField(max_length=150)
    used_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-used_at"]

    def __str__(self) -> str:
        return f"{self.action} #{self.object_id} by {self.used_by}"

"""Enumerations of the notifications domain."""

from django.db import models


class ChannelKind(models.TextChoices):
    SLACK = "slack", "Slack"
    TEAMS = "teams", "Microsoft Teams"
    TELEGRAM = "telegram", "Telegram"
    FEISHU = "feishu", "Feishu / Lark"
    WEBHOOK = "webhook", "Signed webhook"
    EMAIL = "email", "Email"


class NotificationEvent(models.TextChoices):
    """What happened. Channels route by these; the generic webhook sends the value as `event`."""

    INCIDENT_OPENED = "incident_opened", "Incident opened"
    INCIDENT_REGRESSED = "incident_regressed", "Incident regressed"
    DIAGNOSIS_READY = "diagnosis_ready", "Diagnosis ready"
    APPROVAL_REQUESTED = "approval_requested", "Approval requested"
    APPROVAL_EXPIRED = "approval_expired", "Approval expired"
    EXECUTION_STARTED = "execution_started", "Execution started"
    EXECUTION_FAILED = "execution_failed", "Execution failed"
    PULL_REQUEST_OPENED = "pull_request_opened", "Pull request opened"
    INCIDENT_RESOLVED = "incident_resolved", "Incident resolved"
    INCIDENT_ESCALATED = "incident_escalated", "Incident escalated"
    INCIDENT_UNACKNOWLEDGED = "incident_unacknowledged", "P0/P1 still unacknowledged"
    DAILY_SUMMARY = "daily_summary", "Daily summary"
    TEST = "test", "Test message"


# Events a channel can subscribe to (a test is always sent when asked for).
ROUTABLE_EVENTS = [event for event in NotificationEvent.values if event != NotificationEvent.TEST]


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Waiting to retry"
    SENT = "sent", "Sent"
    DEAD = "dead", "Dead (gave up)"
    SKIPPED = "skipped", "Skipped (channel disabled)"


# States in which a worker may claim the row.
CLAIMABLE = (NotificationStatus.PENDING, NotificationStatus.RETRYING)


class DeliveryStatus(models.TextChoices):
    SENT = "sent", "Sent"
    RETRY = "retry", "Failed, will retry"
    DEAD = "dead", "Failed, gave up"
    PERMANENT = "permanent", "Refused for good (channel disabled)"
    UNKNOWN = "unknown", "Worker lost mid-send"

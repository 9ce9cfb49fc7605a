"""Enumerations of the incidents domain."""

from django.db import models


class IntegrationKind(models.TextChoices):
    ALERTMANAGER = "alertmanager", "Prometheus Alertmanager"
    GRAFANA = "grafana", "Grafana alerting"
    SENTRY = "sentry", "Sentry"
    EVENTS_V2 = "events_v2", "PagerDuty Events v2 compatible"
    GENERIC = "generic", "Generic JSON"


class IncidentStatus(models.TextChoices):
    TRIGGERED = "triggered", "Triggered"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    DIAGNOSING = "diagnosing", "Diagnosing"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    REMEDIATING = "remediating", "Remediating"
    VERIFYING = "verifying", "Verifying"
    RESOLVED = "resolved", "Resolved"
    SUPPRESSED = "suppressed", "Suppressed"
    ESCALATED = "escalated", "Escalated"
    REGRESSED = "regressed", "Regressed"


# States in which a remediation is in flight: a source "resolved" only notes the timeline.
REMEDIATION_IN_FLIGHT = frozenset(
    {IncidentStatus.AWAITING_APPROVAL, IncidentStatus.REMEDIATING, IncidentStatus.VERIFYING}
)


class Severity(models.TextChoices):
    P0 = "P0", "P0 – critical"
    P1 = "P1", "P1 – high"
    P2 = "P2", "P2 – moderate"
    P3 = "P3", "P3 – low / informational"


# Lower is more severe: the order for "raise the severity, never lower it" and for routing.
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(Severity.values)}


class EventOutcome(models.TextChoices):
    """What ingestion did with one received signal (also the /metrics outcome label)."""

    OPENED = "opened", "Opened a new incident"
    APPENDED = "appended", "Added to an open incident"
    REGRESSED = "regressed", "Reopened a resolved incident"
    RESOLVED = "resolved", "Resolved by the source"
    NOTED = "noted", "Noted on the timeline"
    SUPPRESSED = "suppressed", "Matched a silence"
    DUPLICATE = "duplicate", "Retried delivery, already stored"


class ActivityKind(models.TextChoices):
    OPENED = "opened", "Opened"
    REGRESSED = "regressed", "Regressed"
    STATUS = "status", "Status changed"
    SEVERITY = "severity", "Severity changed"
    SOURCE_RESOLVED = "source_resolved", "Source reported resolved"
    SUPPRESSED = "suppressed", "Suppressed by a silence"
    WAKEUP = "wakeup", "Needs attention"
    NOTE = "note", "Note"


class LogLevel(models.TextChoices):
    WARNING = "warning", "Warning and above"
    ERROR = "error", "Error and above"
    CRITICAL = "critical", "Critical only"


class PostmortemStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    REVIEWED = "reviewed", "Reviewed"
    PUBLISHED = "published", "Published"

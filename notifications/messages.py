"""What a notification says, built once from the records and rendered by each transport.

Built when it is sent (not when queued), so it shows what is known by then (a diagnosis
that finished meanwhile) and carries fresh action links.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from incidents.complaints import affected_customers
from incidents.models import Incident
from notifications import links
from notifications.choices import NotificationEvent
from notifications.models import Notification
from remediation.choices import ApprovalStatus
from remediation.models import ApprovalRequest, Diagnosis, Execution

E = NotificationEvent

# Hex colours by severity (Slack attachment bar, email header); resolved is green.
SEVERITY_COLOURS = {"P0": "#B91C1C", "P1": "#EA580C", "P2": "#CA8A04", "P3": "#2563EB"}
RESOLVED_COLOUR = "#16A34A"
NEUTRAL_COLOUR = "#6B7280"

HEADLINES = {
    E.INCIDENT_OPENED: "New incident",
    E.INCIDENT_REGRESSED: "Incident regressed",
    E.DIAGNOSIS_READY: "Diagnosis ready",
    E.APPROVAL_REQUESTED: "Approval requested",
    E.APPROVAL_EXPIRED: "Approval expired",
    E.EXECUTION_STARTED: "Remediation started",
    E.EXECUTION_FAILED: "Remediation failed",
    E.PULL_REQUEST_OPENED: "Fix published",
    E.INCIDENT_RESOLVED: "Incident resolved",
    E.INCIDENT_ESCALATED: "Incident escalated",
    E.INCIDENT_UNACKNOWLEDGED: "Still unacknowledged",
    E.DAILY_SUMMARY: "Daily summary",
    E.TEST: "Test message",
}

MAX_CUSTOMERS = 5


@dataclass
class Message:
    """Everything a transport may show; empty fields are left out of the rendering."""

    event: str
    headline: str
    title: str
    colour: str
    severity: str = ""
    status: str = ""
    service: str = ""
    incident_id: int | None = None
    incident_url: str = ""
    root_cause: str = ""
    customers: list[str] = field(default_factory=list)
    pull_request_url: str = ""
    approval: dict | None = None
    acknowledge_url: str = ""
    lines: list[str] = field(default_factory=list)
    sent_at: str = ""
    notification_key: str = ""

    @property
    def subject(self) -> str:
        """One line: what happened to what (email subject, notification previews)."""
        prefix = f"[{self.severity}] " if self.severity else ""
        return f"{prefix}{self.headline}: {self.title}"[:250]

    def text(self) -> str:
        """The plain-text body (email text part, fallbacks)."""
        out = [self.subject, ""]
        for label, value in self.facts():
            out.append(f"{label}: {value}")
        out.extend(self.lines)
        if self.approval:
            out.append(f"Proposal: {self.approval['summary']}")
        for label, url in self.links():
            out.append(f"{label}: {url}")
        return "\n".join(out).strip() + "\n"

    def facts(self) -> list[tuple[str, str]]:
        """Labelled short facts, in display order."""
        facts = [
            ("Severity", self.severity),
            ("Status", self.status),
            ("Service", self.service),
            ("Root cause", self.root_cause),
            ("Affected customers", ", ".join(self.customers)),
            ("Pull request", self.pull_request_url),
        ]
        return [(label, value) for label, value in facts if value]

    def links(self) -> list[tuple[str, str]]:
        """Buttons: label and URL (approval page, signed approve, signed acknowledge, incident)."""
        out = []
        if self.approval:
            out.append(("Open the approval", self.approval["url"]))
            if self.approval.get("approve_url"):
                out.append(("Approve", self.approval["approve_url"]))
        if self.acknowledge_url:
            out.append(("Acknowledge", self.acknowledge_url))
        if self.pull_request_url:
            out.append(("Pull request", self.pull_request_url))
        if self.incident_url:
            out.append(("Open the incident", self.incident_url))
        return out


def admin_url(name: str, object_id: int) -> str:
    return settings.SITE_URL + reverse(name, args=[object_id])


def build_message(notification: Notification) -> Message:
    """The message of one outbox row, from its incident, approval, execution and diagnosis."""
    event = notification.event
    now = timezone.now()
    incident = notification.incident
    if incident is None:
        message = _without_incident(notification, now)
        message.notification_key = str(notification.pk or "")
        return message
    message = Message(
        event=event,
        headline=HEADLINES.get(event, event),
        title=incident.title,
        colour=RESOLVED_COLOUR
        if event == E.INCIDENT_RESOLVED
        else SEVERITY_COLOURS.get(incident.severity, NEUTRAL_COLOUR),
        severity=incident.severity,
        status=incident.get_status_display(),
        service=incident.service,
        incident_id=incident.pk,
        incident_url=admin_url("admin:incidents_incident_change", incident.pk),
        sent_at=now.isoformat(),
        notification_key=str(notification.pk or ""),
    )
    diagnosis = notification.diagnosis or _latest_diagnosis(incident)
    if diagnosis is not None and diagnosis.hypothesis:
        message.root_cause = diagnosis.hypothesis[:600]
    message.customers = [
        (row["customer_name"] or row["customer_id"]) + f" ({row['complaints']})"
        for row in affected_customers(incident)[:MAX_CUSTOMERS]
    ]
    execution = notification.execution
    if execution is not None:
        message.pull_request_url = execution.pull_request_url
        if event == E.PULL_REQUEST_OPENED and not execution.pull_request_url and execution.branch:
            message.lines.append(f"Branch {execution.branch} pushed ({execution.commit_sha[:12]}).")
        if event == E.EXECUTION_FAILED and execution.error:
            message.lines.append(f"Error: {execution.error[:500]}")
    elif (
        pr := Execution.objects.filter(incident=incident)
        .exclude(pull_request_url="")
        .values_list("pull_request_url", flat=True)
        .first()
    ):
        message.pull_request_url = pr
    approval = notification.approval
    if approval is not None:
        message.approval = _approval_part(approval)
    wants_ack = event in (E.INCIDENT_OPENED, E.INCIDENT_REGRESSED, E.INCIDENT_ESCALATED, E.INCIDENT_UNACKNOWLEDGED)
    if wants_ack and incident.status not in ("acknowledged", "resolved"):
        message.acknowledge_url = links.action_url(links.ACKNOWLEDGE, incident.pk)
    if reason := notification.context.get("reason"):
        message.lines.append(reason)
    return message


def _approval_part(approval: ApprovalRequest) -> dict:
    part = {
        "id": approval.pk,
        "kind": approval.kind,
        "summary": approval.summary[:500],
        "risk_level": approval.risk_level,
        "status": approval.status,
        "expires_at": approval.expires_at.isoformat(),
        "url": admin_url("admin:remediation_approvalrequest_change", approval.pk),
        "approve_url": None,
    }
    if approval.status == ApprovalStatus.PENDING:
        part["approve_url"] = links.action_url(links.APPROVE, approval.pk)
    return part


def _latest_diagnosis(incident: Incident) -> Diagnosis | None:
    return incident.diagnoses.exclude(hypothesis="").order_by("-created_at").first()


def _without_incident(notification: Notification, now) -> Message:
    """A daily summary or a test: no incident, the lines are the content."""
    event = notification.event
    context = notification.context
    return Message(
        event=event,
        headline=HEADLINES.get(event, event),
        title=context.get("title", "Quench"),
        colour=NEUTRAL_COLOUR,
        lines=list(context.get("lines", [])),
        incident_url=context.get("url", ""),
        sent_at=now.isoformat(),
    )

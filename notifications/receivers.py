"""How notifications react to incidents and remediation (subscribed in `NotificationsConfig.ready()`).

Every receiver runs inside the transaction of the change and only writes outbox rows
(`services.notify`); delivery happens in a task after commit.
"""

from __future__ import annotations

from django.utils import timezone

from incidents.choices import IncidentStatus
from notifications.choices import NotificationEvent
from notifications.services import notify

E = NotificationEvent
S = IncidentStatus

# Incident status changes worth telling people about, and the event they become.
TRANSITION_EVENTS = {
    S.REGRESSED: E.INCIDENT_REGRESSED,
    S.RESOLVED: E.INCIDENT_RESOLVED,
    S.ESCALATED: E.INCIDENT_ESCALATED,
}


def on_incident_opened(sender, *, incident, **kwargs) -> None:
    """A new incident (unless a silence already suppressed it)."""
    if incident.status == S.SUPPRESSED:
        return
    notify(E.INCIDENT_OPENED, dedup_key=f"incident_opened:incident-{incident.pk}", incident=incident)


def on_incident_transitioned(sender, *, incident, from_status, to_status, message="", **kwargs) -> None:
    """Regressed, resolved or escalated: one notification per transition (its time is part of the key)."""
    event = TRANSITION_EVENTS.get(to_status)
    if event is None:
        return
    when = timezone.now().isoformat()
    context = {"reason": message[:500]} if to_status == S.ESCALATED and message else {}
    notify(event, dedup_key=f"{event}:incident-{incident.pk}:{when}", incident=incident, context=context)


def on_diagnosis_ready(sender, *, diagnosis, incident, **kwargs) -> None:
    notify(
        E.DIAGNOSIS_READY, dedup_key=f"diagnosis_ready:diagnosis-{diagnosis.pk}", incident=incident, diagnosis=diagnosis
    )


def on_approval_requested(sender, *, approval, **kwargs) -> None:
    notify(
        E.APPROVAL_REQUESTED,
        dedup_key=f"approval_requested:approval-{approval.pk}",
        incident=approval.incident,
        approval=approval,
        diagnosis=approval.diagnosis,
    )


def on_approval_expired(sender, *, approval, **kwargs) -> None:
    notify(
        E.APPROVAL_EXPIRED,
        dedup_key=f"approval_expired:approval-{approval.pk}",
        incident=approval.incident,
        approval=approval,
    )


def on_execution_started(sender, *, execution, **kwargs) -> None:
    notify(
        E.EXECUTION_STARTED,
        dedup_key=f"execution_started:execution-{execution.pk}",
        incident=execution.incident,
        execution=execution,
        approval=execution.approval,
    )


def on_execution_failed(sender, *, execution, **kwargs) -> None:
    notify(
        E.EXECUTION_FAILED,
        dedup_key=f"execution_failed:execution-{execution.pk}",
        incident=execution.incident,
        execution=execution,
    )


def on_pull_request_opened(sender, *, execution, **kwargs) -> None:
    notify(
        E.PULL_REQUEST_OPENED,
        dedup_key=f"pull_request_opened:execution-{execution.pk}",
        incident=execution.incident,
        execution=execution,
    )

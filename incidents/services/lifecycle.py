"""The incident state machine: every transition is one function that checks, writes and logs."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from incidents.choices import ActivityKind, IncidentStatus
from incidents.models import Activity, Incident
from incidents.signals import incident_transitioned

S = IncidentStatus

# Which status may follow which. Anything else is refused with a reason.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.TRIGGERED: frozenset({S.ACKNOWLEDGED, S.DIAGNOSING, S.SUPPRESSED, S.ESCALATED, S.RESOLVED}),
    S.REGRESSED: frozenset({S.ACKNOWLEDGED, S.DIAGNOSING, S.SUPPRESSED, S.ESCALATED, S.RESOLVED}),
    S.ACKNOWLEDGED: frozenset({S.DIAGNOSING, S.ESCALATED, S.SUPPRESSED, S.RESOLVED, S.TRIGGERED}),
    S.DIAGNOSING: frozenset({S.AWAITING_APPROVAL, S.TRIGGERED, S.ACKNOWLEDGED, S.ESCALATED, S.RESOLVED}),
    S.AWAITING_APPROVAL: frozenset({S.REMEDIATING, S.DIAGNOSING, S.ACKNOWLEDGED, S.ESCALATED, S.RESOLVED}),
    S.REMEDIATING: frozenset({S.VERIFYING, S.ESCALATED, S.RESOLVED}),
    S.VERIFYING: frozenset({S.RESOLVED, S.REMEDIATING, S.ESCALATED, S.REGRESSED, S.ACKNOWLEDGED}),
    S.ESCALATED: frozenset({S.ACKNOWLEDGED, S.DIAGNOSING, S.RESOLVED}),
    S.SUPPRESSED: frozenset({S.TRIGGERED, S.ACKNOWLEDGED, S.RESOLVED}),
    S.RESOLVED: frozenset({S.REGRESSED, S.TRIGGERED}),
}


class TransitionRefused(Exception):
    """A requested status change is not allowed from the incident's current state."""

    def __init__(self, message: str, *, incident_id: int | None = None, current_status: str = ""):
        super().__init__(message)
        self.message = message
        self.incident_id = incident_id
        self.current_status = current_status


def record_activity(incident: Incident, kind: str, message: str, *, actor: str = "quench", **fields) -> Activity:
    """Append one timeline entry (callers hold the incident's row lock)."""
    return Activity.objects.create(incident=incident, kind=kind, message=message, actor=actor, **fields)


def apply_transition(incident: Incident, to_status: str, *, actor: str, message: str, now=None) -> None:
    """Change the status of a locked incident and write its timeline entry; no save of other fields."""
    now = now or timezone.now()
    from_status = incident.status
    allowed = ALLOWED_TRANSITIONS.get(from_status, frozenset())
    if to_status not in allowed:
        raise TransitionRefused(
            f"Incident #{incident.pk} is {from_status}; it cannot become {to_status}.",
            incident_id=incident.pk,
            current_status=from_status,
        )
    incident.status = to_status
    if to_status == S.RESOLVED:
        incident.resolved_at = now
    elif to_status == S.ACKNOWLEDGED:
        incident.acknowledged_at = now
    elif to_status == S.REGRESSED:
        incident.regressed_at = now
    record_activity(
        incident,
        ActivityKind.STATUS,
        message,
        actor=actor,
        from_status=from_status,
        to_status=to_status,
        created_at=now,
    )
    incident_transitioned.send(
        sender=Incident,
        incident=incident,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        message=message,
    )


def transition_incident(incident_id: int, to_status: str, *, actor: str, message: str = "") -> Incident:
    """Move an incident to `to_status` under its row lock, or raise TransitionRefused saying why."""
    try:
        with transaction.atomic():
            incident = Incident.objects.select_for_update().get(pk=incident_id)
            apply_transition(
                incident,
                to_status,
                actor=actor,
                message=message or f"{S(incident.status).label} → {S(to_status).label}",
            )
            incident.save()
    except IntegrityError:
        # Only reopening can collide: another open incident already has this fingerprint.
        other = Incident.objects.filter(fingerprint=incident.fingerprint).exclude(status=S.RESOLVED).first()
        raise TransitionRefused(
            f"Incident #{incident_id} cannot reopen: incident #{other.pk if other else '?'} "
            "is already open for the same fingerprint.",
            incident_id=incident_id,
            current_status=S.RESOLVED,
        ) from None
    return incident


def acknowledge_incident(incident_id: int, *, actor: str, note: str = "") -> Incident:
    """An engineer (or the source) says someone is on it."""
    return transition_incident(incident_id, S.ACKNOWLEDGED, actor=actor, message=note or f"Acknowledged by {actor}")


def resolve_incident(incident_id: int, *, actor: str, note: str = "") -> Incident:
    """Close the incident by hand; the same fingerprint firing again reopens it as regressed."""
    return transition_incident(incident_id, S.RESOLVED, actor=actor, message=note or f"Resolved by {actor}")


def reopen_incident(incident_id: int, *, actor: str, note: str = "") -> Incident:
    """Reopen a resolved incident by hand (not a regression: nothing fired)."""
    return transition_incident(incident_id, S.TRIGGERED, actor=actor, message=note or f"Reopened by {actor}")


def change_severity(incident_id: int, severity: str, *, actor: str, reason: str = "") -> Incident:
    """Set an incident's priority by hand, with the reason on the timeline."""
    from incidents.choices import Severity

    if severity not in Severity.values:
        raise TransitionRefused(f"Unknown severity {severity!r}; choose one of {', '.join(Severity.values)}.")
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident_id)
        if incident.severity == severity:
            return incident
        record_activity(
            incident,
            ActivityKind.SEVERITY,
            f"Severity {incident.severity} → {severity} by {actor}" + (f": {reason}" if reason else ""),
            actor=actor,
            data={"from": incident.severity, "to": severity},
        )
        incident.severity = severity
        incident.severity_reason = (reason or f"set by {actor}")[:300]
        incident.save(update_fields=["severity", "severity_reason", "updated_at"])
    return incident

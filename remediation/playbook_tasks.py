"""Named tasks a playbook "task" step may call (see `remediation.playbooks.NAMED_TASKS`).

Each takes the incident id and the step's kwargs, and returns a short result line.
"""

from __future__ import annotations

from django.db import transaction

from incidents.choices import ActivityKind
from incidents.models import Incident
from incidents.services.lifecycle import record_activity


def timeline_note(incident_id: int, *, message: str = "", **_ignored) -> str:
    """Write a note on the incident's timeline (e.g. "cache flushed by the on-call bot")."""
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident_id)
        record_activity(incident, ActivityKind.NOTE, message or "Playbook note", actor="playbook")
    return "noted"


def reanalyze(incident_id: int, **_ignored) -> str:
    """Ask for a fresh diagnosis of the incident (deduplicated like the admin action)."""
    from remediation.services import request_diagnosis

    diagnosis, created = request_diagnosis(incident_id, trigger="reanalyze", actor="playbook")
    if diagnosis is None:
        return "not diagnosable in its current state"
    return f"diagnosis #{diagnosis.pk} {'requested' if created else 'already in flight'}"

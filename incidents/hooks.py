"""What other apps do when an incident opens or resolves, handed to the queue once the change commits.

The incidents app calls these from inside its transactions; the work itself (embedding,
writing knowledge) is slow and lives in other apps' tasks, so it is enqueued on commit
only: a rolled-back incident never reaches the queue. Tasks get primary keys and are
idempotent, so a redelivered task is harmless.

The callbacks are robust: the incident is already committed when they run, so a failed
enqueue must not turn the ingest request into an error (the sender would retry an event
we stored). It is logged instead, and the knowledge sweep
(`knowledge.tasks.sweep_missing_knowledge`) does the work later.

A new incident's signature is embedded by its wake-up task (`incident_needs_attention`).
"""

from __future__ import annotations

import logging

from django.db import transaction

from incidents.models import Incident

logger = logging.getLogger(__name__)


def _enqueue(func: str, incident_id: int, *, task_name: str, group: str) -> None:
    from django_q.tasks import async_task

    async_task(func, incident_id, task_name=task_name, group=group)


def incident_needs_attention(incident_id: int, reason: str) -> None:
    """Run inside the wake-up task of a new or changed incident: embed its signature, then queue its diagnosis.

    Done in the task that is already running rather than in a task of its own, so that
    opening an incident costs the ingest request one queue insert, not two. Silenced
    incidents get no wake-up; the knowledge sweep embeds them within minutes. A failure
    here is logged and left to that sweep, so the wake-up itself still completes.
    """
    from knowledge.tasks import embed_incident
    from remediation.services import request_diagnosis

    try:
        embed_incident(incident_id)
    except Exception:
        logger.exception("embedding the incident signature failed", extra={"incident_id": incident_id})
    # Diagnosis comes after the embedding so that it can already find similar incidents.
    request_diagnosis(incident_id, trigger=reason)


def incident_resolved(incident: Incident) -> None:
    """A resolved incident: write what happened and how it ended into the knowledge base."""
    incident_id = incident.pk
    transaction.on_commit(
        lambda: _enqueue(
            "knowledge.tasks.write_incident_summary",
            incident_id,
            task_name=f"incident-summary-{incident_id}",
            group="knowledge",
        ),
        robust=True,
    )

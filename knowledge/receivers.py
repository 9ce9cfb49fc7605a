"""How the knowledge app reacts to incidents (subscribed in `KnowledgeConfig.ready()`)."""

from __future__ import annotations

import logging

from django.db import transaction
from django_q import tasks as django_q_tasks

from incidents.choices import IncidentStatus

logger = logging.getLogger(__name__)


def write_summary_when_resolved(sender, *, incident, to_status, **kwargs) -> None:
    """A resolved incident: write what happened and how it ended, once the change commits.

    On commit only, so a rolled-back resolve never reaches the queue. Robust: the incident is
    already committed when this runs, so a failed enqueue is logged and left to the
    knowledge sweep (`knowledge.tasks.sweep_missing_knowledge`) rather than raised.
    """
    if to_status != IncidentStatus.RESOLVED:
        return
    incident_id = incident.pk
    transaction.on_commit(
        lambda: django_q_tasks.async_task(
            "knowledge.tasks.write_incident_summary",
            incident_id,
            task_name=f"incident-summary-{incident_id}",
            group="knowledge",
        ),
        robust=True,
    )


def write_postmortem_when_published(sender, *, postmortem, **kwargs) -> None:
    """A published (or re-edited published) postmortem goes into the knowledge base, once the change commits."""
    postmortem_id = postmortem.pk
    transaction.on_commit(
        lambda: django_q_tasks.async_task(
            "knowledge.tasks.write_postmortem",
            postmortem_id,
            task_name=f"postmortem-knowledge-{postmortem_id}",
            group="knowledge",
        ),
        robust=True,
    )

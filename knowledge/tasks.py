"""django-q2 tasks of the knowledge app. Every task takes primary keys and is idempotent.

The ORM broker delivers at least once; a redelivered task upserts the same rows again
(the writer's unique keys), so it changes nothing the first delivery did not.
"""

from __future__ import annotations

import logging

from knowledge import services

logger = logging.getLogger(__name__)


def embed_incident(incident_id: int) -> bool:
    """Embed an incident's signature (exception, normalized message, frames, service, labels)."""
    signature = services.embed_incident_signature(incident_id)
    if signature is None:
        logger.info("incident gone before its signature was embedded", extra={"incident_id": incident_id})
        return False
    return True


def write_incident_summary(incident_id: int) -> int | None:
    """Write the incident-summary knowledge entry of a resolved incident; the entry's id.

    The write is awaited here, not fired and forgotten: a write that fails every retry is
    a dead letter before this task returns, and the reconciler replays it.
    """
    entry = services.write_incident_summary(incident_id)
    if entry is None:
        logger.warning("incident summary not written now", extra={"incident_id": incident_id})
        return None
    return entry.pk


def reconcile_dead_letters() -> dict[str, int]:
    """Scheduled every 5 minutes: replay knowledge writes that failed every retry."""
    counts = services.reconcile_dead_letters()
    if counts["resolved"] or counts["failed"]:
        logger.info("dead letters reconciled", extra=counts)
    return counts


def sweep_missing_knowledge() -> dict[str, int]:
    """Scheduled every 10 minutes: signatures and summaries that the on-commit tasks missed."""
    counts = services.sweep_missing_knowledge()
    if counts["signatures"] or counts["summaries"]:
        logger.info("knowledge sweep caught up", extra=counts)
    return counts


def write_postmortem(postmortem_id: int) -> int | None:
    """Write a published postmortem into the knowledge base; the entry's id (idempotent upsert)."""
    entry = services.write_postmortem_knowledge(postmortem_id)
    if entry is None:
        logger.info("postmortem knowledge not written now", extra={"postmortem_id": postmortem_id})
        return None
    return entry.pk

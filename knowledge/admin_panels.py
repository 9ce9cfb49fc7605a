"""Knowledge panels shown inside other apps' admin pages (the incident page's "Similar past incidents")."""

from __future__ import annotations

import logging

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError

from knowledge import retrieval

logger = logging.getLogger(__name__)

SIMILAR_INCIDENTS_IN_ADMIN = 5


def similar_incidents_context(incident, k: int = SIMILAR_INCIDENTS_IN_ADMIN) -> dict:
    """Template context for the incident change page: `similar_incidents` (a list of `retrieval.Hit`).

    The page must open even when retrieval cannot run (no provider configured, a server
    without pgvector 0.8's iterative scans): then the list is empty and
    `similar_incidents_error` says why.
    """
    try:
        hits = retrieval.similar_incidents(incident, k)
    except (ImproperlyConfigured, DatabaseError) as error:
        logger.exception("similar incidents unavailable", extra={"incident_id": incident.pk})
        return {"similar_incidents": [], "similar_incidents_error": f"Similar incidents are unavailable: {error}"}
    return {"similar_incidents": hits}


def similar_incidents_panel(incident, request) -> dict:
    """The incident admin page's panel (registered in `KnowledgeConfig.ready()`)."""
    return similar_incidents_context(incident)

"""How the remediation app reacts to incidents (subscribed in `RemediationConfig.ready()`)."""

from __future__ import annotations

import logging

from knowledge.tasks import embed_incident
from remediation.services import request_diagnosis

logger = logging.getLogger(__name__)


def diagnose_when_needed(sender, *, incident_id: int, reason: str, **kwargs) -> None:
    """A new or changed incident needs attention: embed its signature, then queue its diagnosis.

    Runs in the wake-up task that is already running, so opening an incident costs the
    ingest request one queue insert, not two. The embedding comes first so the diagnosis
    can already find similar incidents; a failed embedding is logged and left to the
    knowledge sweep, and the diagnosis is requested all the same.
    """
    try:
        embed_incident(incident_id)
    except Exception:
        logger.exception("embedding the incident signature failed", extra={"incident_id": incident_id})
    request_diagnosis(incident_id, trigger=reason)

"""Business rules of the incidents app. Views, admin actions, tasks and commands call these."""

from incidents.services.ingest import IngestResult, ingest_signals
from incidents.services.lifecycle import (
    TransitionRefused,
    acknowledge_incident,
    reopen_incident,
    resolve_incident,
    transition_incident,
)

__all__ = [
    "IngestResult",
    "TransitionRefused",
    "acknowledge_incident",
    "ingest_signals",
    "reopen_incident",
    "resolve_incident",
    "transition_incident",
]

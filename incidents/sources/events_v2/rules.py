"""Events API v2's own rules: the routing key authenticates, and a trigger without a dedup key gets one.

PagerDuty authenticates an event by the `routing_key` in its body (no header), and
answers a trigger sent without a `dedup_key` with one it generated, which the sender
then uses to acknowledge or resolve. Quench does the same with the integration token as
routing key and the signal's default fingerprint as the generated key, so the same
alert always gets the same key. Dedup keys are scoped to the integration by the ingest
service, as PagerDuty scopes them to the routing key.
"""

from __future__ import annotations

from incidents.fingerprinting import compute_fingerprint
from incidents.sources.base import PayloadError, Signal, SignalStatus

GENERATED_DEDUP_KEY_LENGTH = 32


def routing_key(payload: object) -> str:
    """The body's routing_key (the integration token); PayloadError when missing."""
    key = payload.get("routing_key") if isinstance(payload, dict) else None
    if not isinstance(key, str) or not key:
        raise PayloadError("routing_key is required: use the integration token.", {"routing_key": "missing"})
    return key


def fill_generated_dedup_keys(signals: list[Signal]) -> None:
    """Give each trigger sent without a dedup_key the one PagerDuty-style clients are answered with."""
    for signal in signals:
        if not signal.dedup_key and signal.status == SignalStatus.FIRING:
            signal.dedup_key = compute_fingerprint(signal).hash[:GENERATED_DEDUP_KEY_LENGTH]

"""Two weeks of past incidents for the demo, so the dashboard has trends and one postmortem is there to read.

Written by `manage.py seed_demo` (idempotent: each past incident has a fixed fingerprint and
is written once). They are marked with the `demo_history` label and the "Demo history"
timeline entry, so nobody takes them for real ones. The longest of them is resolved after
50 minutes and gets its postmortem drafted, as a resolution would queue it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from incidents.choices import ActivityKind, IncidentStatus
from incidents.models import Activity, Complaint, Event, Incident
from incidents.postmortems import draft_postmortem


@dataclass(frozen=True)
class PastIncident:
    key: str
    title: str
    service: str
    severity: str
    days_ago: float
    events: int
    acknowledge_minutes: int | None
    resolve_minutes: int | None  # None: still escalated
    resolved_by: str = "alice"
    exception_type: str = ""
    note: str = ""
    complaints: tuple[tuple[str, str, str], ...] = ()  # (customer id, name, message)


POSTMORTEM_KEY = "checkout-timeout"

PAST_INCIDENTS = [
    PastIncident(
        POSTMORTEM_KEY,
        "ReadTimeout: payment provider did not answer in 10 s",
        "checkout",
        "P1",
        3.2,
        64,
        4,
        50,
        exception_type="ReadTimeout",
        note="Root cause: the payment provider's EU endpoint was degraded; failed over to the US endpoint.",
        complaints=(
            ("cust-1042", "Acme Corp", "Our customers cannot pay, checkout spins forever."),
            ("cust-2177", "Globex", "Payment page times out since 10:05."),
            ("cust-1042", "Acme Corp", "Still failing for us, this is urgent."),
        ),
    ),
    PastIncident(
        "orders-5xx", "HTTP 5xx above 5% on /api/orders", "orders", "P2", 12.5, 18, 9, 35, "source:alertmanager"
    ),
    PastIncident("disk-full", "Disk almost full on db-2", "postgres", "P1", 9.1, 7, 3, 22),
    PastIncident("cache-miss", "Cache hit ratio below 60%", "shop", "P3", 6.4, 40, 25, 140, "source:grafana"),
    PastIncident("keyerror-sku", "KeyError: 'sku'", "shop", "P2", 4.8, 12, 12, 65, exception_type="KeyError"),
    PastIncident("queue-lag", "Celery queue lag over 5 minutes", "worker", "P2", 2.1, 9, 6, 28),
    PastIncident("tls-expiry", "TLS certificate expires in 7 days", "edge", "P3", 1.3, 2, None, None),
    PastIncident("login-errors", "Spike of 401 on /login", "auth", "P2", 0.4, 23, 2, 14, "source:alertmanager"),
]


def _fingerprint(key: str) -> str:
    return hashlib.sha256(f"quench-demo-history:{key}".encode()).hexdigest()


def _write(past: PastIncident, now: datetime) -> Incident:
    started = now - timedelta(days=past.days_ago)
    resolved = started + timedelta(minutes=past.resolve_minutes) if past.resolve_minutes is not None else None
    acknowledged = started + timedelta(minutes=past.acknowledge_minutes) if past.acknowledge_minutes else None
    last_event = started + timedelta(minutes=min(past.resolve_minutes or 30, 30))
    incident = Incident.objects.create(
        fingerprint=_fingerprint(past.key),
        fingerprint_version=1,
        fingerprint_strategy="demo history",
        title=past.title,
        kind="error" if past.exception_type else "alert",
        source="generic",
        service=past.service,
        environment="production",
        severity=past.severity,
        exception_type=past.exception_type,
        labels={"demo_history": "true"},
        status=IncidentStatus.RESOLVED if resolved else IncidentStatus.ESCALATED,
        event_count=past.events,
        first_seen=started,
        last_seen=last_event,
        acknowledged_at=acknowledged,
        resolved_at=resolved,
    )
    step = (last_event - started) / max(past.events, 1)
    Event.objects.bulk_create(
        Event(
            incident=incident,
            source="generic",
            outcome="opened" if index == 0 else "appended",
            status="firing",
            kind=incident.kind,
            title=past.title,
            service=past.service,
            environment="production",
            exception_type=past.exception_type,
            received_at=started + step * index,
        )
        for index in range(past.events)
    )
    entries = [
        (started, ActivityKind.OPENED, "quench", "", "Demo history: a past incident seeded for the dashboard"),
    ]
    if acknowledged:
        entries.append(
            (acknowledged, ActivityKind.STATUS, "alice", IncidentStatus.ACKNOWLEDGED, "Acknowledged by alice")
        )
    if past.note:
        entries.append((started + timedelta(minutes=20), ActivityKind.NOTE, "alice", "", past.note))
    if resolved:
        actor = past.resolved_by
        if actor.startswith("source:"):
            message = f"Resolved by {actor.removeprefix('source:')}"
        else:
            message = (
                "Failover confirmed, payments succeed again" if past.key == POSTMORTEM_KEY else f"Resolved by {actor}"
            )
        entries.append((resolved, ActivityKind.STATUS, actor, IncidentStatus.RESOLVED, message))
    else:
        entries.append((started + timedelta(minutes=10), ActivityKind.STATUS, "quench", IncidentStatus.ESCALATED,
                        "No fix found; a human must look"))  # fmt: skip
    Activity.objects.bulk_create(
        Activity(incident=incident, created_at=at, kind=kind, actor=actor, to_status=to_status, message=message)
        for at, kind, actor, to_status, message in entries
    )
    Complaint.objects.bulk_create(
        Complaint(
            incident=incident,
            customer_id=customer_id,
            customer_name=name,
            channel="support",
            service=past.service,
            message=message,
            reported_at=started + timedelta(minutes=5 + index),
            correlation="demo history",
        )
        for index, (customer_id, name, message) in enumerate(past.complaints)
    )
    return incident


def seed_history(now: datetime | None = None) -> int:
    """Write the past incidents that are not there yet and draft the long one's postmortem; how many were written."""
    now = now or timezone.now()
    written = 0
    for past in PAST_INCIDENTS:
        if Incident.objects.filter(fingerprint=_fingerprint(past.key)).exists():
            continue
        with transaction.atomic():
            incident = _write(past, now)
        written += 1
        if past.key == POSTMORTEM_KEY:
            draft_postmortem(incident.pk, actor="seed_demo")
    return written

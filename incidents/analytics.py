"""The team's trends: the figures behind the admin dashboard, `/api/v1/stats` and the daily summary.

One function, `figures(days)`, computes everything for a window that ends now; the dashboard,
the API and `summary()` all read it, so they can never disagree. Definitions:

- The window's incidents are those **first seen** in it (a cohort): counts by day and
  severity, MTTA, MTTR, endings and fix attempts are all about that cohort.
- MTTA: mean time from first seen to the first response (`first_responses`: an
  acknowledgement, or the first thing a person did on the timeline), over the cohort's
  incidents that had one.
- MTTR: mean of resolved_at − first_seen over the cohort's resolved incidents.
- Endings: how each incident ended — `code_fix`, `playbook` (a Quench remediation that
  held), `human` (resolved by a person without one), `source` (the monitoring source
  reported it resolved), `expired` (escalated because its proposal expired), `escalated`,
  or `open` (not ended yet).
- Approvals: proposals created in the window, by status. Noisiest fingerprints and
  services: events received in the window.

`incidents` does not know remediation's records, so the apps above add what they know
through two registries filled in their `AppConfig.ready()`: ending classifiers
(`fn(incident_ids) -> {incident_id: ending}`, overriding the incident row's verdict) and
figures providers (`fn(incident_ids, start, end) -> dict`, merged into the figures).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q
from django.utils import timezone

from incidents.choices import IncidentStatus, Severity
from incidents.models import Activity, Event, Incident

logger = logging.getLogger(__name__)

MAX_DAYS = 365
NOISIEST = 10
ENDINGS = ("code_fix", "playbook", "human", "source", "expired", "escalated", "open")

EndingClassifier = Callable[[list[int]], dict[int, str]]
FiguresProvider = Callable[[list[int], datetime, datetime], dict]

_ending_classifiers: dict[str, EndingClassifier] = {}
_figures_providers: dict[str, FiguresProvider] = {}


def register_ending_classifier(name: str, classifier: EndingClassifier) -> None:
    """Add (or replace) a classifier of how incidents ended; later registrations win on conflicts."""
    _ending_classifiers[name] = classifier


def register_figures(name: str, provider: FiguresProvider) -> None:
    """Add (or replace) a provider of extra figures (e.g. approvals, fix attempts)."""
    _figures_providers[name] = provider


def duration_text(seconds: float | None) -> str:
    """'1h 5m', '3d 2h 0m', '45s' for a number of seconds; '—' for None."""
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours or days else "", f"{minutes}m"]
    return " ".join(part for part in parts if part)


# Actors that are Quench or a monitoring source, not a person responding.
MACHINE_ACTORS = frozenset({"quench", "policy", "playbook"})


def first_responses(incident_ids: list[int]) -> dict[int, datetime]:
    """When someone first responded to each incident: an acknowledgement, or the first timeline
    entry a person made (a note, an approval decision, a resolve), whichever came first.

    Quench mostly moves incidents on by itself, so few are ever formally acknowledged; the first
    thing a person did is the honest "acknowledged" moment.
    """
    acknowledged = dict(
        Incident.objects.filter(pk__in=incident_ids, acknowledged_at__isnull=False).values_list("pk", "acknowledged_at")
    )
    by_person = (
        Activity.objects.filter(incident_id__in=incident_ids)
        .exclude(Q(actor__in=MACHINE_ACTORS) | Q(actor__startswith="source:"))
        .values("incident_id")
        .annotate(first=Min("created_at"))
        .values_list("incident_id", "first")
    )
    responses = dict(acknowledged)
    for incident_id, first in by_person:
        responses[incident_id] = min(first, responses.get(incident_id, first))
    return responses


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def _day(moment: datetime) -> str:
    return timezone.localtime(moment).date().isoformat()


def incident_endings(incident_ids: list[int]) -> dict[int, str]:
    """How each incident ended (see the module docstring), with the registered classifiers' say."""
    statuses = dict(Incident.objects.filter(pk__in=incident_ids).values_list("pk", "status"))
    resolved_by = dict(
        Activity.objects.filter(incident_id__in=incident_ids, to_status=IncidentStatus.RESOLVED)
        .order_by("incident_id", "-created_at", "-id")
        .distinct("incident_id")
        .values_list("incident_id", "actor")
    )
    endings: dict[int, str] = {}
    for incident_id, status in statuses.items():
        if status == IncidentStatus.RESOLVED:
            endings[incident_id] = "source" if resolved_by.get(incident_id, "").startswith("source:") else "human"
        elif status == IncidentStatus.ESCALATED:
            endings[incident_id] = "escalated"
        else:
            endings[incident_id] = "open"
    for name, classifier in _ending_classifiers.items():
        try:
            endings.update({key: value for key, value in classifier(incident_ids).items() if key in endings})
        except Exception:
            logger.exception("ending classifier failed", extra={"classifier": name})
    return endings


def figures(days: int = 30, *, now: datetime | None = None) -> dict:
    """Every dashboard figure for the `days` days up to `now` (see the module docstring)."""
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be a whole number from 1 to {MAX_DAYS}.")
    end = now or timezone.now()
    start = end - timedelta(days=days)
    cohort = list(
        Incident.objects.filter(first_seen__gte=start, first_seen__lt=end)
        .order_by("first_seen", "id")
        .values("id", "first_seen", "severity", "resolved_at", "status")
    )
    ids = [row["id"] for row in cohort]

    day_names = [_day(start + timedelta(days=offset)) for offset in range(days + 1)]
    day_names = list(dict.fromkeys(day_names))  # the window spans days+1 calendar days at most
    by_day = {name: {severity: 0 for severity in Severity.values} for name in day_names}
    responses = first_responses(ids)
    acknowledge_by_day: dict[str, list[float]] = defaultdict(list)
    resolve_by_day: dict[str, list[float]] = defaultdict(list)
    acknowledge, resolve = [], []
    for row in cohort:
        day = _day(row["first_seen"])
        by_day.setdefault(day, {severity: 0 for severity in Severity.values})[row["severity"]] += 1
        if row["id"] in responses:
            seconds = max(0.0, (responses[row["id"]] - row["first_seen"]).total_seconds())
            acknowledge.append(seconds)
            acknowledge_by_day[day].append(seconds)
        if row["status"] == IncidentStatus.RESOLVED and row["resolved_at"]:
            seconds = (row["resolved_at"] - row["first_seen"]).total_seconds()
            resolve.append(seconds)
            resolve_by_day[day].append(seconds)
    severities = Counter(row["severity"] for row in cohort)
    endings = Counter(incident_endings(ids).values())

    events = Event.objects.filter(received_at__gte=start, received_at__lt=end)
    noisy = list(
        events.values("incident_id").annotate(events=Count("id")).order_by("-events", "incident_id")[:NOISIEST]
    )
    noisy_incidents = Incident.objects.in_bulk([row["incident_id"] for row in noisy])
    services = list(
        events.values("incident__service")
        .annotate(events=Count("id"), incidents=Count("incident_id", distinct=True))
        .order_by("-events", "incident__service")[:NOISIEST]
    )

    result = {
        "days": days,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "incidents": {
            "total": len(cohort),
            "by_severity": {severity: severities.get(severity, 0) for severity in Severity.values},
            "by_day": [
                {"date": day, **counts, "total": sum(counts.values())} for day, counts in sorted(by_day.items())
            ],
        },
        "acknowledged": len(acknowledge),
        "resolved": len(resolve),
        "mtta_seconds": _mean(acknowledge),
        "mttr_seconds": _mean(resolve),
        "trend": [
            {
                "date": day,
                "mtta_seconds": _mean(acknowledge_by_day.get(day, [])),
                "mttr_seconds": _mean(resolve_by_day.get(day, [])),
            }
            for day in sorted(by_day)
        ],
        "endings": {ending: endings.get(ending, 0) for ending in ENDINGS},
        "noisiest_fingerprints": [
            {
                "incident_id": row["incident_id"],
                "fingerprint": noisy_incidents[row["incident_id"]].fingerprint,
                "title": noisy_incidents[row["incident_id"]].title,
                "service": noisy_incidents[row["incident_id"]].service,
                "events": row["events"],
            }
            for row in noisy
            if row["incident_id"] in noisy_incidents
        ],
        "noisiest_services": [
            {"service": row["incident__service"], "events": row["events"], "incidents": row["incidents"]}
            for row in services
        ],
    }
    for name, provider in _figures_providers.items():
        try:
            result.update(provider(ids, start, end))
        except Exception:
            logger.exception("analytics figures provider failed", extra={"provider": name})
    return result


def summary(days: int = 1, *, now: datetime | None = None) -> dict:
    """The figures of the last `days` days in short, with a one-paragraph `text` for a channel message.

    Pure: it reads the database and returns data; sending it is the notifications app's job.
    """
    data = figures(days, now=now)
    incidents = data["incidents"]
    severity = ", ".join(f"{count} {name}" for name, count in incidents["by_severity"].items() if count)
    parts = [
        f"Last {days} day(s): {incidents['total']} new incident(s)" + (f" ({severity})" if severity else "") + ".",
        f"Resolved {data['resolved']}; MTTA {duration_text(data['mtta_seconds'])}, "
        f"MTTR {duration_text(data['mttr_seconds'])}.",
    ]
    endings = ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in data["endings"].items() if count)
    if endings:
        parts.append(f"Endings: {endings}.")
    if data["noisiest_fingerprints"]:
        top = data["noisiest_fingerprints"][0]
        parts.append(f"Noisiest: #{top['incident_id']} {top['title']} ({top['events']} events).")
    return {
        "days": days,
        "from": data["from"],
        "to": data["to"],
        "incidents": incidents["total"],
        "by_severity": incidents["by_severity"],
        "resolved": data["resolved"],
        "mtta_seconds": data["mtta_seconds"],
        "mttr_seconds": data["mttr_seconds"],
        "endings": data["endings"],
        "noisiest_fingerprints": data["noisiest_fingerprints"][:3],
        "text": " ".join(parts),
    }

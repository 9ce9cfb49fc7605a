"""Customer complaints: store them, link each to the incident it is about, and let them raise priority.

A complaint is correlated with the open incident that best matches it:

- **service**: the complaint's own, else its integration's `default_service`. When one is
  known, only incidents of that service (case-insensitive) are candidates.
- **time**: the incident was active between `CORRELATION_BEFORE` before and
  `CORRELATION_AFTER` after the complaint's `reported_at` (customers notice after the
  problem starts, and now and then before the monitoring does).
- **words**: the complaint message and the incident's title, message, exception type,
  culprit, route and alert name share words (lower-cased, camelCase split, stop words
  dropped, a light suffix stemming so that "payments" meets "payment").

Each candidate gets a score (service + closeness in time + shared words) and the best
one wins. With no service to go on, at least one shared word is required: time alone
is no evidence. No candidate, no link: the complaint is stored unlinked.

A linked complaint can raise the incident's priority, never lower it, and only when
something changes (so that an engineer who lowers it again is not overruled by the
next complaint of the same kind):

- the first complaint of an incident: at least `FIRST_COMPLAINT_SEVERITY` (customers
  see it, so it is no longer informational);
- the first complaint mentioning a kind of impact: at least `IMPACT_SEVERITY[kind]`
  (payment and outage words, see `IMPACT_PATTERNS`);
- the number of distinct customers reaching a threshold of `CUSTOMER_THRESHOLDS`.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from incidents.choices import SEVERITY_RANK, ActivityKind, IncidentStatus, Severity
from incidents.models import Complaint, Incident, Integration
from incidents.redaction import redact_text
from incidents.services.lifecycle import change_severity, record_activity

logger = logging.getLogger(__name__)

# Most complaints one request may carry (the API answers 400 above it).
MAX_COMPLAINTS_PER_REQUEST = 500
# Longest message accepted; a pasted email thread fits, a log dump does not.
MAX_MESSAGE_CHARS = 10_000

# The correlation window around reported_at: an incident must have been active in it.
CORRELATION_BEFORE = timedelta(hours=2)
CORRELATION_AFTER = timedelta(minutes=30)
# Score weights: a named service counts most, then words, then closeness in time.
SERVICE_WEIGHT = 4.0
WORD_WEIGHT = 1.5
MAX_WORDS_SCORED = 5
TIME_WEIGHT = 2.0
# Open incidents active in the window, most recent first, considered per complaint.
MAX_CANDIDATES = 100

# Priority rules (a complaint only ever raises priority).
FIRST_COMPLAINT_SEVERITY = Severity.P2
IMPACT_SEVERITY = {"payment": Severity.P1, "outage": Severity.P1}
# (distinct customers, at least this severity), checked from the highest threshold down.
CUSTOMER_THRESHOLDS = ((20, Severity.P0), (5, Severity.P1))

ACTOR = "quench"
# Per complaint in the diagnosis prompt: enough to quote the customer, not a whole email.
CONTEXT_MESSAGE_CHARS = 1_000
TIMELINE_EXCERPT_CHARS = 200

# Impact kinds and the phrases that reveal them, matched on the lower-cased message
# with curly apostrophes straightened. Phrases rather than single words where a word
# alone misleads ("scroll down", "drop-down" are no outage).
_NOT = r"(?:can ?not|can'?t|could ?not|couldn'?t|unable to|won'?t let me|not able to)"
IMPACT_PATTERNS: dict[str, re.Pattern] = {
    "payment": re.compile(
        r"\b(?:pay(?:ment|ments|ing)?|paid|charg(?:e|ed|es|ing)|(?:credit |debit )?cards?|checkouts?"
        r"|refund(?:s|ed)?|billing|billed|invoices?|subscriptions?|purchases?|transactions?)\b"
    ),
    "outage": re.compile(
        r"\boutages?\b|\bdowntime\b|\bunavailable\b|\bunreachable\b"
        r"|\b(?:is|are|was|were|went|goes|been|seems?|looks?|still|completely|totally|all) down\b"
        r"|(?<![-\w])down (?:again|for (?:me|us|everyone|hours|days)|since|right now)\b"
        rf"|\b{_NOT} (?:log ?-?in|login|sign ?-?in|signin|log on|access|connect|reach|open|load)\b"
        r"|\b(?:not|isn'?t|aren'?t|won'?t|doesn'?t|don'?t|never) (?:load(?:ing|s)?|open(?:ing|s)?)\b"
        r"|\b(?:error|blank|white) (?:page|screen)\b"
        r"|\b(?:error|http|status|code) ?50[0234]\b|\b50[0234] (?:error|internal|server|bad|service|gateway)\b"
        r"|\binternal server error\b|\bbad gateway\b|\bgateway time-?out\b"
    ),
}

# Words that say nothing about which incident a complaint is about.
_STOP_WORDS_TEXT = """
    a about above after again against all also am an and any are aren as at be because been before being below
    between both but by can cannot could couldn did didn do does doesn doing don down during each even ever every
    few for from further get gets getting got had hadn has hasn have haven having he her here hers herself him
    himself his how i if in into is isn it its itself just keep keeps kept know let like ll made make many may me
    might more most much must my myself need needs never no nor not now of off on once only or other our ours
    ourselves out over own please re really same see seems shan she should shouldn since so some still such
    than that the their theirs them themselves then there these they this those through to too try tried trying
    under until up us use used using ve very via was wasn we were weren what when where which while who whom why
    will with won would wouldn yet you your yours yourself yourselves
    hi hello hey dear thanks thank regards cheers sorry help urgent asap today yesterday tomorrow morning evening
    minute minutes hour hours day days time times customer customers support team anyone someone something
    anything everything nothing thing things work works worked working broken issue issues problem problems
    error errors exception wrong happen happens happened happening able unable site website app page
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
# Tokenizing is linear, but there is no point reading a megabyte for a handful of words.
_TOKENIZE_CHARS = 5_000


@dataclass(frozen=True)
class ComplaintResult:
    """What happened to one complaint of a delivery."""

    complaint_id: int
    incident_id: int | None
    correlation: str
    duplicate: bool
    keywords: list[str] = field(default_factory=list)


def record_complaints(items: Iterable[Mapping], *, integration: Integration | None) -> list[ComplaintResult]:
    """Store complaints (validated mappings, see the API serializer), link and escalate; one result per item.

    Each complaint is its own transaction: stored, linked and escalated together, and a
    long delivery never holds incident locks for longer than one complaint takes.
    """
    return [_record_one(item, integration) for item in items]


def _record_one(item: Mapping, integration: Integration | None) -> ComplaintResult:
    message = redact_text(item["message"])
    complaint = Complaint(
        customer_id=item["customer_id"],
        customer_name=item.get("customer_name") or "",
        channel=item.get("channel") or "",
        service=item.get("service") or (integration.default_service if integration else ""),
        message=message,
        source_id=item.get("id") or "",
        reported_at=item.get("reported_at") or timezone.now(),
        keywords=sorted(impact_keywords(message)),
        integration=integration,
    )
    with transaction.atomic():
        try:
            with transaction.atomic():
                complaint.save()
        except IntegrityError as exc:
            # A retried delivery: the constraint (not a look-up first) decides, so two
            # copies arriving at once still store one complaint.
            if "one_complaint_per_source_id" not in str(exc):
                raise
            stored = Complaint.objects.get(integration=integration, source_id=complaint.source_id)
            return ComplaintResult(stored.pk, stored.incident_id, stored.correlation, True, stored.keywords)
        incident, reason = correlate(complaint)
        if incident is not None and not _link(complaint, incident, reason):
            incident, reason = None, ""
    logger.info(
        "complaint stored",
        extra={"complaint_id": complaint.pk, "incident_id": complaint.incident_id, "correlation": reason},
    )
    return ComplaintResult(complaint.pk, complaint.incident_id, complaint.correlation, False, complaint.keywords)


def correlate(complaint: Complaint) -> tuple[Incident | None, str]:
    """The open incident this complaint is most likely about, and why; (None, "") when none fits."""
    reported_at = complaint.reported_at
    service = complaint.service
    if not service and complaint.integration_id:
        service = complaint.integration.default_service
    candidates = Incident.objects.exclude(status=IncidentStatus.RESOLVED).filter(
        first_seen__lte=reported_at + CORRELATION_AFTER, last_seen__gte=reported_at - CORRELATION_BEFORE
    )
    if service:
        candidates = candidates.filter(service__iexact=service)
    candidates = candidates.only(
        "pk",
        "service",
        "title",
        "message",
        "exception_type",
        "culprit",
        "route",
        "alertname",
        "first_seen",
        "last_seen",
        "status",
    ).order_by("-last_seen", "-pk")[:MAX_CANDIDATES]

    complaint_words = words(complaint.message)
    best: tuple[float, datetime, int] | None = None
    best_match: tuple[Incident, list[str]] | None = None
    for incident in candidates:
        shared = complaint_words.keys() & _stems(_incident_text(incident))
        if not service and not shared:
            continue
        gap = _gap(incident, reported_at)
        side = CORRELATION_BEFORE if incident.last_seen < reported_at else CORRELATION_AFTER
        score = (
            (SERVICE_WEIGHT if service else 0.0)
            + WORD_WEIGHT * min(len(shared), MAX_WORDS_SCORED)
            + TIME_WEIGHT * max(0.0, 1 - gap / side)
        )
        key = (score, incident.last_seen, incident.pk)
        if best is None or key > best:
            best = key
            best_match = (incident, sorted(complaint_words[stem] for stem in shared))
    if best_match is None:
        return None, ""
    incident, shared_words = best_match
    parts = [f"service {incident.service}"] if service else []
    parts.append(_when(incident, reported_at))
    if shared_words:
        parts.append("words: " + ", ".join(shared_words[:8]))
    return incident, ", ".join(parts)[:300]


def _link(complaint: Complaint, incident: Incident, reason: str) -> bool:
    """Attach the complaint to the incident under its row lock, note it, and raise priority if due."""
    # The lock serializes complaints of one incident, so the "first complaint" and
    # distinct-customer counts below cannot be read by two requests at once.
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    if not incident.is_open:
        return False  # resolved between correlation and lock
    # One query for what came before: distinct customers, this customer's complaints,
    # and complaints of each impact kind this one mentions.
    earlier = Complaint.objects.filter(incident=incident).aggregate(
        customers=Count("customer_id", distinct=True),
        same_customer=Count("pk", filter=Q(customer_id=complaint.customer_id)),
        **{f"kind_{kind}": Count("pk", filter=Q(keywords__contains=[kind])) for kind in complaint.keywords},
    )
    customers_before = earlier["customers"]
    customers_after = customers_before + (0 if earlier["same_customer"] else 1)
    first_of_kind = [kind for kind in complaint.keywords if not earlier[f"kind_{kind}"]]

    complaint.incident = incident
    complaint.correlation = reason
    complaint.save(update_fields=["incident", "correlation"])
    who = complaint.customer_id
    if complaint.customer_name:
        who = f"{complaint.customer_name} ({complaint.customer_id})"
    via = f" via {complaint.channel}" if complaint.channel else ""
    excerpt = complaint.message[:TIMELINE_EXCERPT_CHARS] + (
        "…" if len(complaint.message) > TIMELINE_EXCERPT_CHARS else ""
    )
    record_activity(
        incident,
        ActivityKind.NOTE,
        f"Customer complaint from {who}{via}: {excerpt}",
        data={
            "complaint_id": complaint.pk,
            "customer_id": complaint.customer_id,
            "reported_at": complaint.reported_at.isoformat(),
            "correlation": reason,
            "keywords": complaint.keywords,
            "distinct_customers": customers_after,
        },
    )

    target, why = _severity_due(
        complaint,
        first_complaint=customers_before == 0,
        first_of_kind=first_of_kind,
        customers_before=customers_before,
        customers_after=customers_after,
    )
    if target and SEVERITY_RANK[target] < SEVERITY_RANK[incident.severity]:
        change_severity(incident.pk, target, actor=ACTOR, reason=why)
    return True


def _severity_due(
    complaint: Complaint,
    *,
    first_complaint: bool,
    first_of_kind: list[str],
    customers_before: int,
    customers_after: int,
) -> tuple[str | None, str]:
    """The highest priority this complaint calls for, and the reasons that call for exactly that."""
    demands: list[tuple[str, str]] = []
    if first_complaint:
        demands.append((FIRST_COMPLAINT_SEVERITY, f"first customer complaint ({complaint.customer_id})"))
    terms = impact_keywords(complaint.message)
    for kind in first_of_kind:
        if kind in IMPACT_SEVERITY:
            demands.append((IMPACT_SEVERITY[kind], f'customer complaint mentions {kind} ("{terms.get(kind, kind)}")'))
    for threshold, severity in CUSTOMER_THRESHOLDS:
        if customers_before < threshold <= customers_after:
            demands.append((severity, f"{customers_after} distinct customers complained"))
            break
    if not demands:
        return None, ""
    target = min((severity for severity, _ in demands), key=SEVERITY_RANK.__getitem__)
    return target, "; ".join(reason for severity, reason in demands if severity == target)


def impact_keywords(text: str) -> dict[str, str]:
    """Impact kinds the text mentions (see IMPACT_PATTERNS), each with the first phrase that revealed it."""
    normalized = (text or "")[:_TOKENIZE_CHARS].lower().replace("\u2019", "'").replace("\u2018", "'")
    normalized = re.sub(r"\s+", " ", normalized)
    found = {}
    for kind, pattern in IMPACT_PATTERNS.items():
        match = pattern.search(normalized)
        if match:
            found[kind] = match.group(0)
    return found


def words(text: str) -> dict[str, str]:
    """Meaningful words of a text: stem → the first spelling seen (stop words and short words dropped)."""
    found: dict[str, str] = {}
    for raw in _WORD.findall((text or "")[:_TOKENIZE_CHARS]):
        word = raw.lower()
        if len(word) < 3 or word in STOP_WORDS or (word.isdigit() and len(word) > 6):
            continue
        found.setdefault(_stem(word), word)
    return found


# A delivery of 500 complaints scores the same few open incidents over and over.
@functools.lru_cache(maxsize=1024)
def _stems(text: str) -> frozenset[str]:
    return frozenset(words(text))


def _stem(word: str) -> str:
    """A deliberately crude stemmer: enough for "payments"/"payment" and "charged"/"charge" to meet."""
    if word.isdigit():
        return word
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and not word.endswith("ss") and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


def _incident_text(incident: Incident) -> str:
    # Dotted culprits, routes and CamelCase names split into words in `words` itself.
    parts = (incident.title, incident.message[:2000], incident.exception_type, incident.culprit, incident.route)
    return " ".join((*parts, incident.alertname))


def _gap(incident: Incident, reported_at: datetime) -> timedelta:
    """How far the incident's active span is from the complaint (zero when it spans it)."""
    if incident.last_seen < reported_at:
        return reported_at - incident.last_seen
    if incident.first_seen > reported_at:
        return incident.first_seen - reported_at
    return timedelta(0)


def _when(incident: Incident, reported_at: datetime) -> str:
    minutes = round(_gap(incident, reported_at).total_seconds() / 60)
    if minutes == 0:
        return "active at the time"
    if incident.last_seen < reported_at:
        return f"active {minutes} min before"
    return f"started {minutes} min after"


def affected_customers(incident: Incident | int) -> list[dict]:
    """Distinct customers who complained about an incident, latest first.

    Each: `customer_id`, `customer_name` (one of the names they gave), `complaints`
    (how many) and `latest_reported_at`.
    """
    incident_id = getattr(incident, "pk", incident)
    rows = (
        Complaint.objects.filter(incident_id=incident_id)
        .values("customer_id")
        .annotate(name=Max("customer_name"), complaints=Count("id"), latest_reported_at=Max("reported_at"))
        .order_by("-latest_reported_at", "customer_id")
    )
    return [
        {
            "customer_id": row["customer_id"],
            "customer_name": row["name"] or "",
            "complaints": row["complaints"],
            "latest_reported_at": row["latest_reported_at"],
        }
        for row in rows
    ]


def complaint_context(incident: Incident | int, limit: int = 20) -> list[dict]:
    """The latest complaints of an incident for the diagnosis prompt: customer_id, message, reported_at (ISO 8601)."""
    incident_id = getattr(incident, "pk", incident)
    rows = (
        Complaint.objects.filter(incident_id=incident_id)
        .order_by("-reported_at", "-id")
        .values("customer_id", "message", "reported_at")[:limit]
    )
    return [
        {
            "customer_id": row["customer_id"],
            "message": row["message"][:CONTEXT_MESSAGE_CHARS],
            "reported_at": row["reported_at"].isoformat(),
        }
        for row in rows
    ]

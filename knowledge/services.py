"""The knowledge writer, signature embedding and dead-letter replay: the knowledge app's business rules.

Every path that adds knowledge (runbook import, incident resolved, approval decided,
postmortem published, playbook learned, a manual note) calls `write_knowledge`. It
loses nothing and doubles nothing:

- an idempotent upsert on (incident, path_type), or on `source_path` for imported
  runbooks, backed by unique constraints, so a redelivered task updates the same row;
- transient database errors are retried with exponential backoff;
- after the last retry the call's arguments go to a `DeadLetter`, which the scheduled
  reconciler (`knowledge.tasks.reconcile_dead_letters`) replays until it succeeds.

Call it outside a transaction (tasks and commands do): a failed statement inside a
caller's transaction cannot be retried on the same connection once the server dropped it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from incidents.choices import ActivityKind, IncidentStatus, PostmortemStatus
from incidents.fingerprinting import VOLATILE_LABELS, normalize_message
from incidents.models import Event, Incident, Postmortem
from incidents.watchdog import OK as WATCHDOG_OK
from incidents.watchdog import Finding
from knowledge.embeddings import get_provider
from knowledge.models import DeadLetter, IncidentSignature, KnowledgeEntry, KnowledgeKind, KnowledgePath

logger = logging.getLogger(__name__)

KNOWLEDGE_WRITE = "knowledge_write"
# Errors worth retrying: the server went away, a lock or statement timed out, a
# serialization failure. Anything else (a bad argument, a constraint) fails the same way
# every time, so it is raised at once.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)
WRITE_ATTEMPTS = 4
# First backoff delay in seconds, doubled after every failed attempt (0.5, 1, 2 by default).
# The settings override exists for tests, which set it to 0.
DEFAULT_RETRY_BASE_DELAY = 0.5


def _retry_base_delay() -> float:
    return float(getattr(settings, "QUENCH_KNOWLEDGE_RETRY_BASE_DELAY", DEFAULT_RETRY_BASE_DELAY))


def entry_embedding_text(*, title: str, body: str, tags: Iterable[str] = (), services: Iterable[str] = ()) -> str:
    """What a knowledge entry's vector is computed from (the writer and `reembed` must agree)."""
    return "\n".join(part for part in (title, " ".join(tags), " ".join(services), body) if part)


def _embed_fields(text: str) -> dict:
    provider = get_provider()
    return {
        "embedding": provider.embed_one(text),
        "embedding_provider": provider.name,
        "embedding_dimension": provider.dimension,
    }


def _upsert_entry(*, lookup: dict | None, values: dict, approval_id: int | None) -> KnowledgeEntry:
    """The writer's one database write: upsert the entry and back-fill approval ids, atomically.

    This is the seam the retry tests inject transient failures into.
    """
    with transaction.atomic():
        if lookup is None:
            entry = KnowledgeEntry.objects.create(**values, approval_id=approval_id)
        else:
            incident_id = lookup.get("incident_id")
            if approval_id is None and incident_id is not None:
                # An entry written after the approval was decided inherits its id.
                approval_id = (
                    KnowledgeEntry.objects.filter(
                        incident_id=incident_id, path_type=KnowledgePath.APPROVAL_DECIDED, approval_id__isnull=False
                    )
                    .values_list("approval_id", flat=True)
                    .first()
                )
            defaults = dict(values)
            if approval_id is not None:
                # Never clear an approval id that a back-fill already set.
                defaults["approval_id"] = approval_id
            # update_or_create locks an existing row (select_for_update) and, when two
            # deliveries race to create it, the unique constraint makes the loser update
            # the winner's row instead of adding a second one.
            entry, _ = KnowledgeEntry.objects.update_or_create(**lookup, defaults=defaults)
        if entry.path_type == KnowledgePath.APPROVAL_DECIDED and entry.incident_id and entry.approval_id:
            # Back-fill: the incident summary (and anything else about this incident)
            # written before the decision now points at the approval too.
            KnowledgeEntry.objects.filter(incident_id=entry.incident_id, approval_id__isnull=True).update(
                approval_id=entry.approval_id, updated_at=timezone.now()
            )
    return entry


def _prepare(arguments: dict) -> dict:
    """Turn write_knowledge's arguments into `_upsert_entry`'s, embedding the text (once, before any retry)."""
    tags = list(arguments.get("tags") or ())
    services = list(arguments.get("services") or ())
    title = arguments["title"][:300]
    body = arguments["body"]
    values = {
        "title": title,
        "body": body,
        "kind": arguments["kind"],
        "path_type": arguments["path_type"],
        "source_path": arguments.get("source_path") or "",
        "incident_id": arguments.get("incident_id"),
        "services": services,
        "tags": tags,
        **_embed_fields(entry_embedding_text(title=title, body=body, tags=tags, services=services)),
    }
    if values["source_path"]:
        lookup = {"source_path": values["source_path"]}
    elif values["incident_id"] is not None:
        lookup = {"incident_id": values["incident_id"], "path_type": values["path_type"]}
    else:
        lookup = None  # a free-standing note: nothing identifies a repeat of it
    return {"lookup": lookup, "values": values, "approval_id": arguments.get("approval_id")}


def _write_once(arguments: dict) -> KnowledgeEntry:
    """One attempt at the write described by `arguments` (write_knowledge's keywords)."""
    return _upsert_entry(**_prepare(arguments))


def _recover_connection() -> None:
    # Outside a transaction, drop a connection the error left unusable so that the
    # next attempt reconnects; inside one, the savepoint rollback already recovered.
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()


def write_knowledge(
    *,
    path_type: str,
    title: str,
    body: str,
    kind: str,
    incident_id: int | None = None,
    approval_id: int | None = None,
    services: Sequence[str] = (),
    tags: Sequence[str] = (),
    source_path: str = "",
) -> KnowledgeEntry | None:
    """Upsert one knowledge entry, embedded with the current provider; never lose it.

    Idempotent on (incident, path_type) when `incident_id` is given, on `source_path` for
    imports; an approval decision back-fills its `approval_id` onto the incident's other
    entries. Transient database errors are retried `WRITE_ATTEMPTS` times with
    exponential backoff; then the arguments are stored as a `DeadLetter` for the
    reconciler and None is returned.
    """
    arguments = {
        "path_type": path_type,
        "title": title,
        "body": body,
        "kind": kind,
        "incident_id": incident_id,
        "approval_id": approval_id,
        "services": list(services),
        "tags": list(tags),
        "source_path": source_path,
    }
    prepared = _prepare(arguments)
    delay = _retry_base_delay()
    error: Exception | None = None
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            return _upsert_entry(**prepared)
        except TRANSIENT_ERRORS as exc:
            error = exc
            logger.warning(
                "knowledge write failed, will retry" if attempt < WRITE_ATTEMPTS else "knowledge write failed",
                extra={"incident_id": incident_id, "path_type": path_type, "attempt": attempt, "error": str(exc)},
            )
            _recover_connection()
            if attempt < WRITE_ATTEMPTS and delay > 0:
                time.sleep(delay * 2 ** (attempt - 1))
    record_dead_letter(KNOWLEDGE_WRITE, arguments, reason=_reason(error), attempts=WRITE_ATTEMPTS)
    return None


def _reason(error: Exception | None) -> str:
    return f"{type(error).__name__}: {error}" if error else "unknown error"


def record_dead_letter(operation: str, payload: dict, *, reason: str, attempts: int) -> DeadLetter:
    """Keep a write that failed every retry, for the reconciler to replay.

    If even this insert fails the database is down: the payload goes to the error log
    (the last place it can be recovered from) and the error is raised to the caller.
    """
    try:
        return DeadLetter.objects.create(
            operation=operation, payload=payload, reason=reason, attempts=attempts, last_attempt_at=timezone.now()
        )
    except Exception:
        logger.exception("could not record dead letter", extra={"operation": operation, "payload": payload})
        raise


# Dead-letter operation → function that replays its payload once (raising on failure).
REPLAYERS = {KNOWLEDGE_WRITE: _write_once}


def replay_dead_letter(dead_letter_id: int) -> bool | None:
    """Try one unresolved dead letter again: True when it succeeded, False when it failed again.

    None when there was nothing to do: already resolved, or being replayed right now by
    someone else (the scheduled reconciler and an admin's "retry now" can overlap).
    The replayed write and the resolution commit together, so a success is never
    replayed twice.
    """
    now = timezone.now()
    with transaction.atomic():
        letter = (
            DeadLetter.objects.select_for_update(skip_locked=True)
            .filter(pk=dead_letter_id, resolved_at__isnull=True)
            .first()
        )
        if letter is None:
            return None
        letter.attempts += 1
        letter.last_attempt_at = now
        replay = REPLAYERS.get(letter.operation)
        if replay is None:
            letter.reason = f"No replayer for operation {letter.operation!r}."
            letter.save(update_fields=["attempts", "last_attempt_at", "reason"])
            return False
        try:
            with transaction.atomic():
                replay(letter.payload)
        except Exception as exc:
            # Any error, not only transient ones: a dead letter that fails for a new
            # reason stays for a human to see in the admin, with that reason.
            letter.reason = _reason(exc)
            letter.save(update_fields=["attempts", "last_attempt_at", "reason"])
            logger.warning("dead letter replay failed", extra={"dead_letter_id": letter.pk, "error": letter.reason})
            return False
        letter.resolved_at = now
        letter.save(update_fields=["attempts", "last_attempt_at", "resolved_at"])
    logger.info("dead letter replayed", extra={"dead_letter_id": dead_letter_id})
    return True


def reconcile_dead_letters(*, limit: int = 200) -> dict[str, int]:
    """Replay the oldest unresolved dead letters once each; counts of what happened."""
    pending = list(
        DeadLetter.objects.filter(resolved_at__isnull=True).order_by("created_at").values_list("pk", flat=True)[:limit]
    )
    counts = {"resolved": 0, "failed": 0, "skipped": 0}
    for dead_letter_id in pending:
        try:
            outcome = replay_dead_letter(dead_letter_id)
        except TRANSIENT_ERRORS:
            # The database itself is failing; the next scheduled run tries again.
            _recover_connection()
            outcome = False
        counts[{True: "resolved", False: "failed", None: "skipped"}[outcome]] += 1
    return counts


# --- incident signatures ---------------------------------------------------------------------

SIGNATURE_FRAMES = 12


def signature_text(incident: Incident, event: Event | None) -> str:
    """The text that stands for an incident in similar-incident search.

    Title and exception type with the message, both normalized (ids and numbers replaced,
    so two occurrences read alike), in-app frames as module:function (innermost last), service,
    alert name and the stable labels (replica-specific ones such as pod or instance left
    out, as fingerprinting does).
    """
    exception_type = (event.exception_type if event else "") or incident.exception_type
    raw_message = ""
    if event:
        raw_message = event.exception_value or event.message
    message = normalize_message(raw_message or incident.message)
    frames = (event.frames if event else None) or []
    in_app = [frame for frame in frames if isinstance(frame, dict) and frame.get("in_app", True)]
    frame_names = [
        f"{frame.get('module') or frame.get('filename') or '?'}:{frame.get('function') or '?'}"
        for frame in in_app[-SIGNATURE_FRAMES:]
    ]
    if not frame_names and incident.culprit:
        frame_names = [incident.culprit]
    labels = {**(incident.labels or {}), **((event.labels if event else None) or {})}
    label_text = " ".join(
        f"{name}={value}" for name, value in sorted(labels.items()) if name not in VOLATILE_LABELS and value
    )
    lines = [
        normalize_message(incident.title),  # titles carry ids too ("... for order 81723")
        f"{exception_type}: {message}" if exception_type else message,
        " ".join(frame_names),
        " ".join(part for part in (incident.service, incident.alertname) if part),
        label_text,
    ]
    return "\n".join(line for line in lines if line and line.strip())


def embed_incident_signature(incident_id: int) -> IncidentSignature | None:
    """Build and store the embedded signature of an incident (None if it no longer exists).

    Idempotent: an unchanged text under the same provider is not embedded again.
    """
    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None:
        return None
    event = incident.events.order_by("-received_at").first()
    text = signature_text(incident, event)
    provider = get_provider()
    existing = IncidentSignature.objects.filter(incident_id=incident_id).first()
    if existing and existing.text == text and existing.embedding_provider == provider.name:
        return existing
    signature, _ = IncidentSignature.objects.update_or_create(
        incident_id=incident_id,
        defaults={"text": text, "embedding": provider.embed_one(text), "embedding_provider": provider.name},
    )
    return signature


# --- re-embedding ------------------------------------------------------------------------------


def reembed_entries(entries: Sequence[KnowledgeEntry]) -> int:
    """Recompute the vectors of these entries with the current provider, in one batch."""
    if not entries:
        return 0
    provider = get_provider()
    vectors = provider.embed(
        [
            entry_embedding_text(title=entry.title, body=entry.body, tags=entry.tags, services=entry.services)
            for entry in entries
        ]
    )
    for entry, vector in zip(entries, vectors, strict=True):
        entry.embedding = vector.tolist()
        entry.embedding_provider = provider.name
        entry.embedding_dimension = provider.dimension
    KnowledgeEntry.objects.bulk_update(entries, ["embedding", "embedding_provider", "embedding_dimension"])
    return len(entries)


def reembed_signatures(signatures: Sequence[IncidentSignature]) -> int:
    """Recompute the vectors of these incident signatures with the current provider, in one batch."""
    if not signatures:
        return 0
    provider = get_provider()
    vectors = provider.embed([signature.text for signature in signatures])
    for signature, vector in zip(signatures, vectors, strict=True):
        signature.embedding = vector.tolist()
        signature.embedding_provider = provider.name
    IncidentSignature.objects.bulk_update(signatures, ["embedding", "embedding_provider"])
    return len(signatures)


# --- incident summaries ------------------------------------------------------------------------


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z") if moment else "—"


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m"]
    return " ".join(part for part in parts if part)


def _fenced(text: str) -> str:
    # A message is data, not Markdown: fence it so that its characters cannot format the page.
    return "```text\n" + text.replace("```", "'''").strip() + "\n```"


def incident_summary_markdown(incident: Incident) -> str:
    """The incident-summary entry's body: what fired, the root cause and fix as far as known, links.

    Root cause and fix come from the timeline (engineers' notes and the resolution
    message) until diagnoses exist; the remediation app adds them in a later issue.
    """
    event = incident.events.order_by("-received_at").first()
    lines = [
        f"**Service:** {incident.service or '—'}"
        + (f" ({incident.environment})" if incident.environment else "")
        + f" · **Severity:** {incident.severity} · **Category:** {incident.category or '—'}"
        + f" · **Status:** {incident.get_status_display()}",
        "",
        "## What fired",
        "",
        f"- Source: {incident.source}" + (f"; alert `{incident.alertname}`" if incident.alertname else ""),
    ]
    if incident.exception_type:
        lines.append(f"- Exception: `{incident.exception_type}`")
    if incident.culprit:
        lines.append(f"- Culprit: `{incident.culprit}`")
    if incident.route:
        lines.append(f"- Route: `{incident.route}`")
    lines.append(f"- First seen {_when(incident.first_seen)}, last seen {_when(incident.last_seen)}")
    if incident.resolved_at:
        lines.append(
            f"- Resolved {_when(incident.resolved_at)}, "
            f"{_duration((incident.resolved_at - incident.first_seen).total_seconds())} after it started"
        )
    lines.append(f"- Events: {incident.event_count}; regressions: {incident.regression_count}")
    message = (event.exception_value or event.message) if event else incident.message
    if message:
        lines += ["", _fenced(message[:2000])]

    lines += ["", "## Root cause and fix", ""]
    # Engineers' notes, and the message of whoever (or whatever) resolved it.
    timeline = incident.timeline.filter(
        Q(kind__in=[ActivityKind.NOTE, ActivityKind.SOURCE_RESOLVED]) | Q(to_status=IncidentStatus.RESOLVED)
    ).order_by("created_at", "id")
    notes = [
        f"- {_when(activity.created_at)} {activity.actor}: {' '.join(activity.message.split())}"
        for activity in timeline
    ]
    lines += notes or ["_Nothing recorded on the timeline yet._"]

    admin_url = settings.SITE_URL + reverse("admin:incidents_incident_change", args=[incident.pk])
    lines += ["", "## Links", "", f"- [Incident #{incident.pk} in Quench]({admin_url})"]
    if event and event.url:
        lines.append(f"- [At the source]({event.url})")
    return "\n".join(lines) + "\n"


def write_incident_summary(incident_id: int) -> KnowledgeEntry | None:
    """Write (or refresh) the knowledge entry that summarizes an incident; idempotent.

    None when the incident no longer exists, or when the write went to a dead letter.
    """
    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None:
        return None
    tags = [tag for tag in (incident.category, incident.severity) if tag]
    if incident.regression_count:
        tags.append("regressed")
    return write_knowledge(
        path_type=KnowledgePath.INCIDENT_RESOLVED,
        kind=KnowledgeKind.INCIDENT_SUMMARY,
        title=f"Incident #{incident.pk}: {incident.title}"[:300],
        body=incident_summary_markdown(incident),
        incident_id=incident.pk,
        services=[incident.service] if incident.service else [],
        tags=tags,
    )


# --- the safety net ------------------------------------------------------------------------------

# Leave the normal on-commit tasks this long to do their work before the sweep steps in.
SWEEP_GRACE = timedelta(minutes=5)
SWEEP_BATCH = 100


def sweep_missing_knowledge(*, now=None, limit: int = SWEEP_BATCH) -> dict[str, int]:
    """Embed incidents that have no signature and summarize resolved incidents that have no summary.

    The on-commit tasks normally do both; this catches what they missed (an enqueue that
    failed, a task that ran out of attempts, incidents from before the knowledge app).
    Oldest first, `limit` of each per run.
    """
    cutoff = (now or timezone.now()) - SWEEP_GRACE
    unsigned = list(
        Incident.objects.filter(signature__isnull=True, created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    for incident_id in unsigned:
        embed_incident_signature(incident_id)
    unsummarized = list(
        Incident.objects.filter(status=IncidentStatus.RESOLVED, resolved_at__lt=cutoff)
        .exclude(knowledge_entries__path_type=KnowledgePath.INCIDENT_RESOLVED)
        .order_by("resolved_at")
        .values_list("pk", flat=True)[:limit]
    )
    summarized = sum(1 for incident_id in unsummarized if write_incident_summary(incident_id) is not None)
    return {"signatures": len(unsigned), "summaries": summarized}


# --- postmortems -------------------------------------------------------------------------------


def write_postmortem_knowledge(postmortem_id: int) -> KnowledgeEntry | None:
    """Upsert the knowledge entry of a published postmortem (its edited Markdown); idempotent.

    None when the postmortem is gone or no longer published, or when the write went to a dead letter.
    """
    postmortem = (
        Postmortem.objects.select_related("incident")
        .filter(pk=postmortem_id, status=PostmortemStatus.PUBLISHED)
        .first()
    )
    if postmortem is None:
        return None
    incident = postmortem.incident
    return write_knowledge(
        path_type=KnowledgePath.POSTMORTEM_PUBLISHED,
        kind=KnowledgeKind.POSTMORTEM,
        title=f"Postmortem: {postmortem.title}"[:300],
        body=postmortem.body,
        incident_id=incident.pk,
        services=[incident.service] if incident.service else [],
        tags=[tag for tag in ("postmortem", incident.category, incident.severity) if tag],
    )


# --- the watchdog's view of dead letters ------------------------------------------------------

DEAD_LETTERS_OLD_AFTER = timedelta(hours=1)


def check_dead_letters(now) -> Finding:
    """Knowledge writes piling up as dead letters: too many unresolved, or one unresolved for an hour."""
    threshold = int(getattr(settings, "QUENCH_WATCHDOG_DEAD_LETTERS", 10))
    unresolved = DeadLetter.objects.filter(resolved_at__isnull=True)
    count = unresolved.count()
    if not count:
        return WATCHDOG_OK
    oldest = unresolved.order_by("created_at").values_list("created_at", "reason").first()
    old = now - oldest[0] > DEAD_LETTERS_OLD_AFTER
    if count < threshold and not old:
        return WATCHDOG_OK
    return Finding(
        True,
        f"{count} knowledge write(s) in dead letters, the oldest since {oldest[0].isoformat()}: {oldest[1][:150]}",
        {"unresolved": count, "oldest": oldest[0].isoformat()},
    )

"""Postmortems: drafted from the records, narrated by a writer, reviewed and published by people.

A draft has two kinds of content, and says which is which:

- **Facts** come from the records by template: the incident row, its timeline, its
  complaints, and whatever the apps above add through *fact providers* (remediation adds
  the diagnosed root cause, the fix attempts, the approvals and what fixed it). A fact
  provider is `provider(incident, facts) -> dict`: its keys replace the draft's, except
  the list keys (`timeline`, `went_well`, `went_badly`, `follow_ups`), which it extends.
- **Narrative and recommendations** come from the *narrative writer* (remediation registers
  one that asks the configured LLM provider, the offline analyzer by default). Those sections
  carry a "generated" mark in the Markdown and are listed in `Postmortem.generated_sections`.

`incidents` is the bottom layer: both registries are filled from the upper apps'
`AppConfig.ready()`, never imported from them. Publishing sends `postmortem_published`
(knowledge subscribes and writes the postmortem into the knowledge base).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from incidents import queue
from incidents.analytics import duration_text, first_responses
from incidents.choices import ActivityKind, IncidentStatus, PostmortemStatus
from incidents.complaints import affected_customers
from incidents.models import CustomerReply, Incident, Postmortem
from incidents.redaction import redact_text
from incidents.signals import postmortem_published

logger = logging.getLogger(__name__)

FactProvider = Callable[[Incident, dict], dict]
LIST_FACTS = ("timeline", "went_well", "went_badly", "follow_ups")
TIMELINE_LIMIT = 200
# Above this many minutes to the first acknowledgement, the draft counts it as something that went badly.
SLOW_ACKNOWLEDGEMENT_MINUTES = 15


@dataclass
class Narrative:
    """What a narrative writer returns: prose and advice, never facts the records hold."""

    summary: str
    recommendations: list[str] = field(default_factory=list)
    written_by: str = ""  # e.g. "offline analyzer" or "anthropic / claude-sonnet-4-6"


NarrativeWriter = Callable[[dict], Narrative]

_fact_providers: dict[str, FactProvider] = {}
_narrative_writer: dict[str, NarrativeWriter] = {}


class PostmortemRefused(Exception):
    """A postmortem action is not allowed in the postmortem's current state; the message says why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def register_fact_provider(name: str, provider: FactProvider) -> None:
    """Add (or replace, so a second `ready()` is harmless) a source of postmortem facts."""
    _fact_providers[name] = provider


def register_narrative_writer(writer: NarrativeWriter) -> None:
    """Set the writer of the narrative and recommendations (one at a time; the last registered wins)."""
    _narrative_writer["writer"] = writer


# --- facts -------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def incident_facts(incident: Incident) -> dict:
    """The facts of a postmortem, from the incident's records and every registered fact provider."""
    ended = incident.resolved_at or timezone.now()
    started = incident.first_seen
    customers = affected_customers(incident.pk)
    timeline = [
        {
            "at": activity.created_at.isoformat(),
            "actor": activity.actor,
            "kind": activity.kind,
            # Notes are typed by people: a pasted token must not travel on into the draft,
            # the knowledge base or a prompt.
            "message": redact_text(" ".join(activity.message.split()))[:500],
        }
        for activity in incident.timeline.exclude(kind=ActivityKind.WAKEUP).order_by("created_at", "id")[
            :TIMELINE_LIMIT
        ]
    ]
    resolving = incident.timeline.filter(to_status=IncidentStatus.RESOLVED).order_by("-created_at", "-id").first()
    if resolving is None:
        resolution = {"kind": "open", "text": "Not resolved yet.", "by": ""}
    elif resolving.actor.startswith("source:"):
        source = resolving.actor.removeprefix("source:")
        resolution = {"kind": "source", "text": f"The monitoring source ({source}) reported it resolved.", "by": source}
    else:
        resolution = {"kind": "human", "text": resolving.message, "by": resolving.actor}
    responded = first_responses([incident.pk]).get(incident.pk)
    acknowledge_seconds = int((responded - started).total_seconds()) if responded else None
    facts: dict = {
        "incident": {
            "id": incident.pk,
            "title": incident.title,
            "service": incident.service,
            "environment": incident.environment,
            "severity": incident.severity,
            "category": incident.category,
            "status": incident.status,
            "fingerprint": incident.fingerprint,
            "exception_type": incident.exception_type,
            "culprit": incident.culprit,
        },
        "started_at": _iso(started),
        "acknowledged_at": _iso(incident.acknowledged_at),
        "resolved_at": _iso(incident.resolved_at),
        "duration_seconds": int((ended - started).total_seconds()),
        "time_to_acknowledge_seconds": acknowledge_seconds,
        "events": incident.event_count,
        "regressions": incident.regression_count,
        "affected_customers": [
            {"customer_id": row["customer_id"], "customer_name": row["customer_name"], "complaints": row["complaints"]}
            for row in customers
        ],
        "timeline": timeline,
        "root_cause": None,
        "resolution": resolution,
        "fix_attempts": 0,
        "went_well": [],
        "went_badly": [],
        "follow_ups": [],
    }
    # An engineer's note that names the root cause is the best source there is.
    note = (
        incident.timeline.filter(kind=ActivityKind.NOTE, message__iregex=r"^\s*root cause\s*:")
        .order_by("-created_at", "-id")
        .first()
    )
    if note is not None:
        text = redact_text(" ".join(note.message.split()))
        facts["root_cause"] = {"text": text.split(":", 1)[1].strip(), "source": f"note by {note.actor}"}
    if acknowledge_seconds is not None:
        if acknowledge_seconds <= SLOW_ACKNOWLEDGEMENT_MINUTES * 60:
            facts["went_well"].append(f"First response {duration_text(acknowledge_seconds)} after it started.")
        else:
            facts["went_badly"].append(f"First response only {duration_text(acknowledge_seconds)} after it started.")
    if customers:
        facts["went_badly"].append(f"{len(customers)} customer(s) noticed and complained before it was fixed.")
    if incident.regression_count:
        facts["went_badly"].append(f"It came back {incident.regression_count} time(s) after being resolved.")
        facts["follow_ups"].append("Find out why the earlier fix did not hold (it regressed).")
    for name, provider in _fact_providers.items():
        try:
            added = provider(incident, facts) or {}
        except Exception:  # one broken provider must not cost the whole draft
            logger.exception("postmortem fact provider failed", extra={"incident_id": incident.pk, "provider": name})
            continue
        for key, value in added.items():
            if key in LIST_FACTS:
                facts[key] = facts[key] + list(value)
            else:
                facts[key] = value
    facts["timeline"].sort(key=lambda entry: entry["at"])
    # What people typed (resolve notes, reviewers' feedback) is redacted like the timeline.
    for key in ("went_well", "went_badly", "follow_ups"):
        facts[key] = [redact_text(str(item)) for item in facts[key]]
    facts["resolution"]["text"] = redact_text(str(facts["resolution"].get("text", "")))
    if not facts["root_cause"]:
        facts["follow_ups"].append("Record the root cause: nothing in the records names it.")
    return facts


# --- narrative ---------------------------------------------------------------------------


def write_narrative(facts: dict) -> Narrative | None:
    """The registered writer's narrative, or None when there is none or it failed (the draft says so)."""
    writer = _narrative_writer.get("writer")
    if writer is None:
        return None
    try:
        return writer(facts)
    except Exception as exc:
        logger.warning(
            "postmortem narrative writer failed",
            extra={"incident_id": facts["incident"]["id"], "error": f"{type(exc).__name__}: {exc}"[:300]},
        )
        return None


# --- Markdown ----------------------------------------------------------------------------


def _when(value: str | None) -> str:
    moment = parse_datetime(value) if value else None
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z") if moment else "—"


def _cell(text: str) -> str:
    # A table cell is one line, and a pipe would end it early.
    return " ".join(str(text).split()).replace("|", "\\|")


def _line(text: str) -> str:
    return " ".join(str(text).split())


def generated_mark(written_by: str) -> str:
    return f"*(generated by {written_by or 'the narrative writer'}: check before publishing)*"


def resolution_text(resolution: dict) -> str:
    """One line saying what fixed it: the pull request, the playbook or the person."""
    kind = resolution.get("kind")
    text = _line(resolution.get("text", ""))
    if kind == "code_fix":
        link = resolution.get("pull_request_url") or resolution.get("branch") or ""
        return f"Code fix{': ' + link if link else ''}. {text}".strip()
    if kind == "playbook":
        return f"Playbook “{resolution.get('playbook', '')}”. {text}".strip()
    if kind == "human":
        return f"Resolved by {resolution.get('by') or 'a person'}: {text}".strip()
    return text


def postmortem_markdown(facts: dict, narrative: Narrative | None, *, drafted_at: datetime) -> tuple[str, list[str]]:
    """The draft's Markdown and the names of the sections the narrative writer wrote."""
    incident = facts["incident"]
    generated: list[str] = []
    lines = [f"# Postmortem: incident #{incident['id']} — {_line(incident['title'])}", ""]
    if narrative is not None:
        lines += [
            f"> Drafted by Quench on {timezone.localtime(drafted_at):%Y-%m-%d %H:%M %Z}. Facts come from Quench's "
            f"records; sections marked *generated* were written by {narrative.written_by or 'a model'}.",
            "",
            f"## Summary {generated_mark(narrative.written_by)}",
            "",
            narrative.summary.strip() or "_(empty)_",
            "",
        ]
        generated.append("summary")
    else:
        lines += [
            f"> Drafted by Quench on {timezone.localtime(drafted_at):%Y-%m-%d %H:%M %Z} from its records only "
            "(no narrative writer answered): write the summary yourself.",
            "",
            "## Summary",
            "",
            f"{_line(incident['title'])} affected {incident['service'] or 'an unnamed service'} "
            f"for {duration_text(facts['duration_seconds'])}.",
            "",
        ]
    customers = facts["affected_customers"]
    where = incident["service"] or "—"
    if incident["environment"]:
        where += f" ({incident['environment']})"
    lines += [
        "## Impact",
        "",
        f"- Service: {where} · severity {incident['severity']}"
        + (f" · {incident['category']}" if incident["category"] else ""),
        f"- Started {_when(facts['started_at'])}; resolved {_when(facts['resolved_at'])}; "
        f"lasted {duration_text(facts['duration_seconds'])}",
        f"- Time to acknowledge (first response): {duration_text(facts['time_to_acknowledge_seconds'])}",
        f"- Events: {facts['events']}; regressions: {facts['regressions']}",
        f"- Affected customers (complaints): {len(customers)}"
        + (
            ": " + ", ".join(_line(c["customer_name"] or c["customer_id"]) + f" ({c['complaints']})" for c in customers)
            if customers
            else ""
        ),
        "",
        "## Timeline",
        "",
        "| When | Who | What |",
        "|---|---|---|",
    ]
    lines += [
        f"| {_when(entry['at'])} | {_cell(entry['actor'])} | {_cell(entry['message'])} |" for entry in facts["timeline"]
    ]
    root_cause = facts["root_cause"]
    lines += ["", "## Root cause", ""]
    if root_cause:
        lines.append(
            _line(root_cause["text"]) + (f" *(source: {root_cause['source']})*" if root_cause.get("source") else "")
        )
    else:
        lines.append("_Not recorded._")
    lines += ["", "## What fixed it", "", resolution_text(facts["resolution"])]
    if facts["fix_attempts"]:
        lines.append(f"\nFix attempts: {facts['fix_attempts']}.")
    for title, key in (("What went well", "went_well"), ("What went badly", "went_badly")):
        lines += ["", f"## {title}", ""]
        lines += [f"- {_line(item)}" for item in facts[key]] or ["_Nothing recorded._"]
    lines += ["", "## Follow-ups", ""]
    lines += [f"- [ ] {_line(item)}" for item in facts["follow_ups"]] or ["_None yet._"]
    if narrative is not None and narrative.recommendations:
        lines += ["", f"## Recommendations {generated_mark(narrative.written_by)}", ""]
        lines += [f"- {_line(item)}" for item in narrative.recommendations]
        generated.append("recommendations")
    return "\n".join(lines).rstrip() + "\n", generated


# --- customer replies --------------------------------------------------------------------


def customer_reply_text(facts: dict, customer: dict) -> str:
    """A plain-language draft answer to one customer: what happened, why, what was done."""
    incident = facts["incident"]
    name = customer.get("customer_name") or customer["customer_id"]
    what = incident["service"] or "our service"
    root_cause = facts.get("root_cause")
    resolution = facts["resolution"]
    lines = [
        f"Hello {name},",
        "",
        f"Thank you for reporting the problem with {what}. We are sorry for the trouble it caused you.",
        "",
        f"What happened: from {_when(facts['started_at'])} to {_when(facts['resolved_at'])}, {what} was affected "
        f"by a fault ({_line(incident['title'])}).",
    ]
    if root_cause:
        lines.append(f"Why: {_line(root_cause['text'])}")
    fix = {
        "code_fix": "We corrected the faulty code and deployed the fix.",
        "playbook": "We ran our recovery procedure to restore the service.",
        "human": "Our engineers restored the service.",
        "source": "The service recovered and our monitoring confirmed it.",
    }.get(resolution.get("kind"), "Our engineers are working on it.")
    lines += [
        f"What we did: {fix}",
        "",
        "It has been working normally since then. If you still see the problem, reply to this message "
        "and we will look at it straight away.",
        "",
        "Kind regards,",
    ]
    return "\n".join(lines) + "\n"


def _draft_customer_replies(postmortem: Postmortem, facts: dict) -> None:
    """One reply per affected customer; replies a person already edited are left as they are."""
    for customer in facts["affected_customers"]:
        reply = CustomerReply.objects.filter(postmortem=postmortem, customer_id=customer["customer_id"]).first()
        body = customer_reply_text(facts, customer)
        if reply is None:
            CustomerReply.objects.create(
                postmortem=postmortem,
                customer_id=customer["customer_id"],
                customer_name=customer["customer_name"],
                complaints=customer["complaints"],
                body=body,
            )
        elif not reply.edited_by:
            reply.body, reply.complaints = body, customer["complaints"]
            reply.save(update_fields=["body", "complaints", "updated_at"])


# --- the workflow ------------------------------------------------------------------------


def min_minutes() -> int:
    return int(getattr(settings, "QUENCH_POSTMORTEM_MIN_MINUTES", 10))


def deserves_postmortem(incident: Incident) -> bool:
    """Resolved after lasting at least QUENCH_POSTMORTEM_MIN_MINUTES (from first seen to resolved)."""
    if incident.status != IncidentStatus.RESOLVED or incident.resolved_at is None:
        return False
    return (incident.resolved_at - incident.first_seen).total_seconds() >= min_minutes() * 60


def draft_postmortem(incident_id: int, *, actor: str = "quench", redraft: bool = False) -> Postmortem | None:
    """Write the incident's postmortem draft; idempotent.

    Without `redraft`, an existing postmortem is returned untouched (a redelivered task
    changes nothing). With it, the draft is rewritten from the records, but only while it is
    still a draft: a reviewed or published postmortem is people's work (PostmortemRefused).
    None when the incident no longer exists. The narrative writer (maybe an LLM call) runs
    outside any transaction; the write is guarded by the one-per-incident constraint.
    """
    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None:
        return None
    existing = Postmortem.objects.filter(incident_id=incident_id).first()
    if existing is not None:
        if not redraft:
            return existing
        if existing.status != PostmortemStatus.DRAFT:
            raise PostmortemRefused(
                f"The postmortem of incident #{incident_id} is {existing.status}; only a draft can be redrafted."
            )
    facts = incident_facts(incident)
    narrative = write_narrative(facts)
    now = timezone.now()
    body, generated = postmortem_markdown(facts, narrative, drafted_at=now)
    values = {
        "title": f"Incident #{incident.pk}: {incident.title}"[:300],
        "body": body,
        "facts": facts,
        "generated_sections": generated,
        "narrative_by": narrative.written_by if narrative else "",
        "drafted_by": actor,
        "drafted_at": now,
    }
    try:
        with transaction.atomic():
            if existing is None:
                postmortem = Postmortem.objects.create(incident=incident, **values)
            else:
                postmortem = Postmortem.objects.select_for_update().get(pk=existing.pk)
                if postmortem.status != PostmortemStatus.DRAFT:
                    raise PostmortemRefused(f"The postmortem of incident #{incident_id} was reviewed meanwhile.")
                for name, value in values.items():
                    setattr(postmortem, name, value)
                postmortem.edited_by = ""
                postmortem.save()
            _draft_customer_replies(postmortem, facts)
    except IntegrityError:
        # Two deliveries raced and the other one wrote it first: that draft is as good as ours.
        return Postmortem.objects.get(incident_id=incident_id)
    logger.info("postmortem drafted", extra={"incident_id": incident_id, "postmortem_id": postmortem.pk})
    return postmortem


def mark_reviewed(postmortem_id: int, *, actor: str) -> Postmortem:
    """draft → reviewed: someone read it and stands by the facts."""
    with transaction.atomic():
        postmortem = Postmortem.objects.select_for_update().get(pk=postmortem_id)
        if postmortem.status != PostmortemStatus.DRAFT:
            raise PostmortemRefused(
                f"Postmortem #{postmortem.pk} is {postmortem.status}; only a draft can be reviewed."
            )
        postmortem.status = PostmortemStatus.REVIEWED
        postmortem.reviewed_by, postmortem.reviewed_at = actor, timezone.now()
        postmortem.save(update_fields=["status", "reviewed_by", "reviewed_at", "updated_at"])
    return postmortem


def publish(postmortem_id: int, *, actor: str) -> Postmortem:
    """reviewed → published, and hand it to the knowledge writer (through `postmortem_published`)."""
    with transaction.atomic():
        postmortem = Postmortem.objects.select_for_update().get(pk=postmortem_id)
        if postmortem.status != PostmortemStatus.REVIEWED:
            raise PostmortemRefused(
                f"Postmortem #{postmortem.pk} is {postmortem.status}; it must be reviewed before it is published."
            )
        postmortem.status = PostmortemStatus.PUBLISHED
        postmortem.published_by, postmortem.published_at = actor, timezone.now()
        postmortem.save(update_fields=["status", "published_by", "published_at", "updated_at"])
        postmortem_published.send(sender=Postmortem, postmortem=postmortem)
    return postmortem


def save_edit(postmortem: Postmortem, *, actor: str) -> None:
    """Keep an engineer's edit; a published postmortem's knowledge entry is refreshed with it."""
    with transaction.atomic():
        postmortem.edited_by = actor
        postmortem.save()
        if postmortem.status == PostmortemStatus.PUBLISHED:
            postmortem_published.send(sender=Postmortem, postmortem=postmortem)


def export_markdown(postmortem: Postmortem) -> str:
    """The postmortem as a Markdown file: the edited body, with its status at the top."""
    state = f"Status: {postmortem.get_status_display()}"
    if postmortem.published_at:
        state += f" by {postmortem.published_by} on {timezone.localtime(postmortem.published_at):%Y-%m-%d %H:%M %Z}"
    elif postmortem.reviewed_at:
        state += f" (reviewed by {postmortem.reviewed_by})"
    return f"<!-- {state} -->\n{postmortem.body.rstrip()}\n"


# --- what starts a draft -----------------------------------------------------------------


def draft_when_resolved(sender, *, incident, to_status, **kwargs) -> None:
    """An incident resolved after lasting long enough: queue its draft once the change commits."""
    if to_status != IncidentStatus.RESOLVED or not deserves_postmortem(incident):
        return
    incident_id = incident.pk
    transaction.on_commit(lambda: queue.enqueue_postmortem_draft(incident_id), robust=True)

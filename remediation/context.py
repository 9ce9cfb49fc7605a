"""What a diagnosis is given: the incident, its latest events, the full traceback, the code
around the culprit frames, similar incidents, knowledge, candidate playbooks and complaints.

Event text is already redacted at ingestion; providers redact the rendered prompt again.
Reading the repository goes through git (`git show <commit>:<path>`), so the files are
those of the service's default branch, whatever is checked out.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass

from incidents.models import Event, Incident
from remediation.llm.base import DiagnosisContext, SourceFile
from remediation.models import Service
from remediation.playbooks import candidate_playbooks
from remediation.repositories import RepositoryError, git, local_repository, resolve_commit

logger = logging.getLogger(__name__)

LATEST_EVENTS = 5
SIMILAR_INCIDENTS = 5
KNOWLEDGE_HITS = 5
KNOWLEDGE_EXCERPT_CHARS = 800
SOURCE_FILES = 3  # files of the innermost in-repository frames (plus the outermost frame's)
MAX_SOURCE_FILE_BYTES = 200_000


@dataclass(frozen=True)
class RepositorySnapshot:
    """The service repository at one commit of its default branch."""

    path: str
    commit: str
    files: frozenset[str]

    def read(self, relative_path: str) -> str | None:
        try:
            result = git(["show", f"{self.commit}:{relative_path}"], cwd=self.path)
        except RepositoryError:
            return None
        return None if len(result) > MAX_SOURCE_FILE_BYTES else result

    def find(self, filename: str) -> str | None:
        """The repository file a traceback's filename points at: the longest matching path suffix."""
        if not filename or not filename.endswith(".py"):
            return None
        parts = posixpath.normpath(filename.replace("\\", "/")).lstrip("/").split("/")
        for start in range(len(parts)):
            candidate = "/".join(parts[start:])
            if candidate in self.files:
                return candidate
        return None


def repository_snapshot(service: Service | None) -> RepositorySnapshot | None:
    """The service's repository at the tip of its default branch, or None when there is none to read."""
    if service is None or not service.repository:
        return None
    try:
        path = str(local_repository(service.repository))
        commit = resolve_commit(path, service.default_branch)
        listing = git(["ls-tree", "-r", "--name-only", commit], cwd=path)
    except RepositoryError as exc:
        logger.warning("service repository unavailable", extra={"service": service.name, "error": str(exc)})
        return None
    return RepositorySnapshot(path=path, commit=commit, files=frozenset(listing.splitlines()))


def service_for(incident: Incident) -> Service | None:
    """The incident's Service record, linked now by name if it was not yet."""
    if incident.service_record_id:
        return incident.service_record
    if not incident.service:
        return None
    service = Service.objects.filter(name=incident.service).first()
    if service is not None:
        Incident.objects.filter(pk=incident.pk).update(service_record=service)
        incident.service_record = service
    return service


def _event_summary(event: Event) -> dict:
    return {
        "received_at": event.received_at.isoformat(),
        "title": event.title,
        "message": event.message[:2000],
        "status": event.status,
        "severity": event.severity,
        "labels": event.labels,
        "path": event.path,
        "method": event.method,
        "exception": f"{event.exception_type}: {event.exception_value}".strip(": "),
    }


def build_context(incident: Incident) -> tuple[DiagnosisContext, RepositorySnapshot | None]:
    """Everything the provider may use about `incident`, and the repository snapshot it was read from."""
    events = list(incident.events.order_by("-received_at")[:LATEST_EVENTS])
    # The traceback to explain is the newest one; alerts have none.
    with_traceback = next((event for event in events if event.traceback or event.frames), None)
    if with_traceback is None:
        with_traceback = incident.events.exclude(traceback="").order_by("-received_at").first()
    service = service_for(incident)
    snapshot = repository_snapshot(service)

    frames = []
    for frame in (with_traceback.frames if with_traceback else None) or []:
        if not isinstance(frame, dict):
            continue
        frame = dict(frame)
        path = snapshot.find(frame.get("filename", "")) if snapshot and frame.get("in_app", True) else None
        if path:
            frame["path"] = path
        frames.append(frame)

    source_files = _source_files(frames, snapshot)
    context = DiagnosisContext(
        incident_id=incident.pk,
        title=incident.title,
        service=incident.service,
        environment=incident.environment,
        severity=incident.severity,
        category=incident.category,
        alertname=incident.alertname,
        kind=incident.kind,
        labels=dict(incident.labels or {}),
        exception_type=(with_traceback.exception_type if with_traceback else "") or incident.exception_type,
        exception_value=(with_traceback.exception_value if with_traceback else "") or incident.message,
        traceback=with_traceback.traceback if with_traceback else "",
        frames=frames,
        events=[_event_summary(event) for event in events],
        event_count=incident.event_count,
        regression_count=incident.regression_count,
        source_files=source_files,
        similar_incidents=_similar(incident),
        knowledge=_knowledge(incident, with_traceback),
        playbooks=[
            {
                "id": match.playbook.pk,
                "name": match.playbook.name,
                "description": match.playbook.description,
                "risk_level": match.playbook.risk_level,
                "why": match.why,
            }
            for match in candidate_playbooks(incident)
        ],
        complaints=_complaints(incident),
        test_command=service.test_command if service else "",
        has_repository=snapshot is not None,
    )
    return context, snapshot


def _source_files(frames: list[dict], snapshot: RepositorySnapshot | None) -> list[SourceFile]:
    if snapshot is None:
        return []
    lines_by_path: dict[str, list[int]] = {}
    # The outermost in-repository frame (the handler or job) is read too, however deep the
    # crash: a fix that refuses bad input where it enters, and its replay, start there.
    outermost = next((frame.get("path") for frame in frames if frame.get("path")), None)
    for frame in reversed(frames):  # innermost first: the culprit's file comes first
        path = frame.get("path")
        if not path:
            continue
        if path not in lines_by_path and len(lines_by_path) >= SOURCE_FILES and path != outermost:
            continue
        if isinstance(frame.get("lineno"), int):
            lines_by_path.setdefault(path, []).append(frame["lineno"])
        else:
            lines_by_path.setdefault(path, [])
    files = []
    for path, lines in lines_by_path.items():
        content = snapshot.read(path)
        if content is not None:
            files.append(SourceFile(path=path, content=content, lines_of_interest=sorted(set(lines))))
    return files


def _similar(incident: Incident) -> list[dict]:
    from knowledge.retrieval import similar_incidents

    try:
        hits = similar_incidents(incident, k=SIMILAR_INCIDENTS)
    except Exception:  # retrieval helps a diagnosis but must never stop one
        logger.exception("similar-incident search failed", extra={"incident_id": incident.pk})
        return []
    similar = []
    for hit in hits:
        past = hit.object  # similar-incident hits carry the Incident
        similar.append(
            {
                "id": past.pk,
                "title": past.title,
                "score": round(hit.score, 2),
                "matched": hit.matched,
                "status": past.status,
                "service": past.service,
                "exception_type": past.exception_type,
                "resolution": _resolution(past),
            }
        )
    return similar


def _resolution(incident: Incident) -> str:
    """How a past incident ended, from its knowledge summary when there is one."""
    from knowledge.models import KnowledgeEntry, KnowledgeKind

    entry = (
        KnowledgeEntry.objects.filter(incident=incident, kind__in=[KnowledgeKind.INCIDENT_SUMMARY, KnowledgeKind.FIX])
        .order_by("-updated_at")
        .only("body")
        .first()
    )
    return entry.body[:KNOWLEDGE_EXCERPT_CHARS] if entry else ""


def _knowledge(incident: Incident, event: Event | None) -> list[dict]:
    from knowledge.retrieval import search

    query = " ".join(
        part
        for part in (
            incident.title,
            event.exception_type if event else incident.exception_type,
            (event.exception_value if event else incident.message)[:300],
            incident.alertname,
        )
        if part
    )
    if not query.strip():
        return []
    try:
        hits = search(query, k=KNOWLEDGE_HITS)
    except Exception:
        logger.exception("knowledge search failed", extra={"incident_id": incident.pk})
        return []
    return [
        {
            "id": hit.id,
            "title": hit.title,
            "kind": hit.kind,
            "score": round(hit.score, 2),
            "matched": hit.matched,
            "excerpt": hit.object.body[:KNOWLEDGE_EXCERPT_CHARS],
        }
        for hit in hits
        if getattr(hit.object, "incident_id", None) != incident.pk
    ]


def _complaints(incident: Incident) -> list[dict]:
    from incidents.complaints import complaint_context

    return complaint_context(incident)

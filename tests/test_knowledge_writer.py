"""The knowledge writer: one idempotent upsert for every path, retries, dead letters, reconciler, back-fill."""

import numpy as np
import pytest
from django.db import IntegrityError, OperationalError
from django.utils import timezone

from incidents.models import Incident
from knowledge import services
from knowledge.models import DeadLetter, KnowledgeEntry, KnowledgeKind, KnowledgePath
from knowledge.services import reconcile_dead_letters, replay_dead_letter, write_knowledge

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_backoff(settings):
    settings.QUENCH_KNOWLEDGE_RETRY_BASE_DELAY = 0


def make_incident(title="Payment provider timeout", **fields) -> Incident:
    now = timezone.now()
    defaults = {
        "fingerprint": f"fp-{title}",
        "fingerprint_version": 1,
        "fingerprint_strategy": "default:error",
        "kind": "error",
        "source": "generic",
        "service": "checkout",
        "first_seen": now,
        "last_seen": now,
        "event_count": 1,
    }
    return Incident.objects.create(title=title, **{**defaults, **fields})


def summary(incident, **overrides):
    arguments = {
        "path_type": KnowledgePath.INCIDENT_RESOLVED,
        "kind": KnowledgeKind.INCIDENT_SUMMARY,
        "title": f"Incident #{incident.pk}: {incident.title}",
        "body": "The payments client timed out; raised the read timeout.",
        "incident_id": incident.pk,
        "services": ["checkout"],
        "tags": ["payments"],
    }
    return write_knowledge(**{**arguments, **overrides})


class FailNTimes:
    """Fault injection at the writer's one database seam: raise `count` transient errors, then write."""

    def __init__(self, count, error=None):
        self.count = count
        self.error = error or OperationalError("server closed the connection unexpectedly")
        self.calls = 0
        self.real = services._upsert_entry

    def __call__(self, **kwargs):
        self.calls += 1
        if self.calls <= self.count:
            raise self.error
        return self.real(**kwargs)


def test_two_writes_for_one_incident_and_path_give_one_updated_row():
    incident = make_incident()
    first = summary(incident)
    second = summary(incident, body="Root cause: the provider's EU endpoint was degraded.", tags=["payments", "eu"])

    assert KnowledgeEntry.objects.count() == 1
    assert second.pk == first.pk
    entry = KnowledgeEntry.objects.get()
    assert entry.body == "Root cause: the provider's EU endpoint was degraded."
    assert entry.tags == ["payments", "eu"]
    assert entry.embedding_provider == "local-v2"
    assert entry.embedding_dimension == 384
    assert np.linalg.norm(entry.embedding) == pytest.approx(1.0, abs=1e-3)  # stored as halfvec
    assert not np.allclose(entry.embedding, first.embedding), "the vector follows the new text"


def test_other_paths_of_the_same_incident_are_separate_entries():
    incident = make_incident()
    summary(incident)
    write_knowledge(
        path_type=KnowledgePath.POSTMORTEM_PUBLISHED,
        kind=KnowledgeKind.POSTMORTEM,
        title="Postmortem",
        body="...",
        incident_id=incident.pk,
    )
    assert KnowledgeEntry.objects.filter(incident=incident).count() == 2


def test_imports_upsert_on_their_source_path():
    for body in ("first version", "second version"):
        write_knowledge(
            path_type=KnowledgePath.RUNBOOK_IMPORT,
            kind=KnowledgeKind.RUNBOOK,
            title="Disk full",
            body=body,
            source_path="disk-full.md",
        )
    entry = KnowledgeEntry.objects.get()
    assert (entry.source_path, entry.body) == ("disk-full.md", "second version")


def test_a_note_without_incident_or_path_is_simply_added():
    for _ in range(2):
        write_knowledge(path_type=KnowledgePath.MANUAL, kind=KnowledgeKind.NOTE, title="Tip", body="Check the WAL.")
    assert KnowledgeEntry.objects.count() == 2


def test_the_lexemes_are_generated_by_the_database():
    from django.contrib.postgres.search import SearchQuery

    entry = write_knowledge(
        path_type=KnowledgePath.MANUAL,
        kind=KnowledgeKind.NOTE,
        title="Connection exhaustion",
        body="PgBouncer helps with TooManyConnections.",
        tags=["postgres"],
    )
    entry.refresh_from_db()

    def matches(term: str) -> int:
        return KnowledgeEntry.objects.filter(lexemes=SearchQuery(term, config="english")).count()

    assert matches("connections") == 1 and matches("pgbouncer") == 1 and matches("kubernetes") == 0
    assert matches("many") == 1 and matches("TooManyConnections") == 1  # camelCase split, and kept whole
    # Field weight labels: title A, tags B, body D.
    assert "'exhaust':2A" in entry.lexemes and "'postgr':3B" in entry.lexemes and "'help':6" in entry.lexemes
    assert (entry.title_length, entry.body_length) == (2, 7)  # distinct lexemes, stop words out


def test_transient_errors_are_retried_until_the_write_succeeds(monkeypatch):
    incident = make_incident()
    seam = FailNTimes(services.WRITE_ATTEMPTS - 1)
    monkeypatch.setattr(services, "_upsert_entry", seam)

    entry = summary(incident)

    assert entry is not None
    assert seam.calls == services.WRITE_ATTEMPTS
    assert KnowledgeEntry.objects.count() == 1
    assert DeadLetter.objects.count() == 0


def test_the_backoff_doubles_from_the_configured_base_delay(monkeypatch, settings):
    settings.QUENCH_KNOWLEDGE_RETRY_BASE_DELAY = 0.25
    sleeps = []
    monkeypatch.setattr(services.time, "sleep", sleeps.append)
    monkeypatch.setattr(services, "_upsert_entry", FailNTimes(services.WRITE_ATTEMPTS))

    summary(make_incident())

    assert sleeps == [0.25, 0.5, 1.0]


def test_after_the_last_retry_the_write_becomes_a_dead_letter_and_the_reconciler_finishes_it(monkeypatch):
    incident = make_incident()
    seam = FailNTimes(services.WRITE_ATTEMPTS)
    monkeypatch.setattr(services, "_upsert_entry", seam)

    assert summary(incident, approval_id=None) is None

    assert KnowledgeEntry.objects.count() == 0
    letter = DeadLetter.objects.get()
    assert letter.operation == "knowledge_write"
    assert letter.attempts == services.WRITE_ATTEMPTS
    assert "OperationalError" in letter.reason
    assert letter.payload["incident_id"] == incident.pk
    assert letter.payload["services"] == ["checkout"]
    assert letter.resolved_at is None

    # The database is back: the scheduled reconciler replays the write.
    assert reconcile_dead_letters() == {"resolved": 1, "failed": 0, "skipped": 0}
    letter.refresh_from_db()
    assert letter.resolved_at is not None
    assert letter.attempts == services.WRITE_ATTEMPTS + 1
    entry = KnowledgeEntry.objects.get()
    assert (entry.incident_id, entry.path_type, entry.tags) == (incident.pk, "incident_resolved", ["payments"])

    # A resolved letter is never replayed again.
    assert reconcile_dead_letters() == {"resolved": 0, "failed": 0, "skipped": 0}
    assert replay_dead_letter(letter.pk) is None
    assert KnowledgeEntry.objects.count() == 1


def test_a_replay_that_fails_again_keeps_the_letter_and_counts_the_attempt(monkeypatch):
    monkeypatch.setattr(services, "_upsert_entry", FailNTimes(services.WRITE_ATTEMPTS + 1))
    summary(make_incident())
    letter = DeadLetter.objects.get()

    assert reconcile_dead_letters() == {"resolved": 0, "failed": 1, "skipped": 0}
    letter.refresh_from_db()
    assert letter.resolved_at is None
    assert letter.attempts == services.WRITE_ATTEMPTS + 1
    assert KnowledgeEntry.objects.count() == 0

    assert reconcile_dead_letters()["resolved"] == 1
    assert KnowledgeEntry.objects.count() == 1


def test_errors_that_are_not_transient_are_raised_at_once(monkeypatch):
    seam = FailNTimes(1, error=IntegrityError("violates check constraint"))
    monkeypatch.setattr(services, "_upsert_entry", seam)

    with pytest.raises(IntegrityError):
        summary(make_incident())
    assert seam.calls == 1
    assert DeadLetter.objects.count() == 0


def test_an_approval_decided_after_the_summary_is_back_filled_onto_it():
    incident = make_incident()
    other = make_incident(title="Disk full")
    summary(incident)
    summary(other)

    write_knowledge(
        path_type=KnowledgePath.APPROVAL_DECIDED,
        kind=KnowledgeKind.FIX,
        title="Approved: raise the payments read timeout",
        body="Approved by alice.",
        incident_id=incident.pk,
        approval_id=41,
    )

    entries = KnowledgeEntry.objects.filter(incident=incident)
    assert sorted(entries.values_list("path_type", "approval_id")) == [
        ("approval_decided", 41),
        ("incident_resolved", 41),
    ]
    assert KnowledgeEntry.objects.get(incident=other).approval_id is None


def test_a_summary_written_after_the_approval_inherits_its_id_and_a_rewrite_keeps_it():
    incident = make_incident()
    write_knowledge(
        path_type=KnowledgePath.APPROVAL_DECIDED,
        kind=KnowledgeKind.FIX,
        title="Approved",
        body="Approved by alice.",
        incident_id=incident.pk,
        approval_id=7,
    )
    assert summary(incident).approval_id == 7
    # A redelivered summary task knows nothing of approvals: the id must survive it.
    summary(incident, body="rewritten")
    assert KnowledgeEntry.objects.get(path_type="incident_resolved").approval_id == 7


def test_the_reconciler_is_scheduled_every_five_minutes():
    from django_q.models import Schedule

    schedule = Schedule.objects.get(func="knowledge.tasks.reconcile_dead_letters")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == ("I", 5, -1)


@pytest.mark.django_db(transaction=True)
def test_a_connection_killed_by_the_server_is_retried_on_a_new_one(caplog):
    from django.db import connection, connections

    incident = make_incident()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    # A real fault, not an injected one: the server drops our session (a failover, a restart).
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()

    with caplog.at_level("WARNING", logger="knowledge.services"):
        entry = summary(incident)

    assert [record.message for record in caplog.records] == ["knowledge write failed, will retry"]
    assert entry is not None
    assert KnowledgeEntry.objects.filter(incident=incident).count() == 1
    assert DeadLetter.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_writes_of_one_entry_end_in_one_row():
    import threading

    from django.db import connections

    incident = make_incident()
    barrier = threading.Barrier(4)
    errors = []

    def write(number):
        try:
            barrier.wait()
            summary(incident, body=f"version {number}")
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert KnowledgeEntry.objects.filter(incident=incident).count() == 1

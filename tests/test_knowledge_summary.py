"""A resolved incident's summary entry (what fired, root cause and fix from the timeline, a link), written once; the sweep."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from incidents.models import Incident
from incidents.services import resolve_incident
from incidents.services.lifecycle import record_activity
from knowledge import services
from knowledge.models import DeadLetter, IncidentSignature, KnowledgeEntry
from knowledge.tasks import sweep_missing_knowledge, write_incident_summary

pytestmark = pytest.mark.django_db

URL = "/api/v1/ingest/events"


@pytest.fixture
def resolved_incident(post_json, make_integration):
    token = make_integration("generic").raw_token
    event = {
        "service": "checkout",
        "environment": "production",
        "title": "Payment provider timeout",
        "message": "HTTPSConnectionPool(host='api.pay.example', port=443): Read timed out. (read timeout=10)",
        "exception_type": "ReadTimeout",
        "severity": "critical",
    }
    for _ in range(3):
        post_json(URL, event, token)
    incident = Incident.objects.get()
    incident.events.update(url="https://sentry.example/issues/42/")  # as Sentry and Alertmanager events carry
    record_activity(incident, "note", "Root cause: the provider's EU endpoint was degraded.", actor="alice")
    resolve_incident(incident.pk, actor="alice", note="Failed over to the US endpoint")
    return Incident.objects.get()


def test_the_summary_says_what_fired_and_how_it_ended(resolved_incident, settings):
    entry_id = write_incident_summary(resolved_incident.pk)

    entry = KnowledgeEntry.objects.get(pk=entry_id)
    assert entry.kind == "incident_summary" and entry.path_type == "incident_resolved"
    assert entry.incident_id == resolved_incident.pk
    assert entry.title == f"Incident #{resolved_incident.pk}: Payment provider timeout"
    assert entry.services == ["checkout"]
    assert resolved_incident.severity in entry.tags
    body = entry.body
    assert "**Service:** checkout (production)" in body
    assert "Exception: `ReadTimeout`" in body
    assert "Events: 3; regressions: 0" in body
    assert "Read timed out" in body
    assert "alice: Root cause: the provider's EU endpoint was degraded." in body
    assert "alice: Failed over to the US endpoint" in body
    assert f"({settings.SITE_URL}/admin/incidents/incident/{resolved_incident.pk}/change/)" in body
    assert "(https://sentry.example/issues/42/)" in body
    assert entry.embedding_provider == "local-v2"


def test_a_redelivered_summary_task_writes_no_second_entry(resolved_incident):
    first = write_incident_summary(resolved_incident.pk)
    record_activity(resolved_incident, "note", "Follow-up: add a circuit breaker.", actor="bob")

    second = write_incident_summary(resolved_incident.pk)

    assert first == second
    assert KnowledgeEntry.objects.count() == 1
    assert "add a circuit breaker" in KnowledgeEntry.objects.get().body


def test_a_summary_for_a_vanished_incident_does_nothing():
    assert write_incident_summary(123456) is None
    assert KnowledgeEntry.objects.count() == 0
    assert DeadLetter.objects.count() == 0


def test_the_sweep_catches_up_on_missed_signatures_and_summaries(resolved_incident):
    # As if the on-commit tasks never ran: no signature, no summary for this incident yet.
    assert sweep_missing_knowledge() == {"signatures": 0, "summaries": 0}, "recent ones are left to their tasks"

    later = timezone.now() + timedelta(minutes=10)
    assert services.sweep_missing_knowledge(now=later) == {"signatures": 1, "summaries": 1}
    assert IncidentSignature.objects.get().incident_id == resolved_incident.pk
    assert KnowledgeEntry.objects.get().incident_id == resolved_incident.pk
    assert services.sweep_missing_knowledge(now=later) == {"signatures": 0, "summaries": 0}


def test_the_sweep_is_scheduled():
    schedule = Schedule.objects.get(func="knowledge.tasks.sweep_missing_knowledge")
    assert (schedule.schedule_type, schedule.minutes) == ("I", 10)

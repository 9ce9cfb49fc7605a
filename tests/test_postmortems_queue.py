"""Resolve → draft → publish → knowledge, every step a django-q2 task of a real cluster."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from incidents.models import Postmortem
from incidents.postmortems import mark_reviewed, publish
from incidents.services import resolve_incident
from knowledge.models import KnowledgeEntry
from tests.cluster import run_cluster_until
from tests.record_factories import ComplaintFactory, IncidentFactory


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_real_queue_drafts_and_publishes_a_postmortem():
    # The cluster's scheduler would run every overdue schedule; this test is about the tasks.
    Schedule.objects.update(next_run=timezone.now() + timedelta(hours=1))
    incident = IncidentFactory(title="Checkout times out", first_seen=timezone.now() - timedelta(minutes=45))
    ComplaintFactory(incident=incident, customer_id="cust-7", customer_name="Initech")

    resolve_incident(incident.pk, actor="alice", note="Payment provider failover")
    run_cluster_until(lambda: Postmortem.objects.filter(incident=incident).exists())

    postmortem = Postmortem.objects.get(incident=incident)
    assert postmortem.status == "draft" and postmortem.narrative_by == "the offline analyzer"
    assert "lasted 45m" in postmortem.body and "Initech (1)" in postmortem.body
    assert postmortem.customer_replies.get().body.startswith("Hello Initech,")

    mark_reviewed(postmortem.pk, actor="bob")
    publish(postmortem.pk, actor="alice")
    run_cluster_until(lambda: KnowledgeEntry.objects.filter(incident=incident, kind="postmortem").exists())

    entry = KnowledgeEntry.objects.get(incident=incident, kind="postmortem")
    assert entry.body == postmortem.body and entry.embedding_provider

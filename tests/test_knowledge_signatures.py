"""An opened incident gets an embedded signature in its wake-up; resolving enqueues the summary on commit."""

import pytest
from django_q.models import OrmQ

from incidents.models import Incident
from incidents.services import resolve_incident
from knowledge.models import IncidentSignature
from knowledge.services import signature_text
from knowledge.tasks import embed_incident

URL = "/api/v1/ingest/events"

TRACEBACK = """Traceback (most recent call last):
  File "/srv/app/.venv/lib/python3.11/site-packages/django/core/handlers/base.py", line 197, in _get_response
    response = wrapped_callback(request, *callback_args, **callback_kwargs)
  File "/srv/app/shop/payments/views.py", line 40, in capture
    return charge_order(order)
  File "/srv/app/shop/payments/service.py", line 112, in charge_order
    currency = payload["currency"]
KeyError: 'currency' for order 81723"""

pytestmark = pytest.mark.django_db


def crash(**extra):
    return {
        "service": "payments",
        "environment": "production",
        "title": "KeyError: 'currency' for order 81723",
        "message": "KeyError: 'currency' for order 81723",
        "exception_type": "KeyError",
        "traceback": TRACEBACK,
        "labels": {"team": "payments", "pod": "payments-7d9f-xk2"},
        "severity": "error",
        **extra,
    }


def queued():
    return sorted((task.func(), task.args(), task.group()) for task in OrmQ.objects.all())


@pytest.fixture
def token(make_integration):
    return make_integration("generic").raw_token


def test_the_wakeup_of_a_new_incident_embeds_its_signature(post_json, token, django_capture_on_commit_callbacks):
    from incidents.models import IncidentWakeup
    from incidents.tasks import handle_wakeup

    with django_capture_on_commit_callbacks(execute=True):
        assert post_json(URL, crash(), token).status_code == 202
    incident = Incident.objects.get()
    assert [task[0] for task in queued()] == ["incidents.tasks.handle_wakeup"]
    assert not IncidentSignature.objects.exists()

    handle_wakeup(IncidentWakeup.objects.get().pk)

    assert IncidentSignature.objects.get().incident == incident

    # A repeat of the same problem is not a new incident: no new wake-up, nothing more to embed.
    OrmQ.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        post_json(URL, crash(), token)
    assert queued() == []


def test_resolving_an_incident_enqueues_its_summary_after_commit(post_json, token, django_capture_on_commit_callbacks):
    post_json(URL, crash(), token)
    incident = Incident.objects.get()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        resolve_incident(incident.pk, actor="alice", note="Deployed the currency default fix")

    assert len(callbacks) == 1
    assert queued() == [("knowledge.tasks.write_incident_summary", (incident.pk,), "knowledge")]


def test_the_signature_holds_what_identifies_the_problem(post_json, token):
    post_json(URL, crash(), token)
    incident = Incident.objects.get()

    text = signature_text(incident, incident.events.get())

    assert "KeyError: 'currency' for order <num>" in text, "the message is normalized"
    assert "81723" not in text
    assert "shop.payments.views:capture shop.payments.service:charge_order" in text, "in-app frames, innermost last"
    assert "django.core.handlers" not in text, "library frames are left out"
    assert "payments" in text and "team=payments" in text
    assert "pod=" not in text, "replica-specific labels are left out"


def test_embedding_a_signature_is_idempotent(post_json, token):
    post_json(URL, crash(), token)
    incident = Incident.objects.get()

    assert embed_incident(incident.pk) is True
    first = IncidentSignature.objects.get()
    assert embed_incident(incident.pk) is True

    again = IncidentSignature.objects.get()
    assert again.pk == first.pk
    assert again.updated_at == first.updated_at, "an unchanged signature is not rewritten"
    assert again.embedding_provider == "local-v2"
    assert len(again.embedding) == 384
    assert again.text == signature_text(incident, incident.events.get())


def test_a_signature_changes_when_the_incident_does(post_json, token):
    post_json(URL, crash(), token)
    incident = Incident.objects.get()
    embed_incident(incident.pk)
    Incident.objects.filter(pk=incident.pk).update(title="KeyError: 'currency' in capture")

    embed_incident(incident.pk)

    assert IncidentSignature.objects.count() == 1
    assert IncidentSignature.objects.get().text.startswith("KeyError: 'currency' in capture")


def test_a_deleted_incident_is_skipped():
    assert embed_incident(987654) is False
    assert IncidentSignature.objects.count() == 0


def test_similar_incidents_are_found_through_their_signatures(post_json, token):
    from pgvector.django import CosineDistance

    from knowledge.embeddings import get_provider

    post_json(URL, crash(), token)
    post_json(
        URL,
        {
            "service": "search",
            "title": "Disk full on /var/lib/elasticsearch",
            "message": "No space left on device",
            "exception_type": "OSError",
        },
        token,
    )
    for incident in Incident.objects.all():
        embed_incident(incident.pk)

    provider = get_provider()
    query = provider.embed_one("KeyError 'currency' in shop.payments.service:charge_order")
    nearest = (
        IncidentSignature.objects.filter(embedding_provider=provider.name)
        .order_by(CosineDistance("embedding", query))
        .select_related("incident")
        .first()
    )
    assert nearest.incident.service == "payments"


def test_a_failed_enqueue_does_not_fail_the_ingest_request(
    post_json, token, django_capture_on_commit_callbacks, monkeypatch
):
    import django_q.tasks
    from django.db import OperationalError

    def broker_down(*args, **kwargs):
        raise OperationalError("the broker's table is locked")

    monkeypatch.setattr(django_q.tasks, "async_task", broker_down)

    with django_capture_on_commit_callbacks(execute=True):
        response = post_json(URL, crash(), token)

    # The event is stored; the sweep embeds the signature later.
    assert response.status_code == 202
    assert Incident.objects.count() == 1

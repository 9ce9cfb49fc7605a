"""The debounced wake-up travels through the real django-q2 queue, exactly once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.models import Activity, Incident, IncidentWakeup
from incidents.tasks import handle_wakeup, sweep_wakeups
from knowledge.models import IncidentSignature
from tests.cluster import run_cluster_until


def _send(post_json, token, **fields):
    body = {"service": "checkout", "title": "Payment provider timeout", **fields}
    assert post_json("/api/v1/ingest/events", body, token).status_code == 202


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_new_incident_is_woken_by_a_real_cluster(post_json, make_integration):
    from django_q.models import OrmQ

    token = make_integration("generic").raw_token
    _send(post_json, token)
    _send(post_json, token)
    wakeup = IncidentWakeup.objects.get()
    assert wakeup.enqueued_at is not None
    assert [task.func() for task in OrmQ.objects.all()] == ["incidents.tasks.handle_wakeup"]

    def handled() -> bool:
        wakeup.refresh_from_db()
        return wakeup.handled_at is not None

    run_cluster_until(handled)

    assert wakeup.handled_at is not None
    incident = Incident.objects.get()
    assert Activity.objects.filter(incident=incident, kind="wakeup").count() == 1
    assert IncidentSignature.objects.filter(incident=incident).exists()  # embedded by the wake-up


@pytest.mark.django_db
def test_a_redelivered_wakeup_task_does_nothing(post_json, make_integration):
    _send(post_json, make_integration("generic").raw_token)
    wakeup = IncidentWakeup.objects.get()

    assert handle_wakeup(wakeup.pk) is True
    assert handle_wakeup(wakeup.pk) is False
    assert Activity.objects.filter(kind="wakeup").count() == 1


@pytest.mark.django_db
def test_the_sweep_reenqueues_a_lost_wakeup(post_json, make_integration):
    from django_q.models import OrmQ

    _send(post_json, make_integration("generic").raw_token)
    # As if the process died between the commit and the enqueue.
    IncidentWakeup.objects.update(created_at=timezone.now() - timedelta(minutes=30), enqueued_at=None)
    OrmQ.objects.all().delete()

    assert sweep_wakeups() == 1
    assert OrmQ.objects.count() == 1
    assert IncidentWakeup.objects.get().enqueued_at is not None


@pytest.mark.django_db
def test_the_sweep_leaves_recently_enqueued_wakeups_alone(post_json, make_integration):
    from django_q.models import OrmQ

    _send(post_json, make_integration("generic").raw_token)
    IncidentWakeup.objects.update(
        created_at=timezone.now() - timedelta(minutes=30), enqueued_at=timezone.now() - timedelta(minutes=1)
    )
    OrmQ.objects.all().delete()

    assert sweep_wakeups() == 0
    assert OrmQ.objects.count() == 0

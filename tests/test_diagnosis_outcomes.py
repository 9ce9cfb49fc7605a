"""A diagnosis never wedges, and escalation means a human is needed now."""

import pytest

from incidents.choices import IncidentStatus
from incidents.models import IncidentWakeup
from incidents.tasks import handle_wakeup
from remediation import services
from remediation.choices import DiagnosisStatus
from remediation.llm.offline import OfflineAnalyzer
from remediation.models import Diagnosis


def _event(post_json, token, **fields):
    body = {"service": "billing", "title": "ValueError: bad invoice", "exception_type": "ValueError", **fields}
    response = post_json("/api/v1/ingest/events", body, token)
    assert response.status_code == 202, response.content
    incident_id = response.json()["results"][0]["incident_id"]
    for wakeup in IncidentWakeup.objects.filter(incident_id=incident_id, handled_at__isnull=True):
        handle_wakeup(wakeup.pk)
    return incident_id


class CountingAnalyzer(OfflineAnalyzer):
    calls = 0

    def diagnose(self, context):
        type(self).calls += 1
        return super().diagnose(context)


class ExplodingAnalyzer(OfflineAnalyzer):
    def diagnose(self, context):
        raise RuntimeError("the model's answer could not be parsed")


@pytest.fixture
def token(make_integration):
    return make_integration("generic").raw_token


def test_an_out_of_range_line_number_does_not_wedge_the_diagnosis(db, post_json, token):
    traceback = (
        "Traceback (most recent call last):\n"
        '  File "billing/invoices.py", line 99999999999999999999, in total\n'
        "    return sum(lines)\n"
        "ValueError: bad invoice\n"
    )
    incident_id = _event(post_json, token, traceback=traceback)
    diagnosis = Diagnosis.objects.get(incident_id=incident_id)
    outcome = services.run_diagnosis(diagnosis.pk)
    diagnosis.refresh_from_db()
    assert outcome == "diagnosed" and diagnosis.status == DiagnosisStatus.SUCCEEDED
    assert diagnosis.culprit_line is None
    assert diagnosis.incident.status == IncidentStatus.TRIGGERED


def test_a_failing_diagnosis_ends_failed_with_the_error_and_reanalyze_works(db, post_json, token):
    incident_id = _event(post_json, token)
    diagnosis = Diagnosis.objects.get(incident_id=incident_id)
    assert services.run_diagnosis(diagnosis.pk, provider=ExplodingAnalyzer()) == "failed"
    diagnosis.refresh_from_db()
    assert diagnosis.status == DiagnosisStatus.FAILED
    assert "RuntimeError: the model's answer could not be parsed" in diagnosis.error
    incident = diagnosis.incident
    assert incident.status == IncidentStatus.TRIGGERED  # out of "diagnosing", not escalated
    assert incident.timeline.filter(message__contains="Reanalyze to try again").exists()
    again, created = services.reanalyze(incident_id, actor="oncall")
    assert created and again.pk != diagnosis.pk


def test_a_redelivered_diagnosis_task_does_not_ask_the_model_again(db, post_json, token):
    incident_id = _event(post_json, token)
    diagnosis = Diagnosis.objects.get(incident_id=incident_id)
    # The first delivery claimed it and is still asking the model.
    from django.utils import timezone

    Diagnosis.objects.filter(pk=diagnosis.pk).update(status=DiagnosisStatus.RUNNING, started_at=timezone.now())
    CountingAnalyzer.calls = 0
    assert services.run_diagnosis(diagnosis.pk, provider=CountingAnalyzer()) == "in progress elsewhere"
    assert CountingAnalyzer.calls == 0
    # A claim older than the task timeout belongs to a dead worker: taken over, asked once.
    from datetime import timedelta

    from django.conf import settings

    old = timezone.now() - timedelta(seconds=settings.Q_CLUSTER["timeout"] + 5)
    Diagnosis.objects.filter(pk=diagnosis.pk).update(started_at=old)
    services.run_diagnosis(diagnosis.pk, provider=CountingAnalyzer())
    services.run_diagnosis(diagnosis.pk, provider=CountingAnalyzer())
    assert CountingAnalyzer.calls == 1


def test_heartbeat_alerts_are_never_diagnosed(db, post_json, make_integration):
    token = make_integration("alertmanager").raw_token
    body = {
        "version": "4",
        "status": "firing",
        "receiver": "quench",
        "groupKey": '{}:{alertname="Watchdog"}',
        "groupLabels": {},
        "commonLabels": {"alertname": "Watchdog"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "Watchdog", "severity": "none"},
                "annotations": {
                    "description": "This is an alert meant to ensure that the entire alerting pipeline is functional."
                },
                "startsAt": "2026-12-07T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "e5a1a2b3c4d5e6f7",
            }
        ],
    }
    response = post_json("/api/v1/ingest/alertmanager", body, token)
    assert response.status_code == 202, response.content
    incident_id = response.json()["results"][0]["incident_id"]
    for wakeup in IncidentWakeup.objects.filter(incident_id=incident_id):
        handle_wakeup(wakeup.pk)
    assert not Diagnosis.objects.filter(incident_id=incident_id).exists()


def test_the_watchdogs_own_incidents_are_not_diagnosed(db, settings):
    """A stall of Quench is named by the watchdog itself; diagnosing it would only retrieve look-alikes."""
    from datetime import timedelta

    from django.utils import timezone
    from django_q.models import OrmQ

    from incidents.models import Incident
    from incidents.watchdog import run_watchdog

    OrmQ.objects.create(key="quench", payload="x", lock=timezone.now() - timedelta(minutes=30))
    assert run_watchdog()["queue_stalled"] == "raised"
    incident = Incident.objects.get(service="quench")
    for wakeup in IncidentWakeup.objects.filter(incident=incident):
        handle_wakeup(wakeup.pk)
    assert services.request_diagnosis(incident.pk, trigger="new") == (None, False)
    assert not Diagnosis.objects.filter(incident=incident).exists()
    # An engineer may still ask for one.
    diagnosis, created = services.request_diagnosis(incident.pk, trigger="reanalyze")
    assert created and diagnosis.incident_id == incident.pk


def test_a_spike_does_not_rediagnose_an_incident_diagnosed_in_this_life(db, post_json, token):
    incident_id = _event(post_json, token)
    services.run_diagnosis(Diagnosis.objects.get(incident_id=incident_id).pk)
    assert services.request_diagnosis(incident_id, trigger="spike") == (None, False)
    assert Diagnosis.objects.filter(incident_id=incident_id).count() == 1

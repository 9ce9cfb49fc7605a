"""/healthz checks the database, the queue and the scheduler; /metrics speaks Prometheus text."""

import shutil
from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.models import Heartbeat
from incidents.tasks import heartbeat


def test_healthz_is_failing_until_the_scheduler_beats(client, db):
    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["queue"]["ok"] is True
    assert body["checks"]["scheduler"]["ok"] is False
    assert "qcluster" in body["checks"]["scheduler"]["problem"]


def test_healthz_is_ok_with_a_recent_heartbeat(client, db):
    heartbeat()

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["checks"]["sandbox"] == {"ok": True, "isolated": True, "bwrap": shutil.which("bwrap")}


def test_healthz_is_degraded_while_sandbox_runs_cannot_be_isolated(client, db, settings, tmp_path):
    heartbeat()
    settings.QUENCH_SANDBOX_BWRAP = str(tmp_path / "no-such-bwrap")

    response = client.get("/healthz")

    assert response.status_code == 200  # Quench works; fix attempts are refused
    body = response.json()
    assert body["status"] == "degraded"
    sandbox = body["checks"]["sandbox"]
    assert sandbox["ok"] is False
    assert sandbox["isolated"] is False
    assert "bubblewrap was not found" in sandbox["problem"]
    assert "sandbox runs are refused" in sandbox["problem"]
    assert body["reasons"] == [f"sandbox: {sandbox['problem']}"]

    settings.QUENCH_SANDBOX_ALLOW_UNISOLATED = True
    body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert "NOT isolated" in body["checks"]["sandbox"]["problem"]

    # A failing critical check makes it failing (503).
    Heartbeat.objects.all().delete()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "failing"
    assert [reason.split(":")[0] for reason in response.json()["reasons"]] == ["scheduler", "sandbox"]


def test_healthz_notices_a_silent_scheduler(client, db):
    Heartbeat.objects.create(name="scheduler", beat_at=timezone.now() - timedelta(minutes=10))

    body = client.get("/healthz").json()

    assert body["checks"]["scheduler"]["ok"] is False
    assert "no heartbeat for" in body["checks"]["scheduler"]["problem"]


def test_healthz_notices_a_stuck_queue(client, db):
    from django_q.models import OrmQ

    heartbeat()
    OrmQ.objects.create(key="quench", payload="x", lock=timezone.now() - timedelta(minutes=30))

    body = client.get("/healthz").json()

    assert body["checks"]["queue"]["ok"] is False
    assert body["checks"]["queue"]["backlog"] == 1


@pytest.fixture
def token(make_integration):
    return make_integration("generic").raw_token


def test_metrics_count_events_by_source_and_outcome_and_open_incidents(client, post_json, token):
    body = {"service": "api", "title": "boom", "severity": "critical", "event_id": "e1"}
    post_json("/api/v1/ingest/events", body, token)
    post_json("/api/v1/ingest/events", body, token)  # a retry
    post_json("/api/v1/ingest/events", b"{broken", token)

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert 'quench_events_total{source="generic",outcome="opened"} 1' in text
    assert 'quench_events_total{source="generic",outcome="duplicate"} 1' in text
    assert 'quench_events_total{source="generic",outcome="rejected_invalid"} 1' in text
    assert 'quench_open_incidents{severity="P1"} 1' in text
    assert 'quench_open_incidents{severity="P0"} 0' in text


def test_every_rejection_reason_fits_the_counter(client, post_json, token):
    # "rejected_unauthenticated" is longer than the column once was: the flush failed (a 500).
    answer = post_json("/api/v1/ingest/events-v2", {"routing_key": "nope", "event_action": "trigger", "payload": {}})
    assert answer.status_code == 401
    response = client.get("/metrics")
    assert response.status_code == 200
    assert 'quench_events_total{source="events_v2",outcome="rejected_unauthenticated"} 1' in response.content.decode()


def test_health_and_metrics_answer_in_their_one_format_whatever_is_accepted(client, db):
    for accept in ("text/html", "application/xml", "text/plain", "application/json"):
        health = client.get("/healthz", HTTP_ACCEPT=accept)
        assert health.status_code == 503 and health["Content-Type"] == "application/json"
        assert health.json()["status"] == "failing"
        metrics = client.get("/metrics", HTTP_ACCEPT=accept)
        assert metrics.status_code == 200
        assert metrics["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert "# TYPE quench_events_total counter" in metrics.content.decode()
    assert client.post("/metrics").status_code == 405
    assert client.post("/healthz").status_code == 405


def test_health_and_metrics_are_in_the_api_schema(client, db):
    paths = client.get("/api/schema/", {"format": "json"}).json()["paths"]

    assert set(paths["/healthz"]["get"]["responses"]) == {"200", "503"}
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]

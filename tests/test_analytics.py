"""Analytics: figures(), /api/v1/stats and summary() against a fixture set whose figures are computed by hand."""

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents import analytics
from remediation.models import ApprovalRequest, Playbook
from tests.record_factories import (
    ActivityFactory,
    ApprovalFactory,
    DiagnosisFactory,
    EventFactory,
    ExecutionFactory,
    FixAttemptFactory,
    IncidentFactory,
)

pytestmark = pytest.mark.django_db
MINUTE = timedelta(minutes=1)


def build_fixture_set(now):
    """Seven incidents, six of them first seen in the last 7 days (see the expected figures below).

    A  P1  now-2d     ack +10m, resolved +60m, code fix verified; 3 fix attempts (1 failed, 1 rejected, 1 approved)
    B  P2  now-2d+1h  ack +20m, resolved +120m by the source (alertmanager)           [service payments]
    C  P1  now-1d     escalated after its proposal expired; 1 fix attempt
    D  P3  now-3h     escalated, no proposal
    E  P0  now-1h     still triggered
    G  P2  now-4d     ack +5m, resolved +30m by a playbook run
    F  P2  now-10d    resolved: outside the window
    """
    a = IncidentFactory(severity="P1", first_seen=now - timedelta(days=2), status="resolved")
    b = IncidentFactory(severity="P2", service="payments", first_seen=now - timedelta(days=2) + 60 * MINUTE)
    c = IncidentFactory(severity="P1", first_seen=now - timedelta(days=1), status="escalated")
    d = IncidentFactory(severity="P3", first_seen=now - timedelta(hours=3), status="escalated")
    e = IncidentFactory(severity="P0", first_seen=now - timedelta(hours=1), status="triggered")
    g = IncidentFactory(severity="P2", first_seen=now - timedelta(days=4), status="resolved")
    f = IncidentFactory(severity="P2", first_seen=now - timedelta(days=10), status="resolved")
    for incident, ack, resolved, actor in (
        (a, 10, 60, "alice"),
        (b, 20, 120, "source:alertmanager"),
        (g, 5, 30, "quench"),
        (f, 1, 2, "alice"),
    ):
        incident.acknowledged_at = incident.first_seen + ack * MINUTE
        incident.resolved_at = incident.first_seen + resolved * MINUTE
        incident.status = "resolved"
        incident.save()
        ActivityFactory(incident=incident, to_status="resolved", actor=actor, created_at=incident.resolved_at)

    # A: one failed attempt, a rejected proposal, an approved one that was carried out and verified.
    diagnosis_a = DiagnosisFactory(incident=a)
    FixAttemptFactory(diagnosis=diagnosis_a, number=1, status="failed")
    rejected = ApprovalFactory(
        diagnosis=diagnosis_a,
        fix_attempt=FixAttemptFactory(diagnosis=diagnosis_a, number=2, status="passed"),
        status="rejected",
    )
    approved_a = ApprovalFactory(
        diagnosis=diagnosis_a,
        fix_attempt=FixAttemptFactory(diagnosis=diagnosis_a, number=3, status="passed"),
        status="approved",
    )
    ExecutionFactory(approval=approved_a)
    # C: its only proposal expired.
    diagnosis_c = DiagnosisFactory(incident=c)
    expired = ApprovalFactory(
        diagnosis=diagnosis_c,
        fix_attempt=FixAttemptFactory(diagnosis=diagnosis_c, number=1, status="passed"),
        status="expired",
    )
    # G: a playbook run.
    playbook = Playbook.objects.create(name="restart", steps=[{"type": "wait", "name": "pause", "seconds": 1}])
    diagnosis_g = DiagnosisFactory(incident=g)
    approved_g = ApprovalFactory(
        diagnosis=diagnosis_g, kind="playbook", fix_attempt=None, playbook=playbook, status="approved"
    )
    ExecutionFactory(approval=approved_g)
    for approval, incident in ((rejected, a), (approved_a, a), (expired, c), (approved_g, g)):
        ApprovalRequest.objects.filter(pk=approval.pk).update(created_at=incident.first_seen + 5 * MINUTE)

    for _ in range(5):
        EventFactory(incident=a, received_at=now - timedelta(days=2) + MINUTE)
    EventFactory(incident=a, received_at=now - timedelta(days=8))  # before the window
    for _ in range(3):
        EventFactory(incident=b, received_at=now - timedelta(days=1))
    for _ in range(7):
        EventFactory(incident=e, received_at=now - 30 * MINUTE)
    for _ in range(4):
        EventFactory(incident=f, received_at=now - timedelta(days=10))
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f, "g": g}


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def records(now):
    return build_fixture_set(now)


def test_the_figures_match_the_hand_computed_ones(records, now):
    data = analytics.figures(7, now=now)

    assert data["days"] == 7
    assert data["incidents"]["total"] == 6
    assert data["incidents"]["by_severity"] == {"P0": 1, "P1": 2, "P2": 2, "P3": 1}
    by_day = {row["date"]: row for row in data["incidents"]["by_day"]}
    assert len(by_day) == 8  # the window touches 8 calendar days
    expected_days = {}
    for key in "abcdeg":
        day = records[key].first_seen.date().isoformat()  # TIME_ZONE is UTC in tests
        expected_days[day] = expected_days.get(day, 0) + 1
    assert {day: row["total"] for day, row in by_day.items() if row["total"]} == expected_days
    assert by_day[records["e"].first_seen.date().isoformat()]["P0"] == 1
    assert sum(row["total"] for row in data["incidents"]["by_day"]) == 6
    # MTTA: (10 + 20 + 5) / 3 minutes = 700 s; MTTR: (60 + 120 + 30) / 3 minutes = 4200 s.
    assert data["acknowledged"] == 3 and data["mtta_seconds"] == 700.0
    assert data["resolved"] == 3 and data["mttr_seconds"] == 4200.0
    assert data["endings"] == {
        "code_fix": 1,
        "playbook": 1,
        "human": 0,
        "source": 1,
        "expired": 1,
        "escalated": 1,
        "open": 1,
    }
    assert data["approvals"] == {"pending": 0, "approved": 2, "rejected": 1, "expired": 1, "superseded": 0}
    assert data["fix_attempts"] == {
        "total": 4,
        "per_incident": 0.67,
        "max": 3,
        "distribution": {"0": 4, "1": 1, "2": 0, "3+": 1},
    }
    assert [(row["incident_id"], row["events"]) for row in data["noisiest_fingerprints"]] == [
        (records["e"].pk, 7),
        (records["a"].pk, 5),
        (records["b"].pk, 3),
    ]
    assert data["noisiest_fingerprints"][0]["fingerprint"] == records["e"].fingerprint
    assert data["noisiest_services"] == [
        {"service": "shop", "events": 12, "incidents": 2},
        {"service": "payments", "events": 3, "incidents": 1},
    ]
    trend = {row["date"]: row for row in data["trend"]}
    four_days_ago = (now - timedelta(days=4)).date().isoformat()
    assert trend[four_days_ago] == {"date": four_days_ago, "mtta_seconds": 300.0, "mttr_seconds": 1800.0}


def test_a_resolved_incident_without_remediation_ended_by_a_human(now):
    incident = IncidentFactory(first_seen=now - timedelta(hours=2), status="resolved", resolved_at=now - MINUTE)
    ActivityFactory(incident=incident, to_status="resolved", actor="alice", created_at=now - MINUTE)

    assert analytics.figures(1, now=now)["endings"]["human"] == 1


def test_the_stats_api_returns_the_same_figures(records, now, client, engineer):
    client.force_login(engineer)
    response = client.get("/api/v1/stats?days=7")

    assert response.status_code == 200
    body = response.json()
    expected = analytics.figures(7, now=now)
    for key in (
        "incidents",
        "mtta_seconds",
        "mttr_seconds",
        "endings",
        "approvals",
        "fix_attempts",
        "noisiest_services",
    ):
        assert body[key] == expected[key], key
    assert body["mtta_seconds"] == 700.0 and body["mttr_seconds"] == 4200.0
    assert client.get("/api/v1/stats").json()["days"] == 30


@pytest.mark.parametrize("days", ["0", "366", "abc", "-3", "1.5"])
def test_a_bad_days_is_a_400_naming_the_field(client, engineer, days):
    client.force_login(engineer)
    response = client.get(f"/api/v1/stats?days={days}")

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "Invalid input." and "days" in body["detail"]


def test_the_stats_need_an_engineer(client, db):
    assert client.get("/api/v1/stats").status_code in (401, 403)


def test_the_stats_are_documented_in_openapi(client, db):
    schema = client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/stats"]["get"]
    assert [parameter["name"] for parameter in operation["parameters"]] == ["days"]
    properties = schema["components"]["schemas"]["Stats"]["properties"]
    assert {"mtta_seconds", "mttr_seconds", "endings", "approvals", "noisiest_fingerprints"} <= set(properties)
    assert "/api/v1/incidents/{id}/postmortem.md" in schema["paths"]


def test_the_daily_summary(records, now):
    summary = analytics.summary(days=1, now=now)

    # Within a day (the start is inclusive): C (P1, exactly a day ago), D (P3) and E (P0); none resolved.
    assert summary["incidents"] == 3
    assert summary["by_severity"] == {"P0": 1, "P1": 1, "P2": 0, "P3": 1}
    assert summary["mtta_seconds"] is None and summary["resolved"] == 0
    assert summary["text"].startswith(
        "Last 1 day(s): 3 new incident(s) (1 P0, 1 P1, 1 P3). Resolved 0; MTTA —, MTTR —."
    )
    assert "Endings: 1 expired, 1 escalated, 1 open." in summary["text"]
    assert f"Noisiest: #{records['e'].pk} " in summary["text"] and "(7 events)" in summary["text"]


def test_the_dashboard_page_shows_the_figures(records, admin_client):
    page = admin_client.get("/admin/incidents/incident/dashboard/?days=7").content.decode()

    assert '<div class="dashboard-card" id="card-incidents"><div class="figure">6</div>' in page
    assert '<div class="figure">11m</div>' in page  # MTTA 700 s
    assert '<div class="figure">1h 10m</div>' in page  # MTTR 4200 s
    assert '<svg class="quench-chart"' in page
    assert 'data-label="code fix">1</text>' in page and 'data-label="expired">1</text>' in page
    assert admin_client.get("/admin/incidents/incident/dashboard/?days=abc").status_code == 200  # falls back to 30


def test_a_persons_first_action_counts_as_the_response_when_nobody_acknowledged(now):
    incident = IncidentFactory(first_seen=now - timedelta(hours=2), status="remediating")
    ActivityFactory(incident=incident, actor="quench", to_status="diagnosing", created_at=now - 119 * MINUTE)
    ActivityFactory(incident=incident, actor="source:grafana", kind="note", created_at=now - 118 * MINUTE)
    ActivityFactory(incident=incident, actor="carol", to_status="remediating", created_at=now - 113 * MINUTE)

    data = analytics.figures(1, now=now)
    assert data["acknowledged"] == 1 and data["mtta_seconds"] == 420.0  # carol approved after 7 minutes

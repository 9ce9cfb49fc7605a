"""Alertmanager webhook payloads → Signals (pure: no database)."""

import copy
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings

from incidents.sources import alertmanager
from incidents.sources.base import PayloadError, SignalKind, SignalStatus
from tests.source_payloads import JSON, fixture_loader, mutated

load = fixture_loader("alertmanager")


def test_each_alert_of_a_group_becomes_a_signal():
    signals = alertmanager.parse(load("firing_two_alerts.json"))

    assert len(signals) == 2
    first = signals[0]
    assert first.source == "alertmanager"
    assert first.kind == SignalKind.ALERT
    assert first.status == SignalStatus.FIRING
    assert first.alertname == "HighErrorRate"
    assert first.title == "checkout 5xx ratio above 5% on 10.42.3.17:8000"
    assert first.message == "12.4% of requests to checkout returned 5xx over the last 5 minutes."
    assert first.service == "checkout"
    assert first.environment == "production"
    assert first.severity == "critical"
    assert first.labels["instance"] == "10.42.3.17:8000"
    assert first.annotations["runbook_url"].startswith("https://runbooks.example.com/")
    assert first.grouping_labels == ["alertname", "service"]
    assert first.occurred_at == datetime(2024, 5, 14, 9, 31, 45, 123456, tzinfo=UTC)
    assert first.source_id == "5c3a9b1f0e7d2a64:2024-05-14T09:31:45.123456789Z:firing"
    assert first.url.startswith("http://prometheus.monitoring.svc:9090/graph")
    assert first.dedup_key == ""
    assert first.payload["alert"]["fingerprint"] == "5c3a9b1f0e7d2a64"
    assert first.payload["group"]["receiver"] == "quench"
    assert signals[1].labels["instance"] == "10.42.5.2:8000"


def test_resolved_alert_uses_its_end_time_and_a_distinct_source_id():
    firing = alertmanager.parse(load("firing_two_alerts.json"))[0]
    resolved = alertmanager.parse(load("resolved.json"))[0]

    assert resolved.status == SignalStatus.RESOLVED
    assert resolved.occurred_at == datetime(2024, 5, 14, 9, 52, 45, 123456, tzinfo=UTC)
    assert resolved.source_id != firing.source_id
    assert resolved.source_id.startswith("5c3a9b1f0e7d2a64:")


def test_a_redelivered_notification_has_the_same_source_ids():
    first = [s.source_id for s in alertmanager.parse(load("firing_two_alerts.json"))]
    again = [s.source_id for s in alertmanager.parse(load("firing_two_alerts.json"))]
    assert first == again


def test_without_fingerprint_the_source_id_hashes_the_labels_in_any_order():
    payload = load("no_fingerprint.json")
    signal = alertmanager.parse(payload)[0]
    reordered = copy.deepcopy(payload)
    reordered["alerts"][0]["labels"] = dict(reversed(list(payload["alerts"][0]["labels"].items())))

    assert signal.source_id.endswith(":2018-08-03T09:52:26.739266876+02:00:firing")
    assert alertmanager.parse(reordered)[0].source_id == signal.source_id
    assert signal.service == "prometheus24"  # from the job label
    assert signal.title == "Test"  # no summary: the alertname


def test_documented_sample_payload_parses():
    signal = alertmanager.parse(load("probe_failure.json"))[0]
    assert signal.title == "BlackBox Probe Failure: https://server.example.org"
    assert signal.severity == "critical"
    assert signal.grouping_labels == ["alertname"]


def test_a_group_can_mix_firing_and_resolved_alerts():
    payload = load("firing_two_alerts.json")
    payload["alerts"][1]["status"] = "resolved"
    payload["alerts"][1]["endsAt"] = "2024-05-14T09:40:00Z"
    statuses = [s.status for s in alertmanager.parse(payload)]
    assert statuses == [SignalStatus.FIRING, SignalStatus.RESOLVED]


@pytest.mark.parametrize(
    ("word", "severity"),
    [
        ("critical", "critical"),
        ("page", "critical"),
        ("P1", "critical"),
        ("error", "error"),
        ("high", "error"),
        ("warning", "warning"),
        ("warn", "warning"),
        ("medium", "warning"),
        ("info", "info"),
        ("low", "info"),
        ("none", "info"),
        ("Critical", "critical"),
        ("whatever", ""),
    ],
)
def test_severity_label_is_normalized(word, severity):
    payload = load("probe_failure.json")
    payload["alerts"][0]["labels"]["severity"] = word
    assert alertmanager.parse(payload)[0].severity == severity


@pytest.mark.parametrize(
    ("labels", "service"),
    [
        ({"service": "api", "app": "web", "job": "node"}, "api"),
        ({"app": "web", "job": "node"}, "web"),
        ({"job": "node"}, "node"),
        ({"instance": "x"}, ""),
    ],
)
def test_service_comes_from_service_then_app_then_job(labels, service):
    payload = load("probe_failure.json")
    payload["alerts"][0]["labels"] = {"alertname": "A", **labels}
    assert alertmanager.parse(payload)[0].service == service


def test_environment_comes_from_env_labels_but_not_namespace():
    payload = load("probe_failure.json")
    payload["alerts"][0]["labels"] = {"alertname": "A", "namespace": "monitoring"}
    assert alertmanager.parse(payload)[0].environment == ""
    payload["alerts"][0]["labels"]["environment"] = "staging"
    assert alertmanager.parse(payload)[0].environment == "staging"


def test_message_falls_back_to_the_message_annotation():
    payload = load("probe_failure.json")
    payload["alerts"][0]["annotations"] = {"message": "disk almost full"}
    signal = alertmanager.parse(payload)[0]
    assert signal.message == "disk almost full"
    assert signal.title == "ProbeFailure"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p.pop("alerts"), "alerts"),
        (lambda p: p.update(alerts=[]), "alerts"),
        (lambda p: p.update(alerts={"a": 1}), "alerts"),
        (lambda p: p["alerts"].__setitem__(0, "oops"), "alerts[0]"),
        (lambda p: p["alerts"][0].update(status="pending"), "alerts[0].status"),
        (lambda p: p["alerts"][0].pop("status"), "alerts[0].status"),
        (lambda p: p["alerts"][0].pop("labels"), "alerts[0].labels"),
        (lambda p: p["alerts"][0]["labels"].update(severity=3), "alerts[0].labels.severity"),
        (lambda p: p["alerts"][0].update(annotations=["x"]), "alerts[0].annotations"),
        (lambda p: p["alerts"][0].update(startsAt="yesterday"), "alerts[0].startsAt"),
        (lambda p: p["alerts"][0].pop("startsAt"), "alerts[0].startsAt"),
        (lambda p: p["alerts"][0].update(endsAt=12.5e300), "alerts[0].endsAt"),
        (lambda p: p.update(version="1"), "version"),
        (lambda p: p.update(status="maybe"), "status"),
        (lambda p: p.update(truncatedAlerts=-1), "truncatedAlerts"),
        (lambda p: p.update(groupLabels="alertname"), "groupLabels"),
    ],
)
def test_schema_violations_name_the_field(change, field):
    payload = load("probe_failure.json")
    change(payload)
    with pytest.raises(PayloadError) as caught:
        alertmanager.parse(payload)
    assert field in caught.value.detail


def test_grafana_payload_is_refused_with_a_pointer():
    with pytest.raises(PayloadError) as caught:
        alertmanager.parse({**load("probe_failure.json"), "version": "1"})
    assert "Grafana" in caught.value.detail["version"]


def test_every_problem_is_reported_at_once():
    payload = load("firing_two_alerts.json")
    payload["alerts"][0]["status"] = "nope"
    payload["alerts"][1]["startsAt"] = "nope"
    with pytest.raises(PayloadError) as caught:
        alertmanager.parse(payload)
    assert set(caught.value.detail) == {"alerts[0].status", "alerts[1].startsAt"}


@pytest.mark.parametrize("payload", [None, [], "alerts", 4, True])
def test_a_body_that_is_not_an_object_is_refused(payload):
    with pytest.raises(PayloadError) as caught:
        alertmanager.parse(payload)
    assert "body" in caught.value.detail


def _parses_or_refuses(payload):
    try:
        signals = alertmanager.parse(payload)
    except PayloadError as error:
        assert error.detail
        return
    assert isinstance(signals, list)
    assert all(s.source == "alertmanager" for s in signals)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_random_json_gives_signals_or_a_payload_error(payload):
    _parses_or_refuses(payload)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(load("firing_two_alerts.json")))
def test_a_damaged_real_payload_gives_signals_or_a_payload_error(payload):
    _parses_or_refuses(payload)

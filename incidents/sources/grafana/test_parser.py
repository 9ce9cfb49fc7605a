"""Grafana alerting webhook payloads → Signals (pure: no database)."""

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings

from incidents.sources import grafana
from incidents.sources.base import PayloadError, SignalKind, SignalStatus
from tests.source_payloads import JSON, fixture_loader, mutated

load = fixture_loader("grafana")


def test_the_documented_example_gives_one_signal_per_alert():
    signals = grafana.parse(load("firing_docs_example.json"))

    assert [s.alertname for s in signals] == ["High memory usage", "High CPU usage"]
    first = signals[0]
    assert first.source == "grafana"
    assert first.kind == SignalKind.ALERT
    assert first.status == SignalStatus.FIRING
    assert first.title == "This alert was triggered for zone us-1"
    assert first.message == "The system has high memory usage"
    assert first.labels == {"alertname": "High memory usage", "team": "blue", "zone": "us-1"}
    assert first.grouping_labels == []
    assert first.occurred_at == datetime(2021, 10, 12, 7, 51, 3, 157076, tzinfo=UTC)
    assert first.source_id == "c6eadffa33fcdf37:2021-10-12T09:51:03.157076+02:00:firing"
    assert first.url == "https://play.grafana.org/alerting/1afz29v7z/edit"
    assert first.payload["alert"]["values"] == {"B": 44.23943737541908, "C": 1}
    assert first.payload["group"]["orgId"] == 1
    assert first.payload["group"]["state"] == "alerting"


def test_service_environment_and_severity_come_from_labels():
    signal = grafana.parse(load("value_string_service.json"))[0]
    assert signal.service == "checkout"
    assert signal.environment == "staging"
    assert signal.severity == "warning"
    assert signal.grouping_labels == ["alertname", "grafana_folder"]


def test_value_string_is_the_message_when_the_rule_has_no_description():
    signal = grafana.parse(load("value_string_service.json"))[0]
    assert signal.message.startswith("[ var='A' labels={service=checkout} value=1.834 ]")


def test_description_wins_over_value_string():
    payload = load("value_string_service.json")
    payload["alerts"][0]["annotations"]["description"] = "p99 is 1.8s"
    assert grafana.parse(payload)[0].message == "p99 is 1.8s"


def test_resolved_alert():
    firing = grafana.parse(load("firing_docs_example.json"))[0]
    resolved = grafana.parse(load("resolved.json"))[0]
    assert resolved.status == SignalStatus.RESOLVED
    assert resolved.occurred_at == datetime(2021, 10, 12, 8, 6, 3, 157076, tzinfo=UTC)
    assert resolved.source_id != firing.source_id


def test_go_zero_end_time_means_no_end():
    signal = grafana.parse(load("firing_docs_example.json"))[0]
    assert signal.occurred_at.year == 2021  # startsAt, not 0001-01-01


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p.update(version="4"), "version"),
        (lambda p: p.update(orgId="1"), "orgId"),
        (lambda p: p.update(title=["x"]), "title"),
        (lambda p: p["alerts"][0].update(values={"B": "high"}), "alerts[0].values.B"),
        (lambda p: p["alerts"][0].update(values=[1, 2]), "alerts[0].values"),
        (lambda p: p["alerts"][0].update(silenceURL=5), "alerts[0].silenceURL"),
        (lambda p: p["alerts"][0].update(valueString={}), "alerts[0].valueString"),
        (lambda p: p["alerts"][1].update(status="alerting"), "alerts[1].status"),
        (lambda p: p.update(alerts=[]), "alerts"),
    ],
)
def test_schema_violations_name_the_field(change, field):
    payload = load("firing_docs_example.json")
    change(payload)
    with pytest.raises(PayloadError) as caught:
        grafana.parse(payload)
    assert field in caught.value.detail


def test_alertmanager_payload_is_refused_with_a_pointer():
    payload = load("firing_docs_example.json")
    payload["version"] = "4"
    with pytest.raises(PayloadError) as caught:
        grafana.parse(payload)
    assert "Alertmanager" in caught.value.detail["version"]


def test_legacy_alerting_payload_is_refused_clearly():
    legacy = {
        "title": "[Alerting] Panel Title alert",
        "ruleId": 1,
        "ruleName": "Panel Title alert",
        "state": "alerting",
        "evalMatches": [{"value": 100, "metric": "High value", "tags": None}],
        "orgId": 1,
        "dashboardId": 1,
        "panelId": 1,
        "tags": {},
        "ruleUrl": "http://localhost:3000/d/hZ7BuVbWz/test-dashboard?fullscreen&edit&tab=alert&panelId=1&orgId=1",
        "message": "Someone is testing the alert notification within Grafana.",
    }
    with pytest.raises(PayloadError) as caught:
        grafana.parse(legacy)
    assert "Legacy" in caught.value.message


def _parses_or_refuses(payload):
    try:
        signals = grafana.parse(payload)
    except PayloadError as error:
        assert error.detail
        return
    assert all(s.source == "grafana" for s in signals)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_random_json_gives_signals_or_a_payload_error(payload):
    _parses_or_refuses(payload)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(load("value_string_service.json")))
def test_a_damaged_real_payload_gives_signals_or_a_payload_error(payload):
    _parses_or_refuses(payload)

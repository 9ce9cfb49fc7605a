"""PagerDuty Events API v2 compatible bodies → Signals (pure: no database)."""

import copy
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings

from incidents.sources import events_v2
from incidents.sources.base import PayloadError, SignalKind, SignalStatus
from tests.source_payloads import JSON, fixture_loader, mutated

load = fixture_loader("events_v2")


def test_the_documented_trigger_maps_to_a_firing_alert():
    [signal] = events_v2.parse(load("trigger_docs_example.json"))

    assert signal.source == "events_v2"
    assert signal.kind == SignalKind.ALERT
    assert signal.status == SignalStatus.FIRING
    assert signal.title == "Example alert on host1.example.com"
    assert signal.severity == "info"
    assert signal.service == "postgres"  # no custom_details.service: the component
    assert signal.alertname == "deploy"
    assert signal.labels == {
        "source": "monitoringtool:cloudvendor:central-region-dc-01:852559987:cluster/api-stats-prod-003",
        "component": "postgres",
        "group": "prod-datapipe",
        "class": "deploy",
    }
    assert signal.message == "ping time: 1500ms\nload avg: 0.75"
    assert signal.occurred_at == datetime(2015, 7, 17, 8, 42, 58, 315000, tzinfo=UTC)
    assert signal.dedup_key == "samplekeyhere"
    assert signal.source_id == "samplekeyhere:trigger:2015-07-17T08:42:58.315+0000"
    assert signal.url == "https://example.com/"  # the first link


def test_the_routing_key_never_reaches_the_signal():
    payload = load("trigger_service_details.json")
    [signal] = events_v2.parse(payload)
    assert "routing_key" not in signal.payload
    assert payload["routing_key"] not in json.dumps(signal.payload)
    assert "routing_key" in payload  # the caller's body is left as it was


def test_service_and_environment_from_custom_details():
    [signal] = events_v2.parse(load("trigger_service_details.json"))
    assert signal.service == "checkout"
    assert signal.environment == "production"
    assert signal.severity == "critical"
    assert signal.url == "https://app.datadoghq.com/monitors/123456"  # no links: client_url


def test_service_falls_back_to_the_source():
    [signal] = events_v2.parse(load("trigger_minimal.json"))
    assert signal.service == "kestra"
    assert signal.dedup_key == ""


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("acknowledge_docs_example.json", SignalStatus.ACKNOWLEDGED),
        ("resolve_docs_example.json", SignalStatus.RESOLVED),
    ],
)
def test_acknowledge_and_resolve(name, status):
    [signal] = events_v2.parse(load(name))
    assert signal.status == status
    assert signal.dedup_key == "dedupkeyhere"


def test_acknowledge_ignores_a_payload_as_pagerduty_does():
    payload = {**load("acknowledge_docs_example.json"), "payload": {"severity": "loud"}}
    assert events_v2.parse(payload)[0].status == SignalStatus.ACKNOWLEDGED


def test_without_a_timestamp_the_source_id_is_a_hash_of_the_body_without_routing_key():
    minimal = load("trigger_minimal.json")
    [first] = events_v2.parse(minimal)
    [other_key] = events_v2.parse({**minimal, "routing_key": "another"})
    changed = copy.deepcopy(minimal)
    changed["payload"]["summary"] = "Another alert"
    [different] = events_v2.parse(changed)

    assert len(first.source_id) == 64
    assert first.source_id == other_key.source_id
    assert first.source_id != different.source_id


def test_a_long_source_id_is_hashed_to_fit():
    payload = load("trigger_service_details.json")
    payload["dedup_key"] = "k" * 255
    [signal] = events_v2.parse(payload)
    assert len(signal.source_id) == 64


def test_custom_details_may_be_a_string():
    payload = load("trigger_minimal.json")
    payload["payload"]["custom_details"] = "disk /var at 97%"
    assert events_v2.parse(payload)[0].message == "disk /var at 97%"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p.pop("event_action"), "event_action"),
        (lambda p: p.update(event_action="escalate"), "event_action"),
        (lambda p: p.update(dedup_key="d" * 256), "dedup_key"),
        (lambda p: p.update(dedup_key=42), "dedup_key"),
        (lambda p: p.pop("payload"), "payload"),
        (lambda p: p.update(payload="text"), "payload"),
        (lambda p: p["payload"].pop("summary"), "payload.summary"),
        (lambda p: p["payload"].update(summary=""), "payload.summary"),
        (lambda p: p["payload"].update(summary="s" * 1025), "payload.summary"),
        (lambda p: p["payload"].pop("source"), "payload.source"),
        (lambda p: p["payload"].pop("severity"), "payload.severity"),
        (lambda p: p["payload"].update(severity="high"), "payload.severity"),
        (lambda p: p["payload"].update(timestamp="last tuesday"), "payload.timestamp"),
        (lambda p: p["payload"].update(timestamp=1715679667), "payload.timestamp"),
        (lambda p: p["payload"].update(component=["db"]), "payload.component"),
        (lambda p: p.update(images=[{"href": "https://example.com"}]), "images[0].src"),
        (lambda p: p.update(links=[{"text": "no href"}]), "links[0].href"),
        (lambda p: p.update(links="https://example.com"), "links"),
        (lambda p: p.update(client_url=3), "client_url"),
    ],
)
def test_documented_rules_are_enforced(change, field):
    payload = load("trigger_docs_example.json")
    change(payload)
    with pytest.raises(PayloadError) as caught:
        events_v2.parse(payload)
    assert field in caught.value.detail
    assert caught.value.message == "Event object is invalid"


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_acknowledge_and_resolve_need_a_dedup_key(action):
    with pytest.raises(PayloadError) as caught:
        events_v2.parse({"routing_key": "k", "event_action": action})
    assert "dedup_key" in caught.value.detail


def test_a_summary_of_exactly_1024_characters_is_accepted():
    payload = load("trigger_minimal.json")
    payload["payload"]["summary"] = "s" * 1024
    assert len(events_v2.parse(payload)[0].title) == 1024


def test_a_body_that_is_not_an_object_is_refused():
    with pytest.raises(PayloadError):
        events_v2.parse([load("trigger_minimal.json")])


def _parses_or_refuses(payload):
    try:
        signals = events_v2.parse(payload)
    except PayloadError as error:
        assert error.detail
        return
    assert len(signals) == 1
    assert "routing_key" not in signals[0].payload


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_random_json_gives_a_signal_or_a_payload_error(payload):
    _parses_or_refuses(payload)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(load("trigger_docs_example.json")))
def test_a_damaged_real_payload_gives_a_signal_or_a_payload_error(payload):
    _parses_or_refuses(payload)

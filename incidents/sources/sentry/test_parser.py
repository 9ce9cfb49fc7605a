"""Sentry webhook payloads → Signals (pure: no database)."""

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incidents.sources import sentry
from incidents.sources.base import PayloadError, SignalKind, SignalStatus
from incidents.sources.traceback import parse_python_traceback
from tests.source_payloads import JSON, fixture_loader, mutated

load = fixture_loader("sentry")


def test_a_python_issue_alert_maps_to_an_error_signal():
    payload = load("event_alert_django.json")
    [signal] = sentry.parse(payload)

    assert signal.source == "sentry"
    assert signal.kind == SignalKind.ERROR
    assert signal.status == SignalStatus.FIRING
    assert signal.exception_type == "ReadTimeout"
    assert signal.exception_value.startswith("HTTPSConnectionPool(host='api.payments.example.com'")
    assert signal.title.startswith("ReadTimeout: HTTPSConnectionPool")
    assert signal.severity == "error"
    assert signal.service == "checkout"  # project slug from the event's API url
    assert signal.environment == "production"
    assert signal.labels["release"] == "checkout@2024.05.14+3f9a1c2"
    assert signal.labels["server_name"] == "checkout-web-7d9f8c6b5-x2kqz"
    assert signal.labels["sentry_rule"] == "Checkout errors to Quench"
    assert signal.path == "/api/orders/81723/checkout"  # no host, no query
    assert signal.method == "POST"
    assert signal.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert signal.occurred_at == datetime(2024, 5, 14, 9, 41, 7, 318000, tzinfo=UTC)
    assert signal.source_id == "9f2c1a7e4b3d4e0f8a6b5c4d3e2f1a0b"
    assert signal.dedup_key == "5102938475"
    assert (
        signal.url == "https://sentry.io/organizations/acme/issues/5102938475/events/9f2c1a7e4b3d4e0f8a6b5c4d3e2f1a0b/"
    )
    assert signal.payload is payload


def test_frames_come_from_the_last_chained_exception_outermost_first():
    [signal] = sentry.parse(load("event_alert_django.json"))

    assert [(f.module, f.function) for f in signal.frames] == [
        ("django.core.handlers.exception", "inner"),
        ("django.core.handlers.base", "_get_response"),
        ("django.views.decorators.http", "inner"),
        ("shop.orders.views", "checkout"),
        ("shop.payments.gateway", "charge"),
        ("requests.sessions", "post"),
        ("requests.sessions", "request"),
        ("requests.sessions", "send"),
        ("requests.adapters", "send"),
    ]
    assert [f.in_app for f in signal.frames] == [False, False, False, True, True, False, False, False, False]
    checkout = signal.frames[3]
    assert checkout.filename == "shop/orders/views.py"
    assert checkout.lineno == 88
    assert checkout.context_line == "receipt = gateway.charge(order, idempotency_key=order.payment_key)"


def test_a_python_traceback_text_is_rendered_from_the_frames():
    [signal] = sentry.parse(load("event_alert_django.json"))
    exc_type, exc_value, frames = parse_python_traceback(signal.traceback)
    assert exc_type == "ReadTimeout"
    assert exc_value == signal.exception_value
    assert [(f.function, f.lineno) for f in frames] == [(f.function, f.lineno) for f in signal.frames]


@pytest.mark.parametrize(
    ("name", "title", "dedup_key", "source_id"),
    [
        (
            "event_alert_docs_example.json",
            "ReferenceError: heck is not defined",
            "1117540176",
            "e4874d664c3540c1a32eab185f12c5ab",
        ),
        (
            "error_created_docs_example.json",
            "ReferenceError: blooopy is not defined",
            "1170820242",
            "bb78c1407cea4519aa397afc059c793d",
        ),
        (
            "plugin_webhook_docs_example.json",
            "ReferenceError: hello is not defined",
            "1385042923",
            "af17d39f6a5d4c19ae5a735043a3bd97",
        ),
    ],
)
def test_documented_event_payloads(name, title, dedup_key, source_id):
    [signal] = sentry.parse(load(name))
    assert signal.kind == SignalKind.ERROR
    assert signal.title == title
    assert signal.dedup_key == dedup_key
    assert signal.source_id == source_id
    assert signal.exception_type == "ReferenceError"
    assert signal.frames and not any(f.in_app for f in signal.frames)
    assert signal.path == "/runner"
    assert signal.method == ""
    assert signal.occurred_at is not None


def test_documented_event_payloads_name_the_project():
    assert sentry.parse(load("event_alert_docs_example.json"))[0].service == "front-end"
    [plugin] = sentry.parse(load("plugin_webhook_docs_example.json"))
    assert plugin.service == "meow"
    assert plugin.url == "https://sentry.io/organizations/meredith/issues/1385042923/?referrer=webhooks_plugin"
    assert plugin.labels["user"] == "ip:38.140.60.234"  # "sentry:user" without its prefix


def test_issue_created_opens_and_issue_resolved_resolves_the_same_key():
    [created] = sentry.parse(load("issue_created_docs_example.json"))
    [resolved] = sentry.parse(load("issue_resolved.json"))

    assert created.status == SignalStatus.FIRING
    assert resolved.status == SignalStatus.RESOLVED
    assert created.dedup_key == resolved.dedup_key == "1170820242"
    assert created.service == "front-end"
    assert created.exception_type == "ReferenceError"
    assert created.title == "ReferenceError: blooopy is not defined"
    assert created.source_id != resolved.source_id
    # an event alert for the same issue lands on the same key
    assert sentry.parse(load("error_created_docs_example.json"))[0].dedup_key == created.dedup_key


def test_issue_unresolved_fires_again():
    payload = load("issue_resolved.json")
    payload["action"] = "unresolved"
    assert sentry.parse(payload)[0].status == SignalStatus.FIRING


@pytest.mark.parametrize("action", ["assigned", "archived", "ignored"])
def test_issue_triage_actions_are_accepted_and_ignored(action):
    payload = load("issue_assigned.json")
    payload["action"] = action
    assert sentry.parse(payload) == []


def test_resources_quench_does_not_handle_are_accepted_and_ignored():
    assert sentry.parse(load("installation_created_docs_example.json")) == []
    assert sentry.parse({"action": "created", "data": {"comment": {"text": "hi"}}}) == []


def test_metric_alert():
    [signal] = sentry.parse(load("metric_alert_resolved_docs_example.json"))
    assert signal.kind == SignalKind.ALERT
    assert signal.status == SignalStatus.RESOLVED
    assert signal.title == "Resolved: Too many errors"
    assert signal.alertname == "Too many errors"
    assert signal.service == "bar"
    assert signal.dedup_key == "metric_alert:4"

    critical = load("metric_alert_resolved_docs_example.json")
    critical["action"] = "critical"
    [firing] = sentry.parse(critical)
    assert firing.status == SignalStatus.FIRING
    assert firing.severity == "critical"
    assert firing.dedup_key == signal.dedup_key


@pytest.mark.parametrize(
    ("level", "severity"),
    [("fatal", "critical"), ("error", "error"), ("warning", "warning"), ("info", "info"), ("debug", "info")],
)
def test_level_maps_to_severity(level, severity):
    payload = load("error_created_docs_example.json")
    payload["data"]["error"]["level"] = level
    assert sentry.parse(payload)[0].severity == severity


def test_tags_may_be_key_value_objects():
    payload = load("error_created_docs_example.json")
    payload["data"]["error"]["tags"] = [
        {"key": "service", "value": "billing"},
        {"key": "environment", "value": "staging"},
    ]
    [signal] = sentry.parse(payload)
    assert signal.service == "billing"
    assert signal.environment == "staging"


def test_undecided_in_app_is_derived_from_the_path():
    payload = load("event_alert_django.json")
    frames = payload["data"]["event"]["exception"]["values"][-1]["stacktrace"]["frames"]
    for frame in frames:
        frame["in_app"] = None
    [signal] = sentry.parse(payload)
    assert [f.in_app for f in signal.frames] == [False, False, False, True, True, False, False, False, False]


def test_an_event_without_exception_uses_its_message():
    payload = load("error_created_docs_example.json")
    event = payload["data"]["error"]
    del event["exception"], event["metadata"], event["title"]
    event["logentry"] = {"formatted": "Payment provider returned 502"}
    [signal] = sentry.parse(payload)
    assert signal.title == "Payment provider returned 502"
    assert signal.message == "Payment provider returned 502"
    assert signal.frames == []
    assert signal.traceback == ""


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p.update(data="x"), "data"),
        (lambda p: p["data"].update(error=[1]), "data.error"),
        (lambda p: p["data"]["error"].update(level="loud"), "data.error.level"),
        (lambda p: p["data"]["error"].update(datetime="soon"), "data.error.datetime"),
        (lambda p: p["data"]["error"].update(tags="a:b"), "data.error.tags"),
        (lambda p: p["data"]["error"]["tags"].append(["only-key"]), "data.error.tags[9]"),
        (lambda p: p["data"]["error"]["exception"].update(values={}), "data.error.exception.values"),
        (
            lambda p: p["data"]["error"]["exception"]["values"][0]["stacktrace"]["frames"][0].update(lineno="3"),
            "data.error.exception.values[0].stacktrace.frames[0].lineno",
        ),
        (lambda p: p["data"]["error"].update(request=[]), "data.error.request"),
    ],
)
def test_schema_violations_name_the_field(change, field):
    payload = load("error_created_docs_example.json")
    change(payload)
    with pytest.raises(PayloadError) as caught:
        sentry.parse(payload)
    assert field in caught.value.detail


def test_unknown_issue_action_is_refused():
    payload = load("issue_created_docs_example.json")
    payload["action"] = "exploded"
    with pytest.raises(PayloadError) as caught:
        sentry.parse(payload)
    assert "action" in caught.value.detail


@pytest.mark.parametrize("payload", [None, [], "x", {}, {"hello": "world"}])
def test_bodies_that_are_not_sentry_webhooks_are_refused(payload):
    with pytest.raises(PayloadError):
        sentry.parse(payload)


def _parses_or_refuses(payload):
    try:
        signals = sentry.parse(payload)
    except PayloadError as error:
        assert error.detail
        return
    assert all(s.source == "sentry" for s in signals)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_random_json_gives_signals_or_a_payload_error(payload):
    _parses_or_refuses(payload)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(load("event_alert_django.json")))
def test_a_damaged_issue_alert_gives_signals_or_a_payload_error(payload):
    _parses_or_refuses(payload)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(
        [
            "issue_created_docs_example.json",
            "plugin_webhook_docs_example.json",
            "metric_alert_resolved_docs_example.json",
        ]
    ).flatmap(lambda name: mutated(load(name)))
)
def test_other_damaged_payloads_give_signals_or_a_payload_error(payload):
    _parses_or_refuses(payload)

"""Quench's generic JSON events → Signals (pure: no database)."""

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incidents.sources import generic
from incidents.sources.base import PayloadError, SignalKind, SignalStatus
from tests.source_payloads import JSON, fixture_loader, mutated

load = fixture_loader("generic")


def event(**fields):
    return {"service": "payments", "title": "Checkout failing", **fields}


def test_a_crash_with_a_traceback_is_an_error_with_frames():
    payload = load("single_crash.json")
    [signal] = generic.parse(payload)

    assert signal.source == "generic"
    assert signal.kind == SignalKind.ERROR
    assert signal.status == SignalStatus.FIRING
    assert signal.service == "payments"
    assert signal.environment == "production"
    assert signal.title == "KeyError: 'currency'"
    assert signal.severity == "error"
    assert signal.exception_type == "KeyError"
    assert signal.exception_value == "'currency'"
    assert [(f.module, f.function, f.in_app) for f in signal.frames] == [
        ("django.core.handlers.exception", "inner", False),
        ("django.core.handlers.base", "_get_response", False),
        ("payments.views", "charge", True),
    ]
    assert signal.traceback == payload["traceback"]
    assert signal.path == "/api/orders/1234/pay"
    assert signal.method == "POST"
    assert signal.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert signal.labels == {"region": "eu-west-1", "pod": "payments-6c9d7b-4xk2p", "http_status": "500"}
    assert signal.occurred_at == datetime(2024, 5, 14, 9, 41, 7, 318000, tzinfo=UTC)
    assert signal.source_id == "b0f6f0c4-6a0e-4d5c-9d7c-3f1e8a2b9c10"
    assert signal.payload["host"] == "payments-6c9d7b-4xk2p"  # unknown fields are kept


def test_a_batch_gives_one_signal_per_event_in_order():
    signals = generic.parse(load("batch.json"))
    assert [s.status for s in signals] == [SignalStatus.FIRING, SignalStatus.RESOLVED, SignalStatus.FIRING]
    assert [s.kind for s in signals] == [SignalKind.ALERT] * 3
    assert signals[0].dedup_key == signals[1].dedup_key == "search-es-01-health"
    assert signals[0].occurred_at == datetime(2024, 5, 14, 8, 0, tzinfo=UTC)
    assert signals[2].labels == {"queue": "emails", "depth": "10342"}


def test_the_traceback_gives_the_exception_type_when_it_is_missing():
    [signal] = generic.parse(
        event(traceback='Traceback (most recent call last):\n  File "app/x.py", line 1, in f\nValueError: bad')
    )
    assert signal.kind == SignalKind.ERROR
    assert signal.exception_type == "ValueError"
    assert signal.exception_value == "bad"


def test_an_exception_type_alone_makes_an_error():
    [signal] = generic.parse(event(exception_type="requests.exceptions.Timeout"))
    assert signal.kind == SignalKind.ERROR
    assert signal.frames == []


@pytest.mark.parametrize(
    ("given_severity", "severity", "priority"),
    [
        ("critical", "critical", None),
        ("ERROR", "error", None),
        ("warning", "warning", None),
        ("info", "info", None),
        ("P0", "critical", "P0"),
        ("p1", "critical", "P1"),
        ("P2", "error", "P2"),
        ("P3", "warning", "P3"),
    ],
)
def test_severity_and_priorities(given_severity, severity, priority):
    [signal] = generic.parse(event(severity=given_severity))
    assert signal.severity == severity
    assert signal.labels.get("priority") == priority


def test_an_explicit_priority_label_wins_over_the_severity_priority():
    [signal] = generic.parse(event(severity="P0", labels={"priority": "P1"}))
    assert signal.labels["priority"] == "P1"


def test_labels_numbers_and_booleans_become_text_and_nulls_are_dropped():
    [signal] = generic.parse(event(labels={"code": 503, "ratio": 0.25, "canary": True, "gone": None, "zone": "b"}))
    assert signal.labels == {"code": "503", "ratio": "0.25", "canary": "true", "zone": "b"}


def test_naive_times_are_utc():
    [signal] = generic.parse(event(occurred_at="2024-05-14T10:00:00"))
    assert signal.occurred_at == datetime(2024, 5, 14, 10, 0, tzinfo=UTC)


def test_a_full_url_as_path_is_reduced_to_its_path():
    [signal] = generic.parse(event(path="https://shop.example.com/cart?id=4#top"))
    assert signal.path == "/cart"
    [signal] = generic.parse(event(path="/cart?id=4"))
    assert signal.path == "/cart"


def test_source_id_rules():
    [with_id] = generic.parse(event(event_id="abc-1"))
    [timed] = generic.parse(event(occurred_at="2024-05-14T10:00:00Z"))
    [timed_again] = generic.parse(event(occurred_at="2024-05-14T10:00:00Z"))
    [untimed] = generic.parse(event())
    assert with_id.source_id == "abc-1"
    assert len(timed.source_id) == 64
    assert timed.source_id == timed_again.source_id
    assert untimed.source_id == ""


def test_message_alone_is_enough():
    [signal] = generic.parse({"service": "worker", "message": "queue stuck\nsince 10:00"})
    assert signal.title == ""
    assert signal.message == "queue stuck\nsince 10:00"


@pytest.mark.parametrize(
    ("fields", "field", "problem"),
    [
        ({"service": None}, "service", "is required"),
        ({"service": "  "}, "service", "must not be empty"),
        ({"service": "s" * 201}, "service", "at most 200"),
        ({"service": 7}, "service", "must be a string"),
        ({"title": None, "message": None}, "title", "title or message is required"),
        ({"severity": "sev1"}, "severity", "must be one of critical, error, warning, info, P0-P3"),
        ({"severity": 2}, "severity", "must be one of"),
        ({"method": "FETCH"}, "method", "HTTP method"),
        ({"labels": {"a": {"b": 1}}}, "labels.a", "must be a string, number or boolean"),
        ({"labels": ["a"]}, "labels", "must be an object"),
        ({"occurred_at": "14/05/2024"}, "occurred_at", "ISO 8601"),
        ({"dedup_key": "d" * 256}, "dedup_key", "at most 255"),
        ({"status": "open"}, "status", "firing, resolved"),
        ({"traceback": ["line"]}, "traceback", "must be a string"),
    ],
)
def test_field_problems_are_named(fields, field, problem):
    with pytest.raises(PayloadError) as caught:
        generic.parse({k: v for k, v in event(**fields).items() if v is not None})
    assert problem in caught.value.detail[field]


def test_problems_in_a_batch_carry_the_index():
    batch = [event(), event(), event(), event(severity="urgent"), "nope"]
    with pytest.raises(PayloadError) as caught:
        generic.parse(batch)
    assert caught.value.detail == {
        "[3].severity": "must be one of critical, error, warning, info, P0-P3",
        "[4]": "must be an object, not string",
    }


def test_batch_limits():
    with pytest.raises(PayloadError):
        generic.parse([])
    with pytest.raises(PayloadError):
        generic.parse([event()] * 1001)
    assert len(generic.parse([event()] * 1000)) == 1000


@pytest.mark.parametrize("payload", [None, "event", 3, True])
def test_a_body_that_is_neither_object_nor_array_is_refused(payload):
    with pytest.raises(PayloadError) as caught:
        generic.parse(payload)
    assert "body" in caught.value.detail


def test_fields_describe_every_documented_field():
    assert set(generic.FIELDS) == {
        "service", "environment", "title", "message", "severity", "exception_type", "traceback", "path",
        "method", "trace_id", "labels", "occurred_at", "dedup_key", "status", "event_id",
    }  # fmt: skip
    assert generic.FIELDS["service"][1] is True
    assert all(isinstance(description, str) and description for _, _, description in generic.FIELDS.values())


def _parses_or_refuses(payload):
    try:
        signals = generic.parse(payload)
    except PayloadError as error:
        assert error.detail
        return
    assert signals and all(s.service for s in signals)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_random_json_gives_signals_or_a_payload_error(payload):
    _parses_or_refuses(payload)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["single_crash.json", "batch.json"]).flatmap(lambda name: mutated(load(name))))
def test_a_damaged_real_payload_gives_signals_or_a_payload_error(payload):
    _parses_or_refuses(payload)

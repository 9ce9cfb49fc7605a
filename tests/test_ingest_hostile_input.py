"""Hostile input on every ingest endpoint: a 400 with a JSON body (or a safe store), never a 500, never half-stored.

Each endpoint gets its documented example with one value made hostile: non-finite numbers
(NaN, Infinity, -Infinity, 1e400), integers beyond 64 bits, deep nesting, NUL characters
and lone surrogates, an epoch number where the format documents a timestamp string, and
every field of the example replaced by a value of each wrong type. The Sentry SDK
endpoints have the same cases in test_ingest_sentry_sdk.py.
"""

from __future__ import annotations

import copy
import json

import pytest

from incidents.models import Complaint, Event, Incident
from tests.source_payloads import _paths, fixture_loader

MARK = "__HOSTILE__"


def _complaint() -> dict:
    return {
        "id": "ticket-8812",
        "customer_id": "cus_1042",
        "channel": "support",
        "service": "shop",
        "message": "Checkout fails: my card was charged but the order page shows an error.",
        "reported_at": "2026-11-23T14:05:00Z",
    }


# kind, URL, a valid documented body, where a free-form value can go, the documented timestamp field.
ENDPOINTS = {
    "alertmanager": (
        "/api/v1/ingest/alertmanager",
        lambda: fixture_loader("alertmanager")("firing_two_alerts.json"),
        ("alerts", 0, "labels", "hostile"),
        ("alerts", 0, "startsAt"),
    ),
    "grafana": (
        "/api/v1/ingest/grafana",
        lambda: fixture_loader("grafana")("firing_docs_example.json"),
        ("alerts", 0, "labels", "hostile"),
        ("alerts", 0, "startsAt"),
    ),
    "sentry": (
        "/api/v1/ingest/sentry",
        lambda: fixture_loader("sentry")("event_alert_django.json"),
        ("data", "event", "extra"),
        ("data", "event", "datetime"),
    ),
    "events_v2": (
        "/api/v1/ingest/events-v2",
        lambda: {
            k: v for k, v in fixture_loader("events_v2")("trigger_docs_example.json").items() if k != "routing_key"
        },
        ("payload", "custom_details", "hostile"),
        ("payload", "timestamp"),
    ),
    "generic": (
        "/api/v1/ingest/events",
        lambda: fixture_loader("generic")("single_crash.json"),
        ("labels", "hostile"),
        ("occurred_at",),
    ),
    "complaints": ("/api/v1/complaints", _complaint, ("customer_name",), ("reported_at",)),
}
KINDS = {"complaints": "generic"}


def _set(document, path, value):
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return document


def _stored() -> tuple[int, int, int]:
    return Event.objects.count(), Incident.objects.count(), Complaint.objects.count()


@pytest.fixture
def send(post_json, make_integration):
    """send(name, body) → response, authenticated as that endpoint's integration."""
    integrations = {}

    def post(name: str, body: bytes | dict):
        kind = KINDS.get(name, name)
        if kind not in integrations:
            integrations[kind] = make_integration(kind)
        token = integrations[kind].raw_token
        if name == "events_v2":  # PagerDuty's routing key is in the body
            if isinstance(body, dict):
                body = {**body, "routing_key": token}
            else:
                body = body.replace(b"{", b'{"routing_key": "' + token.encode() + b'", ', 1)
            return post_json(ENDPOINTS[name][0], body)
        return post_json(ENDPOINTS[name][0], body, token)

    return post


def _with_raw(name: str, raw: bytes) -> bytes:
    """The endpoint's valid body with `raw` (bytes of JSON text, possibly not valid JSON) at its free-form spot."""
    _url, build, spot, _ts = ENDPOINTS[name]
    text = json.dumps(_set(build(), spot, MARK)).encode()
    return text.replace(json.dumps(MARK).encode(), raw)


def assert_rejected(response, before, *words):
    assert response.status_code == 400, response.content
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["detail"], dict)
    text = json.dumps(body)
    for word in words:
        assert word in text, body
    assert _stored() == before


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_the_valid_examples_are_accepted(send, name):
    response = send(name, ENDPOINTS[name][1]())
    assert response.status_code == 202, response.content


@pytest.mark.parametrize("name", list(ENDPOINTS))
@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (b"NaN", "NaN"),
        (b"Infinity", "Infinity"),
        (b"-Infinity", "-Infinity"),
        (b"1e400", "1e400"),
        (b"-1e400", "-1e400"),
        (b"[1, NaN]", "NaN"),
        (b'{"deep": {"x": Infinity}}', "Infinity"),
    ],
)
def test_non_finite_numbers_are_a_400_naming_them(send, name, raw, named):
    before = _stored()
    assert_rejected(send(name, _with_raw(name, raw)), before, named)


@pytest.mark.parametrize("name", list(ENDPOINTS))
@pytest.mark.parametrize("raw", [b"1" + b"0" * 30, b"-" + b"9" * 25, b"1" + b"0" * 5000])
def test_huge_integers_are_a_400(send, name, raw):
    before = _stored()
    assert_rejected(send(name, _with_raw(name, raw)), before, "out of range")


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_a_64_bit_integer_is_fine(send, name):
    response = send(name, _with_raw(name, b"18446744073709551615"))
    assert response.status_code in (202, 400), response.content  # 400 only where the field wants a string


@pytest.mark.parametrize("name", list(ENDPOINTS))
@pytest.mark.parametrize("depth", [70, 5000, 200_000])
def test_deep_nesting_is_a_400(send, name, depth):
    before = _stored()
    raw = b"[" * depth + b"]" * depth
    assert_rejected(send(name, _with_raw(name, raw)), before, "nested too deeply")


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_nul_characters_and_lone_surrogates_are_stored_safely(send, name):
    raw = b'"nul \\u0000 high \\ud800 low \\udfff end"'
    response = send(name, _with_raw(name, raw))

    assert response.status_code == 202, response.content
    if name == "complaints":
        assert Complaint.objects.get().customer_name == "nul \ufffd high \ufffd low \ufffd end"
    else:
        stored = json.dumps(list(Event.objects.values_list("payload", flat=True)), ensure_ascii=False)
        assert "nul \ufffd high \ufffd low \ufffd end" in stored


@pytest.mark.parametrize("name", list(ENDPOINTS))
@pytest.mark.parametrize("epoch", [1715679667, 1715679667.318])
def test_an_epoch_number_where_a_timestamp_string_is_documented_is_a_400(send, name, epoch):
    _url, build, _spot, timestamp_path = ENDPOINTS[name]
    before = _stored()
    response = send(name, _set(build(), timestamp_path, epoch))

    assert_rejected(response, before, timestamp_path[-1])


WRONG_TYPES = [12345, -1.5, True, None, "text", ["a", 1], {"k": "v"}]


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_a_wrong_type_in_any_field_is_a_400_or_accepted_never_a_500(send, name):
    """Every field of the documented example, one at a time, replaced by each wrong type."""
    document = ENDPOINTS[name][1]()
    outcomes = set()
    for path in list(_paths(document))[1:]:
        for value in WRONG_TYPES:
            before = _stored()
            response = send(name, _set(copy.deepcopy(document), path, value))
            assert response.status_code in (202, 400), (path, value, response.content)
            assert isinstance(response.json().get("error", ""), str)
            if response.status_code == 400:
                assert response.json()["detail"], (path, value)
                assert _stored() == before, (path, value)  # nothing half-stored
            outcomes.add(response.status_code)
    assert outcomes == {202, 400}

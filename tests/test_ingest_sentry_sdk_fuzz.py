"""Property-based fuzzing of the Sentry SDK endpoints (they are plain Django views, outside the
OpenAPI schema that tests/test_api_fuzz.py walks): events of any shape Sentry's fields allow, and
of shapes they do not, in envelopes and on the store endpoint, never make a 5xx, and an answer
that refuses says why."""

from __future__ import annotations

import json
import uuid
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incidents.models import Event, Integration

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)

# Text as an SDK (or a hostile sender) may send it: any code point but surrogates (JSON from
# json.dumps escapes them anyway; the raw-bytes test below covers broken encodings).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
SCALAR = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT
JSON_VALUE = st.recursive(
    SCALAR, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12
)
FRAME = st.fixed_dictionaries(
    {},
    optional={
        "filename": TEXT | JSON_VALUE,
        "abs_path": TEXT,
        "function": TEXT | JSON_VALUE,
        "module": TEXT,
        "lineno": st.integers() | TEXT,
        "in_app": st.booleans() | JSON_VALUE,
        "context_line": TEXT | JSON_VALUE,
        "pre_context": st.lists(TEXT, max_size=3) | JSON_VALUE,
        "vars": st.dictionaries(TEXT, JSON_VALUE, max_size=3) | JSON_VALUE,
    },
)
EXCEPTION = st.fixed_dictionaries(
    {},
    optional={
        "type": TEXT | JSON_VALUE,
        "value": TEXT | JSON_VALUE,
        "module": TEXT,
        "stacktrace": st.fixed_dictionaries({"frames": st.lists(FRAME, max_size=4)}) | JSON_VALUE,
        "mechanism": JSON_VALUE,
    },
)
EVENT = st.fixed_dictionaries(
    {},
    optional={
        "event_id": st.uuids().map(lambda value: value.hex) | TEXT | JSON_VALUE,
        "timestamp": st.floats(min_value=0, max_value=4e9) | TEXT | JSON_VALUE,
        "platform": st.sampled_from(["python", "javascript", "other"]) | JSON_VALUE,
        "level": st.sampled_from(["fatal", "error", "warning", "info", "debug"]) | JSON_VALUE,
        "message": TEXT | JSON_VALUE,
        "logentry": JSON_VALUE,
        "exception": st.fixed_dictionaries({"values": st.lists(EXCEPTION, max_size=3)}) | JSON_VALUE,
        "tags": st.dictionaries(TEXT, TEXT, max_size=4) | st.lists(st.tuples(TEXT, TEXT), max_size=3) | JSON_VALUE,
        "release": TEXT | JSON_VALUE,
        "environment": TEXT | JSON_VALUE,
        "server_name": TEXT | JSON_VALUE,
        "user": JSON_VALUE,
        "request": JSON_VALUE,
        "contexts": JSON_VALUE,
        "extra": JSON_VALUE,
        "fingerprint": JSON_VALUE,
        "breadcrumbs": JSON_VALUE,
    },
)


# Answers per test, so the last test can check the fuzzing reached storage, not only refusals.
answered: dict[str, Counter] = {}


@pytest.fixture
def integration(db):
    integration = Integration(name="fuzzed-sdk", kind="sentry", default_service="shop")
    integration.set_new_token()
    integration.save()
    return integration


def _check(response, test: str) -> None:
    answered.setdefault(test, Counter())[response.status_code] += 1
    assert response.status_code < 500, response.content[:500]
    if response.status_code >= 400:
        body = response.json()
        assert body["error"] and isinstance(body["detail"], dict), body


def _envelope(integration, headers: dict, item_type: str, payload: bytes) -> bytes:
    item_header = {"type": item_type, "length": len(payload)}
    return b"\n".join([json.dumps(headers).encode(), json.dumps(item_header).encode(), payload]) + b"\n"


@FUZZ
@given(event=EVENT)
def test_any_event_on_the_store_endpoint_is_stored_or_refused_with_a_reason(client, integration, event):
    before = Event.objects.count()
    response = client.post(
        f"/api/{integration.pk}/store/?sentry_key={integration.public_key}",
        data=json.dumps(event),
        content_type="application/json",
    )
    _check(response, "store")
    if response.status_code != 200:
        assert Event.objects.count() == before  # a refused event leaves nothing behind


@FUZZ
@given(
    event=EVENT,
    headers=st.dictionaries(TEXT, JSON_VALUE, max_size=3),
    item_type=st.sampled_from(["event", "transaction", "session", "client_report", "attachment", "check_in", "unknown"])
    | TEXT,
)
def test_any_envelope_is_stored_or_refused_with_a_reason(client, integration, event, headers, item_type):
    headers = {**headers, "event_id": uuid.uuid4().hex}
    response = client.post(
        f"/api/{integration.pk}/envelope/",
        data=_envelope(integration, headers, item_type, json.dumps(event).encode()),
        content_type="application/x-sentry-envelope",
        HTTP_X_SENTRY_AUTH=f"Sentry sentry_version=7, sentry_key={integration.public_key}, sentry_client=fuzz/1.0",
    )
    _check(response, "envelope")


@FUZZ
@given(body=st.binary(max_size=300))
def test_any_bytes_are_refused_with_a_reason_never_a_crash(client, integration, body):
    for path in (f"/api/{integration.pk}/envelope/", f"/api/{integration.pk}/store/"):
        response = client.post(
            f"{path}?sentry_key={integration.public_key}", data=body, content_type="application/octet-stream"
        )
        _check(response, "bytes")


def test_the_fuzzing_reached_storage_and_refusals_alike():
    """Events that fit are stored (200) and misfits refused (400): a run of only one kind tests little."""
    if "store" not in answered:
        pytest.skip("run with the fuzzing tests above")
    for test in ("store", "envelope"):
        assert answered[test][200] > 0 and answered[test][400] > 0, (test, dict(answered[test]))

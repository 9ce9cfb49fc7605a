"""The stock `sentry-sdk` reporting straight to a running Quench through an integration's DSN.

Real SDK, real HTTP (pytest-django's live server), real PostgreSQL. Each test builds its
own SDK client and closes it, so no client, scope or rate limit leaks between tests.
"""

from __future__ import annotations

import gzip
import io
import json
import uuid
import zlib

import brotli
import pytest
import requests
import sentry_sdk
from django.core.management import call_command

from incidents.models import Event, Incident, Integration

pytestmark = pytest.mark.django_db(transaction=True)


class CheckoutError(Exception):
    """The domain error the fake service raises."""


def charge(order: dict, api_key: str):
    amount = order["total"]
    return amount / order["items"]


def pay(order: dict):
    try:
        return charge(order, api_key="sk_live_4eC39HqLyjWDarjtT1zdp7dc")
    except ZeroDivisionError as exc:
        raise CheckoutError(f"order {order['id']} cannot be charged") from exc


@pytest.fixture
def sentry_integration(db, settings, live_server):
    settings.SITE_URL = live_server.url
    integration = Integration(name="shop-sdk", kind="sentry", default_service="shop")
    integration.set_new_token()
    integration.save()
    return integration


@pytest.fixture
def sdk():
    """sdk(dsn, **options) → a fresh SDK client bound to an isolation scope; closed after the test."""
    clients = []

    def start(dsn: str, **options):
        options.setdefault("default_integrations", False)
        options.setdefault("auto_enabling_integrations", False)
        client = sentry_sdk.Client(dsn=dsn, **options)
        clients.append(client)
        sentry_sdk.get_global_scope().set_client(client)
        return client

    with sentry_sdk.isolation_scope():
        yield start
    for client in clients:
        client.close()
    sentry_sdk.get_global_scope().set_client(None)


def _envelope_url(live_server, integration, endpoint="envelope", **query):
    url = f"{live_server.url}/api/{integration.pk}/{endpoint}/"
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def _auth(integration) -> dict:
    return {"X-Sentry-Auth": f"Sentry sentry_key={integration.public_key}, sentry_version=7, sentry_client=test/1.0"}


def _event(**fields) -> dict:
    event = {
        "event_id": uuid.uuid4().hex,
        "timestamp": 1715679667.318,
        "platform": "python",
        "level": "error",
        "exception": {
            "values": [
                {
                    "type": "ValueError",
                    "value": "bad amount",
                    "stacktrace": {
                        "frames": [
                            {
                                "filename": "shop/views.py",
                                "module": "shop.views",
                                "function": "pay",
                                "lineno": 12,
                                "in_app": True,
                            }
                        ]
                    },
                }
            ]
        },
    }
    event.update(fields)
    return event


def _envelope(*items: tuple[dict, bytes], headers: dict | None = None) -> bytes:
    lines = [json.dumps(headers or {}).encode()]
    for item_headers, payload in items:
        lines += [json.dumps(item_headers).encode(), payload]
    return b"\n".join(lines) + b"\n"


def _event_item(event: dict) -> tuple[dict, bytes]:
    payload = json.dumps(event).encode()
    return {"type": "event", "length": len(payload)}, payload


def test_a_raised_exception_reaches_quench_with_its_chain_frames_tags_and_release(sdk, sentry_integration):
    client = sdk(sentry_integration.dsn, release="shop@1.4.2", environment="production", server_name="web-1")
    sentry_sdk.set_tag("region", "eu-west-1")
    sentry_sdk.set_user({"id": "customer-81"})
    try:
        pay({"id": 81, "total": 10, "items": 0})
    except CheckoutError:
        event_id = sentry_sdk.capture_exception()
    client.flush(timeout=10)

    incident = Incident.objects.get()
    event = incident.events.get()
    assert event.source_id == event_id
    assert incident.source == "sentry" and incident.integration_id == sentry_integration.pk
    assert incident.exception_type == "CheckoutError"
    assert incident.title == "CheckoutError: order 81 cannot be charged"
    assert incident.service == "shop"  # no `service` tag: the integration's default service
    assert event.environment == "production"
    assert event.labels["release"] == "shop@1.4.2"
    assert event.labels["server_name"] == "web-1"
    assert event.labels["region"] == "eu-west-1"
    assert event.labels["user"] == "customer-81"
    # The last exception's in-app frames, with their source line and (redacted) locals.
    assert [frame["function"] for frame in event.frames] == [
        "test_a_raised_exception_reaches_quench_with_its_chain_frames_tags_and_release",
        "pay",
    ]
    pay_frame = event.frames[-1]
    assert pay_frame["in_app"] is True
    assert pay_frame["context_line"] == "raise CheckoutError(f\"order {order['id']} cannot be charged\") from exc"
    assert "order" in pay_frame["vars"]
    # The lines around it too, with the hard-coded key in the source redacted.
    assert pay_frame["pre_context"][-2:] == [
        '        return charge(order, api_key="[REDACTED]")',
        "    except ZeroDivisionError as exc:",
    ]
    assert pay_frame["post_context"][0] == ""  # the blank line after the function
    # The whole chain, as Python prints it: the cause, its frames, then the outer error.
    assert "ZeroDivisionError: division by zero" in event.traceback
    assert "The above exception was the direct cause of the following exception:" in event.traceback
    assert event.traceback.index("ZeroDivisionError") < event.traceback.index("CheckoutError: order 81")
    assert 'in charge\n    return amount / order["items"]' in event.traceback
    # Locals of the cause's frame keep the api key only redacted.
    stored = json.dumps(event.payload)
    assert "sk_live_4eC39HqLyjWDarjtT1zdp7dc" not in stored
    assert "sk_live_4eC39HqLyjWDarjtT1zdp7dc" not in json.dumps(event.frames)
    charge_frame = event.payload["exception"]["values"][0]["stacktrace"]["frames"][-1]
    assert charge_frame["function"] == "charge" and "api_key" in charge_frame["vars"]


def test_a_service_tag_names_the_service_and_the_same_crash_groups_into_one_incident(sdk, sentry_integration):
    client = sdk(sentry_integration.dsn)
    for _ in range(3):
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("service", "billing")
            try:
                charge({"total": 1, "items": 0}, api_key="")
            except ZeroDivisionError as exc:
                sentry_sdk.capture_exception(exc)
    client.flush(timeout=10)

    incident = Incident.objects.get()
    assert incident.service == "billing"
    assert incident.exception_type == "ZeroDivisionError"
    assert incident.event_count == 3
    assert incident.fingerprint_strategy == "default:error"


def test_a_captured_message_is_stored_too(sdk, sentry_integration):
    client = sdk(sentry_integration.dsn)
    sentry_sdk.capture_message("disk almost full", level="warning")
    client.flush(timeout=10)

    event = Event.objects.get()
    assert event.title == "disk almost full"
    assert event.severity == "warning"


@pytest.mark.parametrize("algo", ["gzip", "br"])
def test_the_sdk_compresses_bodies_and_quench_reads_them(sdk, sentry_integration, algo):
    client = sdk(sentry_integration.dsn, _experiments={"transport_compression_algo": algo})
    try:
        raise KeyError("currency")
    except KeyError:
        sentry_sdk.capture_exception()
    client.flush(timeout=10)

    assert Incident.objects.get().exception_type == "KeyError"


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("br", brotli.compress),
        ("identity", lambda body: body),
    ],
)
def test_compressed_envelopes_are_read(live_server, sentry_integration, encoding, compress):
    body = _envelope(_event_item(_event()))
    response = requests.post(
        _envelope_url(live_server, sentry_integration),
        data=compress(body),
        headers={**_auth(sentry_integration), "Content-Encoding": encoding},
        timeout=10,
    )

    assert response.status_code == 200, response.text
    assert Incident.objects.get().exception_type == "ValueError"


def test_the_store_endpoint_takes_one_event_with_the_key_in_the_query(live_server, sentry_integration):
    event = _event(timestamp="2024-05-14T09:41:07.318Z", tags={"service": "api"})
    response = requests.post(
        _envelope_url(live_server, sentry_integration, "store", sentry_key=sentry_integration.public_key),
        data=json.dumps(event),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"id": event["event_id"]}
    stored = Event.objects.get()
    assert stored.service == "api"
    assert stored.occurred_at.isoformat() == "2024-05-14T09:41:07.318000+00:00"


def test_the_legacy_store_body_base64_zlib_is_read(live_server, sentry_integration):
    import base64

    body = base64.b64encode(zlib.compress(json.dumps(_event()).encode()))
    response = requests.post(
        _envelope_url(live_server, sentry_integration, "store"),
        data=body,
        headers=_auth(sentry_integration),
        timeout=10,
    )

    assert response.status_code == 200, response.text
    assert Incident.objects.count() == 1


def test_the_key_in_the_envelope_header_dsn_authenticates(live_server, sentry_integration):
    body = _envelope(_event_item(_event()), headers={"dsn": sentry_integration.dsn})
    response = requests.post(_envelope_url(live_server, sentry_integration), data=body, timeout=10)

    assert response.status_code == 200, response.text
    assert Incident.objects.count() == 1


def test_no_key_is_401_and_an_unknown_or_disabled_key_403(live_server, sentry_integration):
    body = _envelope(_event_item(_event()))
    url = _envelope_url(live_server, sentry_integration)

    missing = requests.post(url, data=body, timeout=10)
    unknown = requests.post(
        url, data=body, headers={"X-Sentry-Auth": "Sentry sentry_key=0123456789abcdef, sentry_version=7"}, timeout=10
    )
    wrong_project = requests.post(
        f"{live_server.url}/api/{sentry_integration.pk + 1000}/envelope/",
        data=body,
        headers=_auth(sentry_integration),
        timeout=10,
    )
    Integration.objects.filter(pk=sentry_integration.pk).update(enabled=False)
    disabled = requests.post(url, data=body, headers=_auth(sentry_integration), timeout=10)
    # The integration token is not a DSN key.
    as_token = requests.post(url, data=body, headers={"X-Sentry-Auth": "Sentry sentry_key=qk_notadsnkey"}, timeout=10)

    assert missing.status_code == 401 and missing.json()["detail"] == {"sentry_key": "is required"}
    assert unknown.status_code == 403 and "Unknown or disabled DSN key" in unknown.json()["error"]
    assert wrong_project.status_code == 403 and "project_id" in wrong_project.json()["detail"]
    assert disabled.status_code == 403
    assert as_token.status_code == 403
    assert Event.objects.count() == 0


def test_the_sdk_is_refused_with_a_wrong_key_and_nothing_is_stored(sdk, live_server, sentry_integration):
    host = live_server.url.split("://", 1)[1]
    client = sdk(f"http://ffffffffffffffffffffffffffffffff@{host}/{sentry_integration.pk}")
    sentry_sdk.capture_message("should not arrive")
    client.flush(timeout=10)

    assert Event.objects.count() == 0


def test_a_body_over_the_limit_is_413_and_an_event_over_the_event_limit_too(live_server, sentry_integration, settings):
    settings.QUENCH_SENTRY_MAX_ENVELOPE_BYTES = 50_000
    settings.QUENCH_MAX_BODY_BYTES = 20_000
    url = _envelope_url(live_server, sentry_integration)
    oversize = _envelope(_event_item(_event(extra={"blob": "x" * 60_000})))
    big_event = _envelope(_event_item(_event(extra={"blob": "x" * 30_000})))
    # A zip bomb: a small gzip body that inflates past the envelope limit.
    bomb = gzip.compress(_envelope(_event_item(_event(extra={"blob": "0" * 5_000_000}))))

    responses = [
        requests.post(url, data=oversize, headers=_auth(sentry_integration), timeout=10),
        requests.post(url, data=big_event, headers=_auth(sentry_integration), timeout=10),
        requests.post(url, data=bomb, headers={**_auth(sentry_integration), "Content-Encoding": "gzip"}, timeout=10),
    ]

    assert len(bomb) < 50_000
    assert [response.status_code for response in responses] == [413, 413, 413]
    assert all(response.json()["error"] == "Request body too large." for response in responses)
    assert Event.objects.count() == 0


def test_a_duplicate_event_id_is_stored_once(live_server, sentry_integration):
    body = _envelope(_event_item(_event(event_id="a" * 32)))
    url = _envelope_url(live_server, sentry_integration)

    first = requests.post(url, data=body, headers=_auth(sentry_integration), timeout=10)
    again = requests.post(url, data=body, headers=_auth(sentry_integration), timeout=10)

    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() == {"id": "a" * 32}
    assert Event.objects.count() == 1
    assert Incident.objects.get().event_count == 1


def test_other_item_types_are_accepted_and_not_stored(live_server, sentry_integration):
    session = json.dumps({"sid": uuid.uuid4().hex, "status": "ok", "attrs": {"release": "shop@1"}}).encode()
    report = json.dumps({"timestamp": 1715679667, "discarded_events": []}).encode()
    transaction = json.dumps({"type": "transaction", "transaction": "/pay", "spans": []}).encode()
    attachment = b"binary\x00data\nwith newlines"
    body = _envelope(
        ({"type": "session"}, session),
        ({"type": "client_report"}, report),
        ({"type": "transaction", "length": len(transaction)}, transaction),
        ({"type": "attachment", "length": len(attachment), "filename": "dump.bin"}, attachment),
        ({"type": "something_new", "length": 2}, b"{}"),
        _event_item(_event()),
    )
    response = requests.post(
        _envelope_url(live_server, sentry_integration), data=body, headers=_auth(sentry_integration), timeout=10
    )
    only_session = requests.post(
        _envelope_url(live_server, sentry_integration),
        data=_envelope(({"type": "session"}, session)),
        headers=_auth(sentry_integration),
        timeout=10,
    )

    assert response.status_code == 200, response.text
    assert only_session.status_code == 200 and only_session.json() == {}
    assert Event.objects.count() == 1  # the event; the session, report, transaction and attachment are not events


def test_sessions_the_sdk_sends_by_itself_are_accepted(sdk, sentry_integration):
    client = sdk(sentry_integration.dsn, release="shop@2.0.0")
    sentry_sdk.get_isolation_scope().start_session()
    sentry_sdk.get_isolation_scope().end_session()
    client.flush(timeout=10)

    assert Event.objects.count() == 0
    assert Integration.objects.get(pk=sentry_integration.pk).last_used_at is not None


def test_over_the_rate_limit_the_answer_is_sentrys_429(live_server, sentry_integration):
    sentry_integration.rate_limit_per_minute = 2
    sentry_integration.save()
    url = _envelope_url(live_server, sentry_integration)

    statuses = []
    for _ in range(3):
        response = requests.post(
            url, data=_envelope(_event_item(_event())), headers=_auth(sentry_integration), timeout=10
        )
        statuses.append(response.status_code)

    assert statuses == [200, 200, 429]
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert response.headers["X-Sentry-Rate-Limits"] == f"{retry_after}:error;default;security:key:quench_rate_limit"
    assert response.json()["detail"] == {"rate_limit": "2 events per minute"}
    assert Event.objects.count() == 2


def test_the_sdk_backs_off_after_a_429(sdk, sentry_integration):
    sentry_integration.rate_limit_per_minute = 1
    sentry_integration.save()
    client = sdk(sentry_integration.dsn)
    sentry_sdk.capture_message("first")
    client.flush(timeout=10)
    sentry_sdk.capture_message("second: refused with 429")
    client.flush(timeout=10)

    # The SDK read X-Sentry-Rate-Limits and now drops errors itself instead of sending them.
    assert client.transport._check_disabled("error")
    assert list(Event.objects.values_list("title", flat=True)) == ["first"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"event_id": "abc", "extra": {"x": NaN}}', "NaN"),
        (b'{"event_id": "abc", "extra": {"x": Infinity}}', "Infinity"),
        (b'{"event_id": "abc", "extra": {"x": -Infinity}}', "-Infinity"),
        (b'{"event_id": "abc", "extra": {"x": 1e400}}', "1e400"),
        (b'{"event_id": "abc", "extra": {"x": 1' + b"0" * 60 + b"}}", "out of range"),
        (b'{"event_id": "abc", "extra": ' + b"[" * 100 + b"]" * 100 + b"}", "nested too deeply"),
        (b'{"event_id": "abc", "exception": {"values": "no"}}', "exception.values"),
        (b'{"event_id": "abc", "level": 7}', "level"),
        (b'{"event_id": "abc", "tags": "service"}', "tags"),
        (b'{"event_id": "abc", "timestamp": "yesterday"}', "timestamp"),
        (
            b'{"event_id": "abc", "exception": {"values": [{"type": "E", "stacktrace": {"frames": [{"lineno": "x"}]}}]}}',
            "lineno",
        ),
        (b"[1, 2]", "must be a JSON object"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_hostile_events_are_a_400_with_a_json_body_and_nothing_stored(live_server, sentry_integration, body, problem):
    envelope = _envelope(({"type": "event", "length": len(body)}, body))
    via_envelope = requests.post(
        _envelope_url(live_server, sentry_integration), data=envelope, headers=_auth(sentry_integration), timeout=10
    )
    via_store = requests.post(
        _envelope_url(live_server, sentry_integration, "store"),
        data=body,
        headers=_auth(sentry_integration),
        timeout=10,
    )

    for response in (via_envelope, via_store):
        assert response.status_code == 400, response.text
        assert problem in json.dumps(response.json())
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        b"not an envelope",
        b'{}\n{"type": "event", "length": 500}\n{}',
        b'{}\n{"length": 2}\n{}',
        b'{}\n{"type": "event", "length": -1}\n{}',
        b'{}\n"a string header"\n{}',
    ],
)
def test_broken_envelopes_are_a_400(live_server, sentry_integration, body):
    response = requests.post(
        _envelope_url(live_server, sentry_integration), data=body, headers=_auth(sentry_integration), timeout=10
    )

    assert response.status_code == 400, response.text
    assert response.json()["error"]
    assert Event.objects.count() == 0


def test_a_corrupt_compressed_body_is_a_400(live_server, sentry_integration):
    for encoding in ("gzip", "deflate", "br", "compress"):
        response = requests.post(
            _envelope_url(live_server, sentry_integration),
            data=b"definitely not compressed",
            headers={**_auth(sentry_integration), "Content-Encoding": encoding},
            timeout=10,
        )
        assert response.status_code == 400, (encoding, response.text)


def test_epoch_and_rfc3339_timestamps_are_both_documented_and_accepted(live_server, sentry_integration):
    for timestamp in (1715679667, "2024-05-14T09:41:07Z"):
        response = requests.post(
            _envelope_url(live_server, sentry_integration, "store"),
            data=json.dumps(_event(timestamp=timestamp)),
            headers=_auth(sentry_integration),
            timeout=10,
        )
        assert response.status_code == 200, response.text
    assert {event.occurred_at.isoformat() for event in Event.objects.all()} == {"2024-05-14T09:41:07+00:00"}


def test_create_integration_prints_the_dsn_before_the_token(db, settings):
    settings.SITE_URL = "https://quench.example.com"
    out = io.StringIO()
    call_command("create_integration", "shop", "--kind", "sentry", stdout=out, stderr=io.StringIO())

    dsn_line, token_line = out.getvalue().strip().splitlines()[-2:]
    integration = Integration.objects.get(name="shop")
    assert dsn_line == f"DSN: https://{integration.public_key}@quench.example.com/{integration.pk}"
    assert token_line.startswith("qk_")
    assert integration.public_key not in token_line
    assert len(integration.public_key) == 32


def test_other_kinds_have_no_dsn(db):
    out = io.StringIO()
    call_command("create_integration", "prom", "--kind", "alertmanager", stdout=out, stderr=io.StringIO())

    assert "DSN" not in out.getvalue()
    assert Integration.objects.get(name="prom").public_key is None


def test_the_demo_crash_reaches_quench_through_the_sdk(live_server, db):
    integration = Integration(name="demo-sentry", kind="sentry", default_environment="production")
    integration.set_new_token()
    integration.save()
    out = io.StringIO()
    call_command("demo_sentry_crash", url=live_server.url, stdout=out)

    incident = Incident.objects.get()
    assert incident.service == "newsletter"
    assert incident.exception_type == "DeliveryError"
    event = incident.events.get()
    assert event.labels["release"] == "newsletter@1.0.3"
    assert "KeyError: 'first_name'" in event.traceback
    assert [frame["function"] for frame in event.frames if frame["in_app"]][-1] == "send_newsletter"
    assert f"(event {event.source_id})" in out.getvalue()

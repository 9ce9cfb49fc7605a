"""The Sentry SDK wire protocol and SDK events → Signals (pure: no database)."""

import gzip
import json
import zlib
from datetime import UTC, datetime
from pathlib import Path

import brotli
import pytest

from incidents.sources import sentry
from incidents.sources.base import PayloadError, SignalKind
from incidents.sources.sentry.envelope import (
    BodyTooLarge,
    auth_key,
    decode_body,
    dsn_key,
    dsn_project,
    legacy_store_body,
    parse_envelope,
    rate_limit_header,
)

FIXTURES = Path(sentry.__file__).parent / "fixtures"


def recorded_envelope() -> bytes:
    return (FIXTURES / "sdk_envelope_python.envelope").read_bytes()


def test_a_recorded_sdk_envelope_parses_into_its_event():
    envelope = parse_envelope(recorded_envelope())

    assert envelope.headers["event_id"] == "bc4f1d84a5f541d1bd5d8fe575dad8da"
    assert [item.type for item in envelope.items] == ["event"]
    assert json.loads(envelope.items[0].payload)["event_id"] == "bc4f1d84a5f541d1bd5d8fe575dad8da"


def test_a_recorded_sdk_event_maps_to_an_error_signal_with_its_whole_chain():
    event = json.loads(parse_envelope(recorded_envelope()).items[0].payload)
    signal = sentry.parse_sdk_event(event)

    assert signal.kind == SignalKind.ERROR
    assert signal.exception_type == "DeliveryError"
    assert signal.exception_value == "newsletter for subscriber 4711 could not be rendered"
    assert signal.title == "DeliveryError: newsletter for subscriber 4711 could not be rendered"
    assert signal.service == "newsletter"
    assert signal.environment == "production"
    assert signal.severity == "error"
    assert signal.labels == {
        "service": "newsletter",
        "release": "newsletter@1.0.3",
        "server_name": "worker-2",
        "user": "4711",
    }
    assert signal.source_id == "bc4f1d84a5f541d1bd5d8fe575dad8da"
    assert signal.dedup_key == ""  # Quench's fingerprint rules group SDK events
    assert signal.occurred_at == datetime(2026, 12, 7, 12, 39, 31, 285909, tzinfo=UTC)
    assert signal.payload is event
    # The cause first, as Python prints a chain.
    first, _, second = signal.traceback.partition(
        "The above exception was the direct cause of the following exception:"
    )
    assert "KeyError: 'first_name'" in first
    assert '    first_name = subscriber["profile"]["first_name"]' in first
    assert second.strip().endswith("DeliveryError: newsletter for subscriber 4711 could not be rendered")
    render = [frame for frame in signal.frames if frame.function == "<module>"]
    assert render and render[0].in_app


def test_an_implicit_context_is_printed_as_during_handling():
    event = {
        "exception": {
            "values": [
                {
                    "type": "KeyError",
                    "value": "'a'",
                    "stacktrace": {"frames": [{"filename": "a.py", "function": "f", "lineno": 1}]},
                },
                {
                    "type": "ValueError",
                    "value": "b",
                    "stacktrace": {"frames": [{"filename": "a.py", "function": "g", "lineno": 2}]},
                },
            ]
        }
    }
    signal = sentry.parse_sdk_event(event)

    assert "During handling of the above exception, another exception occurred:" in signal.traceback
    assert signal.exception_type == "ValueError"
    assert [frame.function for frame in signal.frames] == ["g"]


@pytest.mark.parametrize(
    "timestamp", [1715679667.318, 1715679667, "2024-05-14T09:41:07.318Z", "2024-05-14T09:41:07.318+00:00"]
)
def test_sentry_documents_timestamps_as_unix_seconds_or_rfc3339(timestamp):
    signal = sentry.parse_sdk_event({"timestamp": timestamp, "message": "x"})
    assert signal.occurred_at.replace(microsecond=0) == datetime(2024, 5, 14, 9, 41, 7, tzinfo=UTC)


def test_the_docs_envelope_with_an_attachment_and_no_trailing_newline():
    body = (
        b'{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","dsn":"https://e12d836b15bb49d7bbf99e64295d995b:@sentry.io/42"}\n'
        b'{"type":"attachment","length":10,"content_type":"text/plain","filename":"hello.txt"}\n'
        b"\xef\xbb\xbfHello\r\n\n"
        b'{"type":"event","length":41,"content_type":"application/json","filename":"application.log"}\n'
        b'{"message":"hello world","level":"error"}'
    )
    envelope = parse_envelope(body)

    assert [item.type for item in envelope.items] == ["attachment", "event"]
    assert envelope.items[0].payload == b"\xef\xbb\xbfHello\r\n"
    assert json.loads(envelope.items[1].payload) == {"message": "hello world", "level": "error"}
    assert dsn_key(envelope.headers["dsn"]) == "e12d836b15bb49d7bbf99e64295d995b"
    assert dsn_project(envelope.headers["dsn"]) == "42"


def test_items_without_length_run_to_the_end_of_their_line():
    envelope = parse_envelope(b'{}\n{"type":"session"}\n{"sid":"1"}\n{"type":"event"}\n{"message":"m"}\n\n')
    assert [(item.type, item.payload) for item in envelope.items] == [
        ("session", b'{"sid":"1"}'),
        ("event", b'{"message":"m"}'),
    ]


@pytest.mark.parametrize(
    "header",
    [
        "Sentry sentry_key=abc123, sentry_version=7, sentry_client=sentry.python/3.0.0",
        "Sentry sentry_version=7,sentry_key=abc123",
        "sentry sentry_key=abc123",
        "sentry_key=abc123, sentry_secret=s",
    ],
)
def test_the_auth_header_gives_the_key(header):
    assert auth_key(header) == "abc123"


def test_an_auth_header_without_a_key_gives_nothing():
    assert auth_key("Bearer qk_token") == ""
    assert auth_key("Sentry sentry_version=7") == ""


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b, wbits=-15)),
        ("br", brotli.compress),
    ],
)
def test_bodies_are_decompressed_and_bombs_are_too_large(encoding, compress):
    body = b'{"message": "hello"}'
    assert decode_body(compress(body), encoding, 1000) == body
    bomb = compress(b"0" * 2_000_000)
    assert len(bomb) < 20_000
    with pytest.raises(BodyTooLarge):
        decode_body(bomb, encoding, 100_000)


def test_an_unknown_encoding_is_a_payload_error():
    with pytest.raises(PayloadError):
        decode_body(b"x", "compress", 1000)


def test_the_legacy_store_body_may_be_base64_zlib():
    import base64

    event = b'{"message": "old sdk"}'
    assert legacy_store_body(base64.b64encode(zlib.compress(event)), 1000) == event
    assert legacy_store_body(event, 1000) == event


def test_the_rate_limit_header_is_sentrys_format():
    assert rate_limit_header(42) == "42:error;default;security:key:quench_rate_limit"

"""Sentry's SDK wire protocol, as Sentry's developer documentation describes it (pure: no database).

- Request bodies may be compressed (`Content-Encoding: gzip | deflate | br`); the legacy
  `/store/` endpoint also took base64 of zlib. Decompression is bounded: a small body
  that inflates past the limit is "too large", like a large one.
- An envelope is a JSON header line, then items: a JSON item header (`type`, optional
  `length`) on its own line and a payload of `length` bytes, or up to the next newline
  when there is no length (docs: develop.sentry.dev/sdk/data-model/envelopes/).
- Authentication is the DSN's public key: `X-Sentry-Auth: Sentry sentry_key=<key>,
  sentry_version=7, ...` (or the same in `Authorization`), the `sentry_key` query
  parameter, or the envelope header `dsn` (develop.sentry.dev/sdk/overview/#authentication).
- Rate limits are answered with `X-Sentry-Rate-Limits: <seconds>:<categories>:<scope>:<reason>`
  and `Retry-After` (develop.sentry.dev/sdk/expected-features/rate-limiting/).
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import brotli

from incidents.sources.base import PayloadError

# Item types an SDK sends that carry no error: accepted (so the SDK does not retry or
# record a loss) and counted, not stored. `event` is the only one that becomes a Signal.
EVENT_ITEM = "event"
IGNORED_ITEMS = frozenset(
    {
        "transaction",
        "session",
        "sessions",
        "client_report",
        "attachment",
        "user_report",
        "feedback",
        "profile",
        "profile_chunk",
        "replay_event",
        "replay_recording",
        "replay_video",
        "check_in",
        "statsd",
        "metric_buckets",
        "span",
        "log",
        "otel_log",
        "otel_span",
        "security",
        "raw_security",
        "unreal_report",
    }
)
# The data categories of the rate-limit header that an event counts against.
EVENT_RATE_LIMIT_CATEGORIES = ("error", "default", "security")
MAX_ITEMS = 1000


class BodyTooLarge(Exception):
    """The body, or what it inflates to, is over the limit (Sentry answers 413)."""

    def __init__(self, limit: int):
        super().__init__(f"The request body is over the limit of {limit} bytes (after decompression).")
        self.limit = limit


@dataclass
class EnvelopeItem:
    """One item of an envelope: its header (type, length, ...) and its raw payload."""

    type: str
    headers: dict
    payload: bytes


@dataclass
class Envelope:
    """A parsed envelope: its header (event_id, dsn, sdk, sent_at) and its items, in order."""

    headers: dict
    items: list[EnvelopeItem] = field(default_factory=list)


def decode_body(body: bytes, content_encoding: str, limit: int) -> bytes:
    """The request body with its Content-Encoding undone, at most `limit` bytes (BodyTooLarge above)."""
    encodings = [part.strip().lower() for part in content_encoding.split(",") if part.strip()]
    for encoding in reversed(encodings):  # applied in the order listed, so undone from the last
        if encoding in ("identity", ""):
            continue
        if encoding in ("gzip", "x-gzip"):
            body = _inflate(body, zlib.decompressobj(16 + zlib.MAX_WBITS), limit, "gzip")
        elif encoding == "deflate":
            # HTTP's "deflate" is zlib-wrapped, but some clients send raw deflate.
            wbits = zlib.MAX_WBITS if body[:1] and (body[0] & 0x0F) == 8 else -zlib.MAX_WBITS
            body = _inflate(body, zlib.decompressobj(wbits), limit, "deflate")
        elif encoding == "br":
            body = _unbrotli(body, limit)
        else:
            raise PayloadError(
                f"Unsupported Content-Encoding {encoding!r}.",
                {"Content-Encoding": "must be gzip, deflate, br or identity"},
            )
    if len(body) > limit:
        raise BodyTooLarge(limit)
    return body


def _inflate(body: bytes, decompressor, limit: int, name: str) -> bytes:
    try:
        out = decompressor.decompress(body, limit + 1)
    except zlib.error:
        raise PayloadError(f"The body is not valid {name} data.", {"body": f"not {name}"}) from None
    if len(out) > limit or decompressor.unconsumed_tail:
        raise BodyTooLarge(limit)
    return out


def _unbrotli(body: bytes, limit: int) -> bytes:
    decompressor = brotli.Decompressor()
    try:
        out = decompressor.process(body, output_buffer_limit=limit + 1)
        while len(out) <= limit and not decompressor.can_accept_more_data():
            out += decompressor.process(b"", output_buffer_limit=limit + 1 - len(out))
    except brotli.error:
        raise PayloadError("The body is not valid brotli data.", {"body": "not br"}) from None
    if len(out) > limit:
        raise BodyTooLarge(limit)
    return out


def legacy_store_body(body: bytes, limit: int) -> bytes:
    """A /store/ body: JSON as is, or the base64 of zlib that old SDKs sent."""
    stripped = body.lstrip()
    if not stripped or stripped[:1] in (b"{", b"["):
        return body
    try:
        packed = base64.b64decode(stripped, validate=False)
    except (binascii.Error, ValueError):
        return body
    if not packed[:1] or (packed[0] & 0x0F) != 8:
        return body  # not zlib: let the JSON reader say what is wrong
    return _inflate(packed, zlib.decompressobj(zlib.MAX_WBITS), limit, "zlib")


def parse_envelope(body: bytes) -> Envelope:
    """Split an envelope into its header and items; PayloadError when it is not one."""
    header_line, rest = _line(body, 0)
    headers = _json_object(header_line, "envelope header")
    envelope = Envelope(headers=headers)
    position = rest
    while position < len(body):
        line, after = _line(body, position)
        if not line.strip():
            position = after  # trailing newlines
            continue
        item_headers = _json_object(line, f"item {len(envelope.items)} header")
        item_type = item_headers.get("type")
        if not isinstance(item_type, str) or not item_type:
            raise PayloadError("Invalid envelope.", {f"items[{len(envelope.items)}].type": "is required"})
        length = item_headers.get("length")
        if length is not None:
            if isinstance(length, bool) or not isinstance(length, int) or length < 0:
                raise PayloadError(
                    "Invalid envelope.", {f"items[{len(envelope.items)}].length": "must be a non-negative integer"}
                )
            if after + length > len(body):
                raise PayloadError(
                    "Invalid envelope.", {f"items[{len(envelope.items)}].length": "runs past the end of the body"}
                )
            payload = body[after : after + length]
            position = after + length
            if body[position : position + 1] == b"\n":
                position += 1
        else:
            payload, position = _line(body, after)
        envelope.items.append(EnvelopeItem(type=item_type, headers=item_headers, payload=payload))
        if len(envelope.items) > MAX_ITEMS:
            raise PayloadError("Invalid envelope.", {"items": f"at most {MAX_ITEMS} items per envelope"})
    return envelope


def _line(body: bytes, start: int) -> tuple[bytes, int]:
    end = body.find(b"\n", start)
    if end < 0:
        return body[start:], len(body)
    return body[start:end], end + 1


def _json_object(line: bytes, what: str) -> dict:
    try:
        value = json.loads(line) if line.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, RecursionError):
        raise PayloadError("Invalid envelope.", {what: "is not a JSON object on one line"}) from None
    if not isinstance(value, dict):
        raise PayloadError("Invalid envelope.", {what: "must be a JSON object"})
    return value


def auth_key(header: str) -> str:
    """The `sentry_key` of an `X-Sentry-Auth` (or `Authorization: Sentry ...`) header; "" when absent."""
    text = header.strip()
    if text[:7].lower() == "sentry ":
        text = text[7:]
    for part in text.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip() == "sentry_key":
            return value.strip()
    return ""


def dsn_key(dsn: object) -> str:
    """The public key in a DSN (`https://<key>@host/<project>`); "" when it is not one."""
    if not isinstance(dsn, str):
        return ""
    try:
        return urlsplit(dsn).username or ""
    except ValueError:
        return ""


def dsn_project(dsn: object) -> str:
    """The project id at the end of a DSN's path; "" when it is not one."""
    if not isinstance(dsn, str):
        return ""
    try:
        return urlsplit(dsn).path.rstrip("/").rsplit("/", 1)[-1]
    except ValueError:
        return ""


def rate_limit_header(retry_after: int) -> str:
    """Sentry's X-Sentry-Rate-Limits value for an integration over its event limit."""
    return f"{retry_after}:{';'.join(EVENT_RATE_LIMIT_CATEGORIES)}:key:quench_rate_limit"

"""Sentry SDK ingestion: `POST /api/<project id>/envelope/` and `/api/<project id>/store/`.

A stock Sentry SDK pointed at an integration's DSN reports here as it would to Sentry.
Answers follow Sentry (Relay) so that SDKs behave: 200 `{"id": <event id>}` once the
event is durably stored; 401 without a key; 403 for an unknown or disabled key or a
project id that is not the key's; 413 for a body over the limit (the SDK drops it
instead of retrying); 429 with `Retry-After` and `X-Sentry-Rate-Limits` above the
integration's per-minute limit (the SDK backs off). Bodies carry Quench's
`{"error": ..., "detail": {...}}` so people reading them see what is wrong.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from config.api.errors import json_error
from config.api.exceptions import PayloadTooLarge
from incidents import metrics
from incidents.api.ingest import read_body_within
from incidents.services import ingest_signals
from incidents.services.rate_limits import take_event_allowance
from incidents.sources import sentry
from incidents.sources._json import load_json
from incidents.sources.base import PayloadError
from incidents.sources.sentry import auth
from incidents.sources.sentry.envelope import (
    EVENT_ITEM,
    IGNORED_ITEMS,
    BodyTooLarge,
    decode_body,
    dsn_project,
    legacy_store_body,
    parse_envelope,
    rate_limit_header,
)

logger = logging.getLogger(__name__)
SOURCE = sentry.SOURCE


class _SentryIngestView(View):
    """Shared reading of an SDK request: bounded body, Content-Encoding, DSN key, project id."""

    http_method_names = ["post"]

    @method_decorator(csrf_exempt)
    def dispatch(self, request, *args, **kwargs):
        return super().dispatch(request, *args, **kwargs)

    def post(self, request, project_id: int):
        limit = settings.QUENCH_SENTRY_MAX_ENVELOPE_BYTES
        try:
            raw = read_body_within(request, limit)
        except PayloadTooLarge:
            return self._too_large(limit)
        # A key in the headers or query is checked before the body is read; an envelope
        # may carry it in its own header instead (`dsn`), which needs the body parsed first.
        public_key = auth.public_key_from_headers(request)
        integration = self._integration(public_key) if public_key else None
        if public_key and integration is None:
            return self._unknown_key()
        try:
            body = decode_body(raw, request.META.get("HTTP_CONTENT_ENCODING", ""), limit)
            envelope_headers, items = self.read_items(body, limit)
        except BodyTooLarge as exc:
            return self._too_large(exc.limit)
        except PayloadError as exc:
            if integration is None:  # an anonymous sender learns only that it must authenticate
                return self._unauthenticated()
            metrics.count_rejected(SOURCE, "invalid")
            return json_error(exc.message, exc.detail, status=400)
        if integration is None:
            public_key = auth.public_key_from_envelope(envelope_headers)
            if not public_key:
                return self._unauthenticated()
            integration = self._integration(public_key)
            if integration is None:
                return self._unknown_key()
        envelope_project = dsn_project(envelope_headers.get("dsn"))
        if integration.pk != project_id or (envelope_project and envelope_project != str(project_id)):
            metrics.count_rejected(SOURCE, "unauthenticated")
            return json_error(
                "The DSN's project id does not belong to this key.",
                {"project_id": f"this key's DSN ends in /{integration.pk}"},
                status=403,
            )
        events = [payload for item_type, payload in items if item_type == EVENT_ITEM]
        for item_type, _payload in items:
            if item_type != EVENT_ITEM:
                metrics.count_ignored(SOURCE, item_type if item_type in IGNORED_ITEMS else "other")
        retry_after = take_event_allowance(integration, len(events))
        if retry_after:
            metrics.count_rejected(SOURCE, "rate_limited")
            return json_error(
                "Too many events from this integration; the SDK will retry after the window.",
                {"rate_limit": f"{integration.events_per_minute_limit()} events per minute"},
                status=429,
                headers={"Retry-After": str(retry_after), "X-Sentry-Rate-Limits": rate_limit_header(retry_after)},
            )
        try:
            signals = [sentry.parse_sdk_event(self.event_json(payload)) for payload in events]
        except BodyTooLarge as exc:
            return self._too_large(exc.limit)
        except PayloadError as exc:
            metrics.count_rejected(SOURCE, "invalid")
            return json_error(exc.message, exc.detail, status=400)
        results = ingest_signals(signals, integration=integration)
        metrics.count_outcomes(SOURCE, results)
        event_id = envelope_headers.get("event_id") or (signals[0].source_id if signals else "")
        return JsonResponse({"id": event_id} if isinstance(event_id, str) and event_id else {})

    def read_items(self, body: bytes, limit: int) -> tuple[dict, list[tuple[str, bytes]]]:
        raise NotImplementedError

    @staticmethod
    def event_json(payload: bytes) -> object:
        # Sentry holds one event to a smaller limit than a whole envelope.
        if len(payload) > settings.QUENCH_MAX_BODY_BYTES:
            raise BodyTooLarge(settings.QUENCH_MAX_BODY_BYTES)
        return load_json(payload)

    @staticmethod
    def _integration(public_key: str):
        return auth.integration_for_public_key(public_key)

    @staticmethod
    def _unknown_key() -> JsonResponse:
        metrics.count_rejected(SOURCE, "unauthenticated")
        return json_error(
            "Unknown or disabled DSN key: copy the DSN from the Sentry integration in Quench's admin.",
            {"sentry_key": "no enabled Sentry integration has this key"},
            status=403,
        )

    @staticmethod
    def _too_large(limit: int) -> JsonResponse:
        metrics.count_rejected(SOURCE, "too_large")
        return json_error("Request body too large.", {"body": f"over the limit of {limit} bytes"}, status=413)

    @staticmethod
    def _unauthenticated() -> JsonResponse:
        metrics.count_rejected(SOURCE, "unauthenticated")
        return json_error(
            "Missing DSN key: send X-Sentry-Auth: Sentry sentry_key=<public key>, or ?sentry_key=.",
            {"sentry_key": "is required"},
            status=401,
        )


class SentryEnvelopeView(_SentryIngestView):
    """The envelope endpoint every current Sentry SDK posts to."""

    def read_items(self, body: bytes, limit: int) -> tuple[dict, list[tuple[str, bytes]]]:
        envelope = parse_envelope(body)
        return envelope.headers, [(item.type, item.payload) for item in envelope.items]


class SentryStoreView(_SentryIngestView):
    """The legacy store endpoint: the body is one event (older SDKs, and tools that speak it)."""

    def read_items(self, body: bytes, limit: int) -> tuple[dict, list[tuple[str, bytes]]]:
        return {}, [(EVENT_ITEM, legacy_store_body(body, limit))]

"""Ingestion endpoints: authenticate, read the body safely, parse with the source adapter, ingest.

Views stay thin: the adapters know the payload formats and the ingest service knows
the rules. What they share here is the careful reading of the request: the right
content type (415), a bounded body (413), well-formed JSON (400).
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.exceptions import PayloadTooLarge, error_response
from incidents import metrics
from incidents.api.authentication import IntegrationTokenAuthentication, integration_for_token
from incidents.api.schemas import GenericEventSerializer
from incidents.choices import EventOutcome, IntegrationKind
from incidents.models import Integration
from incidents.services import ingest_signals
from incidents.sources import alertmanager, events_v2, generic, grafana, sentry
from incidents.sources._json import load_json
from incidents.sources.base import PayloadError

JSON_CONTENT_TYPES = ("application/json",)


class IsIntegration(BasePermission):
    message = "An integration token is required."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, Integration)


def read_json_body(request):
    """The request's JSON body, or the right 4xx: 415 wrong type, 413 too large, 400 malformed."""
    content_type = request.META.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if content_type not in JSON_CONTENT_TYPES and not content_type.endswith("+json"):
        raise exceptions.UnsupportedMediaType(content_type or "(none)")
    return load_json(read_body_within(request._request, settings.QUENCH_MAX_BODY_BYTES))


def read_body_within(http_request, limit: int) -> bytes:
    """The raw request body, or PayloadTooLarge when it declares or turns out to be over `limit`.

    Never reads more than `limit` + 1 bytes, whatever Content-Length says.
    """
    try:
        declared = int(http_request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise PayloadTooLarge(f"Request body is {declared} bytes; the limit is {limit} bytes.")
    body = http_request.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"Request body is over the limit of {limit} bytes.")
    return body


class IngestView(APIView):
    """Base of the webhook endpoints: one source kind, one adapter."""

    kind: str = ""
    adapter = None
    authentication_classes = [IntegrationTokenAuthentication]
    permission_classes = [IsIntegration]
    # The body is read by read_json_body (bounded, with our error answers); the parser
    # only tells the OpenAPI schema that these endpoints take JSON.
    parser_classes = [JSONParser]

    def post(self, request, *args, **kwargs):
        integration: Integration = request.auth
        if integration.kind != self.kind:
            metrics.count_rejected(self.kind, "wrong_kind")
            return error_response(
                f"This token belongs to a {integration.get_kind_display()} integration; "
                f"post to /api/v1/ingest/{_endpoint_for(integration.kind)} instead.",
                {"token": "integration kind does not match this endpoint"},
                status_code=403,
            )
        try:
            payload = read_json_body(request)
            signals = self.adapter.parse(payload)
        except (PayloadError, exceptions.APIException):
            metrics.count_rejected(self.kind, "invalid")
            raise
        results = ingest_signals(signals, integration=integration)
        metrics.count_outcomes(self.kind, results)
        return Response(_summary(results), status=202)


def _summary(results) -> dict:
    return {
        "accepted": sum(r.outcome != EventOutcome.DUPLICATE for r in results),
        "duplicates": sum(r.outcome == EventOutcome.DUPLICATE for r in results),
        "results": [{"outcome": r.outcome, "incident_id": r.incident_id, "event_id": r.event_id} for r in results],
    }


def _endpoint_for(kind: str) -> str:
    return {IntegrationKind.EVENTS_V2: "events-v2", IntegrationKind.GENERIC: "events"}.get(kind, kind)


_RESULT_SCHEMA = inline_serializer(
    "IngestResult",
    {
        "accepted": serializers.IntegerField(),
        "duplicates": serializers.IntegerField(help_text="Retried deliveries already stored; nothing new was written."),
        "results": serializers.ListField(child=serializers.DictField()),
    },
)
_ERROR_SCHEMA = inline_serializer(
    "Error", {"error": serializers.CharField(), "detail": serializers.DictField(child=serializers.CharField())}
)
_ERRORS = {400: _ERROR_SCHEMA, 401: _ERROR_SCHEMA, 403: _ERROR_SCHEMA, 413: _ERROR_SCHEMA, 415: _ERROR_SCHEMA}


def _webhook_schema(summary: str, description: str):
    return extend_schema(
        summary=summary,
        description=description,
        request=OpenApiTypes.OBJECT,
        responses={202: _RESULT_SCHEMA, **_ERRORS},
    )


class AlertmanagerIngestView(IngestView):
    kind = IntegrationKind.ALERTMANAGER
    adapter = alertmanager

    @_webhook_schema(
        "Prometheus Alertmanager webhook",
        "Point an Alertmanager `webhook_config` here (version 4 payload, firing and resolved, many alerts "
        "per request). Authenticate with `http_config.authorization.credentials: <token>`.",
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class GrafanaIngestView(IngestView):
    kind = IntegrationKind.GRAFANA
    adapter = grafana

    @_webhook_schema(
        "Grafana alerting webhook",
        "A Grafana unified-alerting webhook contact point. Authenticate with the Authorization header "
        "(Bearer <token>).",
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class SentryIngestView(IngestView):
    kind = IntegrationKind.SENTRY
    adapter = sentry

    @_webhook_schema(
        "Sentry webhook",
        "Sentry issue-alert, error and issue webhooks. Sentry cannot set headers on webhooks, so append "
        "`?token=<token>` to the URL.",
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class GenericIngestView(IngestView):
    kind = IntegrationKind.GENERIC
    adapter = generic

    @extend_schema(
        summary="Generic JSON events",
        description="One event object or a list of up to 1,000. A retried delivery (same `event_id`, or the same "
        "`dedup_key` + `occurred_at` + `status`) is answered with success and stores nothing new.",
        request=GenericEventSerializer(many=True),
        responses={202: _RESULT_SCHEMA, **_ERRORS},
        examples=[
            OpenApiExample(
                "A crash",
                value={
                    "service": "payments",
                    "environment": "production",
                    "title": "KeyError: 'currency'",
                    "exception_type": "KeyError",
                    "traceback": 'Traceback (most recent call last):\n  File "app/payments.py", line 42, in charge\n'
                    "    amount = order['currency']\nKeyError: 'currency'",
                    "path": "/api/orders/1234/pay",
                    "method": "POST",
                    "severity": "error",
                },
                request_only=True,
            )
        ],
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class EventsV2IngestView(APIView):
    """PagerDuty Events API v2 compatible: the routing_key in the body is the integration token."""

    authentication_classes: list = []
    permission_classes: list = []
    parser_classes = [JSONParser]
    kind = IntegrationKind.EVENTS_V2

    @extend_schema(
        summary="PagerDuty Events API v2 compatible",
        description="Send exactly what you would send to PagerDuty's `/v2/enqueue`, with the Quench integration "
        "token as `routing_key`. Answers in PagerDuty's response shape (plus `error`/`detail` on errors).",
        request=OpenApiTypes.OBJECT,
        responses={202: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT, 401: OpenApiTypes.OBJECT},
    )
    def post(self, request, *args, **kwargs):
        try:
            payload = read_json_body(request)
        except PayloadError as exc:
            metrics.count_rejected(self.kind, "invalid")
            return _pd_error(exc.message, exc.detail, 400)
        except exceptions.APIException as exc:
            metrics.count_rejected(self.kind, "invalid")
            return _pd_error(str(exc.detail), {}, exc.status_code)
        try:
            routing_key = events_v2.routing_key(payload)
        except PayloadError as exc:
            metrics.count_rejected(self.kind, "unauthenticated")
            return _pd_error(exc.message, exc.detail, 400)
        integration = integration_for_token(routing_key)
        if integration is None or integration.kind != self.kind:
            metrics.count_rejected(self.kind, "unauthenticated")
            return _pd_error(
                "Invalid routing key: unknown, disabled, or not an Events v2 integration.",
                {"routing_key": "invalid"},
                401,
            )
        try:
            signals = events_v2.parse(payload)
        except PayloadError as exc:
            metrics.count_rejected(self.kind, "invalid")
            return _pd_error(exc.message, exc.detail, 400)
        events_v2.fill_generated_dedup_keys(signals)
        results = ingest_signals(signals, integration=integration)
        metrics.count_outcomes(self.kind, results)
        return Response(
            {
                "status": "success",
                "message": "Event processed",
                "dedup_key": signals[0].dedup_key if signals else "",  # its own, or the generated one
            },
            status=202,
        )


def _pd_error(message: str, detail: dict, status_code: int) -> Response:
    errors = [f"{field}: {problem}" for field, problem in detail.items()] or [message]
    return Response(
        {
            "status": "invalid event" if status_code == 400 else "unauthorized",
            "message": "Event object is invalid" if status_code == 400 else message,
            "errors": errors,
            "error": message,
            "detail": detail,
        },
        status=status_code,
    )


class PingView(APIView):
    """A trivial authenticated endpoint: checks a token without touching incidents (and serves the benchmark)."""

    authentication_classes = [IntegrationTokenAuthentication]
    permission_classes = [IsIntegration]

    @extend_schema(
        summary="Check an integration token",
        responses={
            200: inline_serializer("Ping", {"ok": serializers.BooleanField(), "integration": serializers.CharField()})
        },
    )
    def get(self, request):
        return Response({"ok": True, "integration": request.auth.name})

"""POST /api/v1/complaints: customer complaints from help desks, chat and email tools.

Authenticated like the ingestion endpoints (an integration token, of any kind) and read
the same careful way (415, 413, malformed JSON); the rules live in incidents.complaints.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.exceptions import error_response
from config.api.fields import StrictCharField
from incidents.api.authentication import IntegrationTokenAuthentication
from incidents.api.ingest import _ERRORS, IsIntegration, read_json_body
from incidents.complaints import MAX_COMPLAINTS_PER_REQUEST, MAX_MESSAGE_CHARS, record_complaints

# Clocks differ, but a complaint from tomorrow is a bug at the sender, and it would
# also keep matching incidents that do not exist yet.
MAX_CLOCK_SKEW = timedelta(hours=1)


class ComplaintReportSerializer(serializers.Serializer):
    """One customer complaint as a help desk or chat tool sends it."""

    customer_id = serializers.CharField(max_length=200, help_text="The customer's id in your systems.")
    customer_name = serializers.CharField(max_length=200, required=False, allow_blank=True, allow_null=True)
    channel = serializers.CharField(
        max_length=50, required=False, allow_blank=True, allow_null=True, help_text="support, email, chat, ..."
    )
    service = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="The service it is about; the integration's default service when left out.",
    )
    message = StrictCharField(
        max_length=MAX_MESSAGE_CHARS, help_text="What the customer said; secrets are redacted before storage."
    )
    reported_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="ISO 8601, UTC when no offset is given; default: now."
    )
    id = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="The report's id at its source (ticket id): a retried delivery with the same id is stored once.",
    )

    def validate_reported_at(self, value):
        if value is not None and value > timezone.now() + MAX_CLOCK_SKEW:
            raise serializers.ValidationError("Is in the future; send when the customer reported it.")
        return value


class ComplaintResultSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The stored complaint.")
    incident_id = serializers.IntegerField(allow_null=True, help_text="The incident it was linked to, or null.")
    correlation = serializers.CharField(help_text="Why it was linked, e.g. `service shop, active 12 min before`.")
    duplicate = serializers.BooleanField(help_text="A retried delivery: already stored, nothing new was written.")
    keywords = serializers.ListField(child=serializers.CharField(), help_text="Impact found: payment, outage.")


_RESPONSE = inline_serializer(
    "ComplaintIngestResult",
    {
        "accepted": serializers.IntegerField(),
        "duplicates": serializers.IntegerField(),
        "results": ComplaintResultSerializer(many=True),
    },
)


class ComplaintIngestView(APIView):
    """Thin: authenticate, read, validate, call incidents.complaints.record_complaints, answer."""

    authentication_classes = [IntegrationTokenAuthentication]
    permission_classes = [IsIntegration]
    parser_classes = [JSONParser]  # documents the media type; read_json_body reads the body

    @extend_schema(
        summary="Customer complaints",
        description=(
            f"One complaint object or a list of up to {MAX_COMPLAINTS_PER_REQUEST}. Any integration token works. "
            "Each complaint is linked to the open incident it most likely concerns (same service, active around "
            "`reported_at`, shared words) and may raise that incident's priority: payment or outage words → at "
            "least P1, 5 distinct customers → P1, 20 → P0. A retried delivery with the same `id` is stored once."
        ),
        request=ComplaintReportSerializer(many=True),
        responses={202: _RESPONSE, **_ERRORS},
        examples=[
            OpenApiExample(
                "A complaint",
                value={
                    "id": "ticket-8812",
                    "customer_id": "cus_1042",
                    "customer_name": "Ada Lovelace",
                    "channel": "support",
                    "service": "shop",
                    "message": "Checkout fails: my card was charged but the order page shows an error.",
                    "reported_at": "2026-11-23T14:05:00Z",
                },
                request_only=True,
            ),
            OpenApiExample(
                "Linked to an incident",
                value={
                    "accepted": 1,
                    "duplicates": 0,
                    "results": [
                        {
                            "id": 311,
                            "incident_id": 42,
                            "correlation": "service shop, active at the time, words: card, checkout",
                            "duplicate": False,
                            "keywords": ["payment"],
                        }
                    ],
                },
                response_only=True,
                status_codes=["202"],
            ),
        ],
    )
    def post(self, request, *args, **kwargs):
        payload = read_json_body(request)
        many = isinstance(payload, list)
        if not many and not isinstance(payload, dict):
            return error_response("Send a complaint object or a list of them.", {"body": "not an object or a list"})
        if many and not payload:
            return error_response("The list is empty: send at least one complaint.", {"body": "empty list"})
        if many and len(payload) > MAX_COMPLAINTS_PER_REQUEST:
            return error_response(
                f"Too many complaints: at most {MAX_COMPLAINTS_PER_REQUEST} per request.",
                {"body": f"{len(payload)} items; the limit is {MAX_COMPLAINTS_PER_REQUEST}"},
            )
        serializer = ComplaintReportSerializer(data=payload, many=many)
        if not serializer.is_valid():
            raise serializers.ValidationError(_indexed(serializer.errors) if many else serializer.errors)
        items = serializer.validated_data if many else [serializer.validated_data]
        results = record_complaints(items, integration=request.auth)
        return Response(
            {
                "accepted": sum(not result.duplicate for result in results),
                "duplicates": sum(result.duplicate for result in results),
                "results": [
                    {
                        "id": result.complaint_id,
                        "incident_id": result.incident_id,
                        "correlation": result.correlation,
                        "duplicate": result.duplicate,
                        "keywords": result.keywords,
                    }
                    for result in results
                ],
            },
            status=202,
        )


def _indexed(errors):
    """Item errors of a list keyed "[3]", so that field paths read "[3].message" like the other endpoints."""
    if isinstance(errors, list):
        errors = dict(enumerate(errors))
    return {f"[{key}]" if isinstance(key, int) else key: problem for key, problem in errors.items() if problem}

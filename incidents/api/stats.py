"""`GET /api/v1/stats?days=30`: the analytics dashboard's figures as JSON (see incidents.analytics)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.authentication import STAFF_AUTHENTICATION
from config.api.permissions import IsEngineer
from incidents import analytics

_SEVERITIES = {name: serializers.IntegerField() for name in ("P0", "P1", "P2", "P3")}


class StatsQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(
        required=False, default=30, min_value=1, max_value=analytics.MAX_DAYS, help_text="Window length in days."
    )


StatsSerializer = inline_serializer(
    "Stats",
    {
        "days": serializers.IntegerField(),
        "from": serializers.DateTimeField(),
        "to": serializers.DateTimeField(),
        "incidents": inline_serializer(
            "StatsIncidents",
            {
                "total": serializers.IntegerField(),
                "by_severity": inline_serializer("StatsSeverities", _SEVERITIES),
                "by_day": inline_serializer(
                    "StatsDay",
                    {"date": serializers.DateField(), **_SEVERITIES, "total": serializers.IntegerField()},
                    many=True,
                ),
            },
        ),
        "acknowledged": serializers.IntegerField(
            help_text="Incidents of the window someone responded to (acknowledged, or acted on)."
        ),
        "resolved": serializers.IntegerField(help_text="Incidents of the window that are resolved."),
        "mtta_seconds": serializers.FloatField(
            allow_null=True,
            help_text="Mean time from first seen to the first response (acknowledgement or a person's action).",
        ),
        "mttr_seconds": serializers.FloatField(allow_null=True, help_text="Mean time from first seen to resolved."),
        "trend": inline_serializer(
            "StatsTrend",
            {
                "date": serializers.DateField(),
                "mtta_seconds": serializers.FloatField(allow_null=True),
                "mttr_seconds": serializers.FloatField(allow_null=True),
            },
            many=True,
        ),
        "endings": inline_serializer("StatsEndings", {name: serializers.IntegerField() for name in analytics.ENDINGS}),
        "approvals": serializers.DictField(child=serializers.IntegerField(), help_text="Proposals created, by status."),
        "fix_attempts": inline_serializer(
            "StatsFixAttempts",
            {
                "total": serializers.IntegerField(),
                "per_incident": serializers.FloatField(),
                "max": serializers.IntegerField(),
                "distribution": serializers.DictField(child=serializers.IntegerField()),
            },
        ),
        "noisiest_fingerprints": inline_serializer(
            "StatsNoisyFingerprint",
            {
                "incident_id": serializers.IntegerField(),
                "fingerprint": serializers.CharField(),
                "title": serializers.CharField(),
                "service": serializers.CharField(),
                "events": serializers.IntegerField(),
            },
            many=True,
        ),
        "noisiest_services": inline_serializer(
            "StatsNoisyService",
            {
                "service": serializers.CharField(),
                "events": serializers.IntegerField(),
                "incidents": serializers.IntegerField(),
            },
            many=True,
        ),
    },
)


class StatsView(APIView):
    """Incidents, MTTA/MTTR, endings, approvals, fix attempts and the noisiest sources over a window."""

    authentication_classes = STAFF_AUTHENTICATION
    permission_classes = [IsEngineer]

    @extend_schema(
        parameters=[OpenApiParameter("days", int, description="Window length in days, 1 to 365 (default 30).")],
        responses={200: StatsSerializer},
    )
    def get(self, request):
        # A plain dict: DRF reads an empty value of a QueryDict as "not given" (`?days=` → the default).
        query = StatsQuerySerializer(data=request.query_params.dict())
        if not query.is_valid():
            raise ValidationError(query.errors)
        return Response(analytics.figures(query.validated_data["days"]))

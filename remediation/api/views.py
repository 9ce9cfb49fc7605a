"""The remediation API: read diagnoses (with their fix attempts and proposals)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.authentication import BasicAuthentication, SessionAuthentication

from incidents.api.views import IsEngineer
from remediation.api.serializers import DiagnosisSerializer
from remediation.models import Diagnosis


@extend_schema(parameters=[OpenApiParameter("incident", int, description="Only this incident's diagnoses.")])
class DiagnosisViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    authentication_classes = [SessionAuthentication, BasicAuthentication]
    permission_classes = [IsEngineer]
    serializer_class = DiagnosisSerializer

    def get_queryset(self):
        queryset = Diagnosis.objects.prefetch_related("attempts", "approvals").order_by("-created_at", "-id")
        incident = self.request.query_params.get("incident", "")
        if incident:
            if not incident.isdigit():
                from rest_framework.exceptions import ValidationError

                raise ValidationError({"incident": "Must be an incident id."})
            queryset = queryset.filter(incident_id=int(incident))
        return queryset

"""The incident API: list, detail, and the acknowledge / resolve / reopen actions."""

from __future__ import annotations

from django.db.models import Q
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from config.api.authentication import STAFF_AUTHENTICATION
from config.api.exceptions import ApiErrorSerializer
from config.api.permissions import IsEngineer
from incidents.api.serializers import IncidentActionSerializer, IncidentDetailSerializer, IncidentListSerializer
from incidents.choices import IncidentStatus, Severity
from incidents.models import Incident, Postmortem
from incidents.postmortems import export_markdown
from incidents.services import acknowledge_incident, reopen_incident, resolve_incident


def _choice_list(value: str, allowed, name: str) -> list[str]:
    items = [item.strip() for item in value.split(",") if item.strip()]
    bad = [item for item in items if item not in allowed]
    if bad:
        raise ValidationError({name: f"Unknown value(s) {', '.join(bad)}; choose from {', '.join(allowed)}."})
    return items


ACTION_RESPONSES = {
    200: IncidentDetailSerializer,
    409: OpenApiResponse(ApiErrorSerializer, description="Refused in the incident's current state."),
}


@extend_schema(
    parameters=[
        OpenApiParameter("status", str, description="Comma-separated statuses, or `open` for every unresolved one."),
        OpenApiParameter("severity", str, description="Comma-separated: P0,P1,P2,P3."),
        OpenApiParameter("service", str),
        OpenApiParameter("search", str, description="Words in the title, message, exception type or fingerprint."),
    ]
)
class IncidentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    authentication_classes = STAFF_AUTHENTICATION
    permission_classes = [IsEngineer]
    queryset = Incident.objects.all()

    def get_serializer_class(self):
        return IncidentDetailSerializer if self.action == "retrieve" else IncidentListSerializer

    def get_queryset(self):
        queryset = Incident.objects.all()
        if self.action == "retrieve":
            return queryset.prefetch_related("timeline")
        params = self.request.query_params
        if status := params.get("status"):
            if status == "open":
                queryset = queryset.exclude(status=IncidentStatus.RESOLVED)
            else:
                queryset = queryset.filter(status__in=_choice_list(status, IncidentStatus.values, "status"))
        if severity := params.get("severity"):
            queryset = queryset.filter(severity__in=_choice_list(severity, Severity.values, "severity"))
        if service := params.get("service"):
            queryset = queryset.filter(service=service)
        if search := params.get("search", "").strip():
            for word in search.split()[:8]:
                queryset = queryset.filter(
                    Q(title__icontains=word)
                    | Q(message__icontains=word)
                    | Q(exception_type__icontains=word)
                    | Q(fingerprint__startswith=word.lower())
                )
        return queryset.order_by("-last_seen", "-id")

    def _act(self, request, pk, service_function):
        serializer = IncidentActionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.get_object()  # 404 for an unknown id before anything else
        incident = service_function(
            int(pk), actor=request.user.get_username(), note=serializer.validated_data.get("note", "")
        )
        incident = self.get_queryset().get(pk=incident.pk)
        return Response(IncidentDetailSerializer(incident).data)

    @extend_schema(request=IncidentActionSerializer, responses=ACTION_RESPONSES)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        return self._act(request, pk, acknowledge_incident)

    @extend_schema(request=IncidentActionSerializer, responses=ACTION_RESPONSES)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        return self._act(request, pk, resolve_incident)

    @extend_schema(
        summary="The incident's postmortem as Markdown",
        operation_id="incidents_postmortem_markdown",
        responses={(200, "text/markdown"): OpenApiTypes.STR, 404: OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["get"], url_path="postmortem.md", url_name="postmortem-markdown")
    def postmortem_markdown(self, request, pk=None):
        incident = self.get_object()
        postmortem = Postmortem.objects.filter(incident=incident).first()
        if postmortem is None:
            raise NotFound(f"Incident #{incident.pk} has no postmortem yet.")
        response = HttpResponse(export_markdown(postmortem), content_type="text/markdown; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="postmortem-incident-{incident.pk}.md"'
        return response

    @extend_schema(request=IncidentActionSerializer, responses=ACTION_RESPONSES)
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        return self._act(request, pk, reopen_incident)

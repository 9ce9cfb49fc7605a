"""The remediation API: diagnoses (with fix attempts and proposals) and the approval desk."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.authentication import STAFF_AUTHENTICATION
from config.api.params import choice_param, id_param
from config.api.permissions import IsEngineer
from incidents.models import Incident
from remediation import approvals
from remediation.api.serializers import (
    ApprovalDetailSerializer,
    ApproveSerializer,
    DiagnosisSerializer,
    ReanalyzeResponseSerializer,
    RejectSerializer,
)
from remediation.choices import ApprovalStatus
from remediation.models import ApprovalRequest, Diagnosis
from remediation.queries import approval_queue
from remediation.services import reanalyze


@extend_schema(parameters=[OpenApiParameter("incident", int, description="Only this incident's diagnoses.")])
class DiagnosisViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    authentication_classes = STAFF_AUTHENTICATION
    permission_classes = [IsEngineer]
    serializer_class = DiagnosisSerializer

    def get_queryset(self):
        queryset = Diagnosis.objects.prefetch_related("attempts", "approvals").order_by("-created_at", "-id")
        if (incident := id_param(self.request, "incident")) is not None:
            queryset = queryset.filter(incident_id=incident)
        return queryset


DECISION_RESPONSES = {
    200: ApprovalDetailSerializer,
    403: OpenApiResponse(description="Not an approver."),
    409: OpenApiResponse(description="No longer pending (decided, expired or superseded)."),
}


class CanReadApprovals(BasePermission):
    """Staff who may see incidents read approvals; deciding needs approve_remediation (checked by the service)."""

    message = "You need to be a staff user with permission to view incidents."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(
            user
            and getattr(user, "is_authenticated", False)
            and getattr(user, "is_staff", False)
            and user.has_perm("incidents.view_incident")
        )


@extend_schema(
    parameters=[
        OpenApiParameter(
            "status", str, enum=ApprovalStatus.values, description="Only approvals in this state (e.g. pending)."
        ),
        OpenApiParameter("incident", int, description="Only this incident's approvals."),
    ]
)
class ApprovalViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Proposed remediations; pending ones are listed by severity, then oldest first (the queue)."""

    authentication_classes = STAFF_AUTHENTICATION
    permission_classes = [CanReadApprovals]
    serializer_class = ApprovalDetailSerializer

    def get_queryset(self):
        status = choice_param(self.request, "status", ApprovalStatus.values)
        queryset = approval_queue(status=status).select_related("fix_attempt", "diagnosis", "execution")
        if (incident := id_param(self.request, "incident")) is not None:
            queryset = queryset.filter(incident_id=incident)
        return queryset

    def _decided(self, approval: ApprovalRequest) -> Response:
        return Response(ApprovalDetailSerializer(self.get_queryset().get(pk=approval.pk)).data)

    @extend_schema(request=ApproveSerializer, responses=DECISION_RESPONSES)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve the proposal: Quench publishes the fix (or runs the playbook) and verifies it."""
        serializer = ApproveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        approval = self.get_object()
        approvals.approve(approval.pk, user=request.user, note=serializer.validated_data["note"])
        return self._decided(approval)

    @extend_schema(request=RejectSerializer, responses=DECISION_RESPONSES)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """Reject with feedback; a code fix gets a new attempt that must act on it."""
        serializer = RejectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        approval = self.get_object()
        approvals.reject(approval.pk, user=request.user, feedback=serializer.validated_data["feedback"])
        return self._decided(approval)


class IncidentReanalyzeView(APIView):
    """POST /api/v1/incidents/{id}/reanalyze: ask for a fresh diagnosis (the incident API's action, served here)."""

    authentication_classes = STAFF_AUTHENTICATION
    permission_classes = [IsEngineer]

    @extend_schema(
        operation_id="incidents_reanalyze_create",
        request=None,
        responses={202: ReanalyzeResponseSerializer, 409: OpenApiResponse(description="Refused in this state.")},
        tags=["incidents"],
    )
    def post(self, request, incident_id: int):
        """Ask for a fresh diagnosis; a repeat within QUENCH_REANALYZE_DEDUP_MINUTES returns the first (409 if refused)."""
        get_object_or_404(Incident, pk=incident_id)
        diagnosis, created = reanalyze(incident_id, actor=request.user.get_username())
        body = ReanalyzeResponseSerializer({"deduplicated": not created, "diagnosis": diagnosis}).data
        return Response(body, status=202)

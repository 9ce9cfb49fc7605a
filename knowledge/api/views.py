"""The knowledge API: `GET knowledge/search` and `GET incidents/{id}/similar`.

Thin views: parse and check the query parameters, call `knowledge.retrieval`, serialize.
Authentication and permissions are the incident API's (staff with the incident permissions).
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.authentication import STAFF_AUTHENTICATION
from config.api.permissions import IsEngineer
from incidents.models import Incident
from knowledge import retrieval
from knowledge.api.serializers import (
    MAX_K,
    KnowledgeSearchResponseSerializer,
    SearchParamsSerializer,
    SimilarIncidentsResponseSerializer,
    SimilarParamsSerializer,
)


class KnowledgeSearchView(APIView):
    authentication_classes = STAFF_AUTHENTICATION
    permission_classes = [IsEngineer]

    @extend_schema(
        operation_id="knowledge_search",
        summary="Search knowledge entries (hybrid: embeddings + full-text)",
        parameters=[
            OpenApiParameter(
                "q", str, required=True, description="What to look for: words, an error line, a question."
            ),
            OpenApiParameter("k", int, description=f"How many results, 1–{MAX_K} (default 10)."),
            OpenApiParameter(
                "kind", str, description="Comma-separated kinds: runbook, incident_summary, postmortem, fix, note."
            ),
            OpenApiParameter("service", str, description="Comma-separated services; an entry of any of them matches."),
        ],
        responses=KnowledgeSearchResponseSerializer,
    )
    def get(self, request):
        # A plain dict: DRF reads an empty value of a QueryDict as "not given" (`?k=` → the default).
        params = SearchParamsSerializer(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        query = params.validated_data
        hits = retrieval.search(
            query["q"], query["k"], kinds=query.get("kind") or None, services=query.get("service") or None
        )
        return Response(KnowledgeSearchResponseSerializer({"query": query["q"], "k": query["k"], "results": hits}).data)


class SimilarIncidentsView(APIView):
    authentication_classes = STAFF_AUTHENTICATION
    permission_classes = [IsEngineer]

    @extend_schema(
        operation_id="incidents_similar",
        summary="Past incidents most like this one",
        parameters=[OpenApiParameter("k", int, description=f"How many results, 1–{MAX_K} (default 5).")],
        responses=SimilarIncidentsResponseSerializer,
    )
    def get(self, request, incident_id: int):
        params = SimilarParamsSerializer(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        incident = get_object_or_404(Incident, pk=incident_id)
        k = params.validated_data["k"]
        hits = retrieval.similar_incidents(incident, k)
        return Response(SimilarIncidentsResponseSerializer({"incident": incident.pk, "k": k, "results": hits}).data)

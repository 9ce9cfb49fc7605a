"""Knowledge API routes, included under `api/v1/` (next to the incident API's)."""

from django.urls import path

from knowledge.api.views import KnowledgeSearchView, SimilarIncidentsView

urlpatterns = [
    path("knowledge/search", KnowledgeSearchView.as_view(), name="knowledge-search"),
    path("incidents/<int:incident_id>/similar", SimilarIncidentsView.as_view(), name="incident-similar"),
]

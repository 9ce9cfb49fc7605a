from django.urls import path
from rest_framework.routers import SimpleRouter

from incidents.api import ingest
from incidents.api.complaints import ComplaintIngestView
from incidents.api.stats import StatsView
from incidents.api.views import IncidentViewSet

router = SimpleRouter(trailing_slash=False)
router.register("incidents", IncidentViewSet, basename="incident")

urlpatterns = [
    path("ingest/alertmanager", ingest.AlertmanagerIngestView.as_view(), name="ingest-alertmanager"),
    path("ingest/grafana", ingest.GrafanaIngestView.as_view(), name="ingest-grafana"),
    path("ingest/sentry", ingest.SentryIngestView.as_view(), name="ingest-sentry"),
    path("ingest/events-v2", ingest.EventsV2IngestView.as_view(), name="ingest-events-v2"),
    path("ingest/events", ingest.GenericIngestView.as_view(), name="ingest-events"),
    path("ping", ingest.PingView.as_view(), name="ping"),
    path("complaints", ComplaintIngestView.as_view(), name="complaints"),
    path("stats", StatsView.as_view(), name="stats"),
    *router.urls,
]

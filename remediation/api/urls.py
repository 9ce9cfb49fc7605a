from django.urls import path
from rest_framework.routers import SimpleRouter

from remediation.api.views import ApprovalViewSet, DiagnosisViewSet, IncidentReanalyzeView

router = SimpleRouter(trailing_slash=False)
router.register("diagnoses", DiagnosisViewSet, basename="diagnosis")
router.register("approvals", ApprovalViewSet, basename="approval")

urlpatterns = [
    # Part of the incident API, served by the app that diagnoses (incidents never imports it).
    path("incidents/<int:incident_id>/reanalyze", IncidentReanalyzeView.as_view(), name="incident-reanalyze"),
    *router.urls,
]

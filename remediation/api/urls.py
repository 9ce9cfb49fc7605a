from rest_framework.routers import SimpleRouter

from remediation.api.views import ApprovalViewSet, DiagnosisViewSet

router = SimpleRouter(trailing_slash=False)
router.register("diagnoses", DiagnosisViewSet, basename="diagnosis")
router.register("approvals", ApprovalViewSet, basename="approval")

urlpatterns = router.urls

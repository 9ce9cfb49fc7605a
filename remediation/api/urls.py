from rest_framework.routers import SimpleRouter

from remediation.api.views import DiagnosisViewSet

router = SimpleRouter(trailing_slash=False)
router.register("diagnoses", DiagnosisViewSet, basename="diagnosis")

urlpatterns = router.urls

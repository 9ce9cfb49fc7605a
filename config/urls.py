from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.api.health import healthz
from config.api.metrics import metrics_view
from config.views import landing
from incidents.api.sentry_sdk import SentryEnvelopeView, SentryStoreView

urlpatterns = [
    path("", landing, name="landing"),
    path("admin/notifications/", include("notifications.urls")),  # signed action links; before the admin
    path("admin/", admin.site.urls),
    path("api/v1/", include("incidents.api.urls")),
    path("api/v1/", include("knowledge.api.urls")),
    path("api/v1/", include("remediation.api.urls")),
    path("api/v1/", include("notifications.api.urls")),
    # Sentry SDKs derive these from the DSN (https://<key>@<host>/<project id>): no /v1/ prefix.
    path("api/<int:project_id>/envelope/", SentryEnvelopeView.as_view(), name="sentry-envelope"),
    path("api/<int:project_id>/store/", SentryStoreView.as_view(), name="sentry-store"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
]

handler400 = "config.api.errors.bad_request"
handler403 = "config.api.errors.permission_denied"
handler404 = "config.api.errors.not_found"
handler500 = "config.api.errors.server_error"

admin.site.site_header = "Quench"
admin.site.site_title = "Quench"
admin.site.index_title = "Incidents, sources and rules"

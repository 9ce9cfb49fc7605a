"""Django's error views (handler400/403/404/500): JSON under /api/, Django's HTML pages elsewhere.

DRF views answer their own errors (config.api.exceptions); these catch what happens
outside them: an unknown URL, a CSRF or host check failing, a crash.
"""

from django.http import JsonResponse
from django.views import defaults


def is_api(request) -> bool:
    """Whether the request is for the API (answered in JSON) rather than a page."""
    return request.path.startswith("/api/")


def json_error(message: str, detail: dict | None = None, *, status: int, headers: dict | None = None) -> JsonResponse:
    """The API's error body, `{"error": ..., "detail": {...}}`, outside DRF (plain Django views and middleware)."""
    return JsonResponse({"error": message, "detail": detail or {}}, status=status, headers=headers)


def bad_request(request, exception=None):
    if is_api(request):
        return json_error("Bad request.", status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception=None):
    if is_api(request):
        message = str(exception) if exception and str(exception) else "You do not have permission to do this."
        return json_error(message, status=403)
    return defaults.permission_denied(request, exception)


def not_found(request, exception=None):
    if is_api(request):
        return json_error("Not found.", {"path": request.path}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if is_api(request):
        return json_error("Internal error; it has been logged.", status=500)
    return defaults.server_error(request)

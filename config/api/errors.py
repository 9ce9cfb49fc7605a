"""Django's error views (handler400/403/404/500): JSON under /api/, Django's HTML pages elsewhere.

DRF views answer their own errors (config.api.exceptions); these catch what happens
outside them: an unknown URL, a CSRF or host check failing, a crash.
"""

from django.http import JsonResponse
from django.views import defaults


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def bad_request(request, exception=None):
    if _is_api(request):
        return JsonResponse({"error": "Bad request.", "detail": {}}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception=None):
    if _is_api(request):
        message = str(exception) if exception and str(exception) else "You do not have permission to do this."
        return JsonResponse({"error": message, "detail": {}}, status=403)
    return defaults.permission_denied(request, exception)


def not_found(request, exception=None):
    if _is_api(request):
        return JsonResponse({"error": "Not found.", "detail": {"path": request.path}}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return JsonResponse({"error": "Internal error; it has been logged.", "detail": {}}, status=500)
    return defaults.server_error(request)

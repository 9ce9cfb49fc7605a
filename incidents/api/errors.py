"""JSON answers for unknown URLs and unexpected errors under /api/, HTML elsewhere."""

from django.http import JsonResponse
from django.views import defaults


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "Not found.", "detail": {"path": request.path}}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "Internal error; it has been logged.", "detail": {}}, status=500)
    return defaults.server_error(request)

"""/metrics in Prometheus text format: the families each app registers, in registration order.

Apps add a renderer from `AppConfig.ready()` with `register_metrics` (incidents: events by
source and outcome, open incidents by severity); a renderer returns complete lines
(`# HELP`, `# TYPE` and samples).
"""

from __future__ import annotations

from collections.abc import Callable

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.decorators import (
    api_view,
    authentication_classes,
    content_negotiation_class,
    permission_classes,
    renderer_classes,
)
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response

from config.api.negotiation import OneFormat

_renderers: dict[str, Callable[[], str]] = {}


def register_metrics(name: str, render: Callable[[], str]) -> None:
    """Add (or replace, so that a second `ready()` is harmless) the metric families called `name`."""
    _renderers[name] = render


class PrometheusTextRenderer(BaseRenderer):
    """Prometheus' text exposition format (version 0.0.4), whatever the scraper asks for."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, dict):  # an error answer (a wrong method): its message, as text
            return f"# {data.get('error', data)}\n".encode()
        return data.encode()


@extend_schema(
    summary="Metrics in Prometheus text format",
    responses={(200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="Prometheus text format 0.0.4.")},
    tags=["operations"],
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
@renderer_classes([PrometheusTextRenderer])
@content_negotiation_class(OneFormat)
def metrics_view(request):
    text = "".join(render() for render in _renderers.values())
    return Response(text, content_type="text/plain; version=0.0.4; charset=utf-8")

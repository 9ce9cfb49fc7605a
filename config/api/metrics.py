"""/metrics in Prometheus text format: the families each app registers, in registration order.

Apps add a renderer from `AppConfig.ready()` with `register_metrics` (incidents: events by
source and outcome, open incidents by severity); a renderer returns complete lines
(`# HELP`, `# TYPE` and samples).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpResponse
from django.views.decorators.http import require_GET

_renderers: dict[str, Callable[[], str]] = {}


def register_metrics(name: str, render: Callable[[], str]) -> None:
    """Add (or replace, so that a second `ready()` is harmless) the metric families called `name`."""
    _renderers[name] = render


@require_GET
def metrics_view(request):
    text = "".join(render() for render in _renderers.values())
    return HttpResponse(text, content_type="text/plain; version=0.0.4; charset=utf-8")

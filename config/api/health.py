"""/healthz: the database and the queue, plus the checks apps register (scheduler, sandbox, ...).

Apps add their checks from `AppConfig.ready()` with `register_health_check` (incidents adds
"scheduler": has the cluster's scheduler beaten lately?, remediation adds "sandbox": is test
isolation available?). A check is a function returning a dict with "ok" (and "problem" when
not ok); it must be quick and must not raise (if it does, it counts as failing). A failing
critical check makes Quench "failing" (503); a failing non-critical one makes it degraded:
still 200, with the reason in the body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone
from django_q.models import OrmQ
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, content_negotiation_class, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from config.api.negotiation import OneFormat

QUEUE_STUCK_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class HealthCheck:
    name: str
    check: Callable[[], dict]
    critical: bool


_registry: dict[str, HealthCheck] = {}


def register_health_check(name: str, check: Callable[[], dict], *, critical: bool = True) -> None:
    """Add (or replace, so that a second `ready()` is harmless) the check called `name`."""
    _registry[name] = HealthCheck(name, check, critical)


def registered_health_checks() -> list[HealthCheck]:
    return list(_registry.values())


def _check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}


def queue_waiting() -> tuple[int, datetime | None]:
    """Tasks waiting in the ORM broker, and when the oldest of them was queued (None with none)."""
    oldest = OrmQ.objects.order_by("lock", "id").values_list("lock", flat=True).first()
    return OrmQ.objects.count(), oldest


def _check_queue() -> dict:
    backlog, oldest = queue_waiting()
    if backlog and oldest and timezone.now() - oldest > QUEUE_STUCK_AFTER:
        return {
            "ok": False,
            "backlog": backlog,
            "problem": "tasks waiting for more than 5 minutes: is a cluster running?",
        }
    return {"ok": True, "backlog": backlog}


_HEALTH = inline_serializer(
    "Health",
    {
        "status": serializers.ChoiceField(choices=["ok", "degraded", "failing"]),
        "checks": serializers.DictField(
            child=serializers.DictField(), help_text='Check name → {"ok": bool, "problem": "...", ...}.'
        ),
        "reasons": serializers.ListField(
            child=serializers.CharField(), required=False, help_text="`name: problem` of each failing check."
        ),
    },
)


@extend_schema(
    summary="Health: the database, the queue, the scheduler and the sandbox",
    responses={200: _HEALTH, 503: OpenApiResponse(_HEALTH, description="A critical check fails.")},
    tags=["operations"],
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
@content_negotiation_class(OneFormat)
def healthz(request):
    """ "ok" (200), "degraded" (200: a non-critical check fails, see "reasons") or "failing" (503)."""
    checks, critical = {}, {}
    everything = [("database", _check_database, True), ("queue", _check_queue, True)]
    everything += [(added.name, added.check, added.critical) for added in registered_health_checks()]
    for name, check, is_critical in everything:
        try:
            checks[name] = check()
        except Exception as exc:  # a health check reports failures, it must not become one
            checks[name] = {"ok": False, "problem": exc.__class__.__name__}
        critical[name] = is_critical
    failing = [name for name, result in checks.items() if not result["ok"]]
    if any(critical[name] for name in failing):
        status = "failing"
    else:
        status = "degraded" if failing else "ok"
    body = {"status": status, "checks": checks}
    if failing:
        body["reasons"] = [f"{name}: {checks[name].get('problem', 'failing')}" for name in failing]
    return Response(body, status=503 if status == "failing" else 200)

"""/healthz (database, queue, scheduler, and the checks other apps register) and /metrics (Prometheus text)."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from incidents import metrics
from incidents.health import registered_health_checks

QUEUE_STUCK_AFTER = timedelta(minutes=5)
SCHEDULER_SILENT_AFTER = timedelta(minutes=3)


def _check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}


def _check_queue() -> dict:
    from django_q.models import OrmQ

    oldest = OrmQ.objects.order_by("lock", "id").values_list("lock", flat=True).first()
    backlog = OrmQ.objects.count()
    if backlog and oldest and timezone.now() - oldest > QUEUE_STUCK_AFTER:
        return {
            "ok": False,
            "backlog": backlog,
            "problem": "tasks waiting for more than 5 minutes: is a cluster running?",
        }
    return {"ok": True, "backlog": backlog}


def _check_scheduler() -> dict:
    from incidents.models import Heartbeat

    beat = Heartbeat.objects.filter(name="scheduler").values_list("beat_at", flat=True).first()
    if beat is None:
        return {"ok": False, "problem": "no scheduler heartbeat yet: start the cluster with `manage.py qcluster`"}
    age = timezone.now() - beat
    if age > SCHEDULER_SILENT_AFTER:
        return {"ok": False, "last_beat": beat.isoformat(), "problem": f"no heartbeat for {int(age.total_seconds())} s"}
    return {"ok": True, "last_beat": beat.isoformat()}


@require_GET
def healthz(request):
    """ "ok" (200), "degraded" (200: a non-critical check fails, see "reasons") or "failing" (503: a critical check fails)."""
    checks, critical = {}, {}
    own = [("database", _check_database), ("queue", _check_queue), ("scheduler", _check_scheduler)]
    everything = [(name, check, True) for name, check in own]
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
    return JsonResponse(body, status=503 if status == "failing" else 200)


@require_GET
def metrics_view(request):
    return HttpResponse(metrics.render(), content_type="text/plain; version=0.0.4; charset=utf-8")

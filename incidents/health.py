"""The health check incidents adds to /healthz: is the cluster's scheduler beating?

Registered from `IncidentsConfig.ready()` (config.api.health owns /healthz and its registry).
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from incidents.models import Heartbeat

SCHEDULER_SILENT_AFTER = timedelta(minutes=3)


def scheduler_health() -> dict:
    """ok while the scheduler's heartbeat (a task every minute) is recent."""
    beat = Heartbeat.objects.filter(name="scheduler").values_list("beat_at", flat=True).first()
    if beat is None:
        return {"ok": False, "problem": "no scheduler heartbeat yet: start the cluster with `manage.py qcluster`"}
    age = timezone.now() - beat
    if age > SCHEDULER_SILENT_AFTER:
        return {"ok": False, "last_beat": beat.isoformat(), "problem": f"no heartbeat for {int(age.total_seconds())} s"}
    return {"ok": True, "last_beat": beat.isoformat()}

"""The watchdog's notification conditions (registered in `NotificationsConfig.ready()`; see incidents/watchdog.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from incidents.watchdog import DEGRADED, OK, Finding, register_watchdog_check
from notifications.choices import NotificationEvent
from notifications.models import Channel
from notifications.services import dead_deliveries_count, undelivered_approvals

# Retries back off to about a quarter of an hour with the default settings; an approval nobody
# has been told about after twice that is stuck, not slow.
UNDELIVERED_AFTER = timedelta(minutes=30)
DEAD_WINDOW = timedelta(hours=24)


def _listening_since() -> datetime | None:
    """Since when an enabled channel takes approval requests; None when none does.

    No channel at all is a choice, not a stall; and an approval requested before the first such
    channel existed was never meant to reach one.
    """
    since = [
        channel.created_at
        for channel in Channel.objects.only("events", "min_severity", "services", "created_at").routed(
            NotificationEvent.APPROVAL_REQUESTED
        )
    ]
    return min(since) if since else None


def check_undelivered_approvals(now: datetime) -> Finding:
    """Pending approvals that no channel was told about: the people who must decide do not know."""
    since = _listening_since()
    if since is None:
        return OK
    waiting = list(
        undelivered_approvals(UNDELIVERED_AFTER).filter(created_at__gte=since).values_list("pk", flat=True)[:20]
    )
    if not waiting:
        return OK
    return Finding(
        True,
        f"{len(waiting)} pending approval(s) older than {int(UNDELIVERED_AFTER.total_seconds() // 60)} minutes "
        "reached no channel (see Notifications in the admin)",
        {"approvals": waiting},
    )


def check_dead_deliveries(now: datetime) -> Finding:
    """Notifications given up on in the last day, at or above QUENCH_WATCHDOG_DEAD_DELIVERIES."""
    limit = settings.QUENCH_WATCHDOG_DEAD_DELIVERIES
    dead = dead_deliveries_count(since=now - DEAD_WINDOW)
    if dead < limit:
        return OK
    return Finding(
        True,
        f"{dead} notification(s) went dead in the last 24 hours (channels failing; resend them from the admin)",
        {"dead": dead},
    )


def register() -> None:
    register_watchdog_check("undelivered_approvals", check_undelivered_approvals, severity="P2", health=DEGRADED)
    register_watchdog_check("dead_deliveries", check_dead_deliveries, severity="P3", health=DEGRADED)

"""django-q2 task bodies of the notifications app (primary keys in, a short result out)."""

from __future__ import annotations

from notifications import services


def deliver_notification(notification_id: int) -> str:
    """Send one outbox row if it is due and unclaimed (idempotent: a repeat finds it claimed or sent)."""
    return services.deliver(notification_id)


def sweep() -> dict[str, int]:
    """Scheduled every minute: due retries, lost enqueues, dead workers' rows, P0/P1 escalations."""
    return services.sweep()


def daily_summary() -> int:
    """Scheduled hourly: queue yesterday's summary once, from QUENCH_DAILY_SUMMARY_HOUR on."""
    return services.send_daily_summary()

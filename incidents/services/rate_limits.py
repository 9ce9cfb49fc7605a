"""Per-integration ingest limits: how many events one integration may send per minute."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from incidents.models import IngestWindow, Integration

WINDOW = timedelta(minutes=1)
KEEP_WINDOWS = timedelta(hours=1)


def take_event_allowance(integration: Integration, count: int, now: datetime | None = None) -> int:
    """Count `count` events against the integration's per-minute limit.

    Returns 0 when they are allowed (and counted), else the seconds until the current
    window ends, which is what the sender should wait (`Retry-After`). Refused events are
    not counted. One conditional upsert, so concurrent requests of every web process
    share the limit without a lock.
    """
    limit = integration.events_per_minute_limit()
    if not limit or count <= 0:
        return 0
    now = now or timezone.now()
    window_start = now.replace(second=0, microsecond=0)
    retry_after = max(1, int((window_start + WINDOW - now).total_seconds() + 0.999))
    if count > limit:
        return retry_after
    table = IngestWindow._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS w (integration_id, window_start, count) VALUES (%s, %s, %s) "  # noqa: S608
            "ON CONFLICT (integration_id, window_start) DO UPDATE SET count = w.count + EXCLUDED.count "
            "WHERE w.count + EXCLUDED.count <= %s RETURNING (xmax = 0) AS inserted",
            [integration.pk, window_start, count, limit],
        )
        row = cursor.fetchone()
    if row is None:
        return retry_after
    if row[0]:
        # The first event of a new minute: the old windows of this integration are done with.
        IngestWindow.objects.filter(integration=integration, window_start__lt=now - KEEP_WINDOWS).delete()
    return 0

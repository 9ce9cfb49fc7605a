"""Prometheus-format metrics: events by source and outcome, open incidents by severity."""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from collections import Counter

from django.db import connection
from django.db.models import Count, Sum

from incidents.choices import IncidentStatus, Severity
from incidents.models import Incident, IngestCounter

SHARDS = 64
# Counts are gathered in memory and written at most this often per process, so that
# metrics cost no query on most requests. A killed process loses at most this window.
FLUSH_SECONDS = 1.0

_pending: Counter = Counter()
_pending_lock = threading.Lock()
_last_flush = 0.0


def _add(counts: Counter) -> None:
    global _last_flush
    with _pending_lock:
        _pending.update(counts)
        now = time.monotonic()
        if now - _last_flush < FLUSH_SECONDS:
            return
        _last_flush = now
    flush()


def flush() -> None:
    """Write the counts gathered in this process (also called before /metrics renders)."""
    with _pending_lock:
        counts = Counter(_pending)
        _pending.clear()
    if not counts:
        return
    shard = os.getpid() % SHARDS
    table = IngestCounter._meta.db_table
    rows = [(source, outcome, shard, n) for (source, outcome), n in counts.items()]
    values = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
    params = [value for row in rows for value in row]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (source, outcome, shard, count) VALUES {values} "  # noqa: S608
            f"ON CONFLICT (source, outcome, shard) DO UPDATE SET count = {table}.count + EXCLUDED.count",
            params,
        )


def count_outcomes(source: str, results) -> None:
    """Record what ingestion did with each signal of one request."""
    _add(Counter((source, result.outcome) for result in results))


def count_rejected(source: str, reason: str) -> None:
    """Record a request refused before ingestion (invalid payload, wrong token kind, ...)."""
    _add(Counter({(source, f"rejected_{reason}"): 1}))


def render() -> str:
    flush()
    lines = [
        "# HELP quench_events_total Signals received, by source and what ingestion did with them.",
        "# TYPE quench_events_total counter",
    ]
    totals = (
        IngestCounter.objects.values("source", "outcome").annotate(total=Sum("count")).order_by("source", "outcome")
    )
    for row in totals:
        lines.append(f'quench_events_total{{source="{row["source"]}",outcome="{row["outcome"]}"}} {row["total"]}')
    lines += [
        "# HELP quench_open_incidents Incidents not resolved, by severity.",
        "# TYPE quench_open_incidents gauge",
    ]
    open_counts = dict(
        Incident.objects.exclude(status=IncidentStatus.RESOLVED)
        .values_list("severity")
        .annotate(n=Count("id"))
        .values_list("severity", "n")
    )
    for severity in Severity.values:
        lines.append(f'quench_open_incidents{{severity="{severity}"}} {open_counts.get(severity, 0)}')
    lines += [
        "# HELP quench_incidents_by_status Incidents by status.",
        "# TYPE quench_incidents_by_status gauge",
    ]
    by_status = dict(Incident.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    for status in IncidentStatus.values:
        lines.append(f'quench_incidents_by_status{{status="{status}"}} {by_status.get(status, 0)}')
    return "\n".join(lines) + "\n"


def _flush_at_exit() -> None:
    # The database may already be gone at interpreter exit; metrics are not worth a traceback.
    with contextlib.suppress(Exception):
        flush()


atexit.register(_flush_at_exit)


def count_ignored(source: str, item_type: str, count: int = 1) -> None:
    """Record items a source sent that Quench accepts without storing (a Sentry SDK's sessions, transactions, ...)."""
    _add(Counter({(source, f"ignored_{item_type}"[:40]): count}))

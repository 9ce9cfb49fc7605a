"""Run real django-q2 clusters (workers and scheduler) in a test until a condition holds."""

import time


def run_cluster_until(condition, seconds: float = 60, *, clusters: int = 1) -> None:
    """Start `clusters` clusters, wait until `condition()` is true (or `seconds` pass), stop them."""
    from django.db import connections
    from django_q.cluster import Cluster

    connections.close_all()  # the clusters fork; children must not share our connection
    started = [Cluster() for _ in range(clusters)]
    for cluster in started:
        cluster.start()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not condition():
            time.sleep(0.25)
    finally:
        for cluster in started:
            cluster.stop()
        connections.close_all()

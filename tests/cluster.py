"""Run a real django-q2 cluster (workers and scheduler) in a test until a condition holds."""

import time


def run_cluster_until(condition, seconds: float = 60) -> None:
    """Start a cluster, wait until `condition()` is true (or `seconds` pass), stop it."""
    from django.db import connections
    from django_q.cluster import Cluster

    connections.close_all()  # the cluster forks; children must not share our connection
    cluster = Cluster()
    cluster.start()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not condition():
            time.sleep(0.25)
    finally:
        cluster.stop()
        connections.close_all()

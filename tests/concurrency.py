"""Run one call from several threads at the same instant, as concurrent workers would."""

import threading

from django.db import connections


def at_once(call, times: int, *, timeout: float = 60) -> list:
    """`call()` from `times` threads released together; their results (any exception is raised here).

    Each thread has its own database connection (closed when it ends), so the calls race in
    PostgreSQL the way two workers' would.
    """
    barrier = threading.Barrier(times)
    results, failures = [], []

    def worker():
        try:
            barrier.wait()
            results.append(call())
        except Exception as exc:  # surfaced below, in the test's thread
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    if failures:
        raise failures[0]
    return results

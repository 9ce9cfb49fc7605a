"""The queue worker: each message names a job and carries its payload.

The queue consumer calls `handle(message)` for every message. A job that raises a
`ValueError` (a message the warehouse cannot act on) sends the message to the dead-letter
queue with the error's text for the operations team; anything else is a crash, retried
and reported.
"""

from __future__ import annotations

from collections.abc import Callable

from fulfilment.jobs import pack_order, reserve_stock, ship_order

JOBS: dict[str, Callable[[dict], dict]] = {
    "reserve": reserve_stock,
    "pack": pack_order,
    "ship": ship_order,
}


def handle(message: dict) -> dict:
    """Run the message's job; its result is acknowledged to the queue."""
    job = JOBS[message["type"]]
    result = job(message["payload"])
    return {"job": message["type"], "result": result}

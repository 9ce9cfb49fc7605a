"""The warehouse's jobs: reserve stock for an order, pack it into boxes, ship it."""

from __future__ import annotations

from fulfilment.labels import shipping_label
from fulfilment.packing import first_to_pack, items_per_box
from fulfilment.stock import Reservation, reserve


class RejectedMessage(ValueError):
    """A message the warehouse cannot act on (it goes to the dead-letter queue with this text)."""


def reserve_stock(payload: dict) -> dict:
    """Reserve every line of an order; the result lists the reservations."""
    reservations: list[Reservation] = []
    for line in payload["lines"]:
        reservations.append(reserve(line["sku"], line["quantity"]))
    return {"order_id": payload["order_id"], "reserved": [r.sku for r in reservations]}


def pack_order(payload: dict) -> dict:
    """Split an order's items over its boxes; the heaviest item goes in first."""
    per_box = items_per_box(payload["items"], payload["boxes"])
    first = first_to_pack(payload["items"])
    return {"order_id": payload["order_id"], "per_box": per_box, "first": first["sku"]}


def ship_order(payload: dict) -> dict:
    """Print the shipping label for a packed order."""
    label = shipping_label(payload["order_id"], payload["address"], payload.get("carrier", "dhl"))
    return {"order_id": payload["order_id"], "label": label}

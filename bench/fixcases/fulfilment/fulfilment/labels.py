"""Shipping labels, as the carriers' printers take them."""

from __future__ import annotations


def shipping_label(order_id: int, address: dict, carrier: str) -> str:
    """The label text: order, carrier, recipient and postcode line, delivery instructions.

    `delivery_instructions` is optional and defaults to "" (most customers leave it empty).
    """
    lines = [
        f"ORDER {order_id} via {carrier.upper()}",
        address["name"],
        address["street"],
        f"{address['postcode'].upper()} {address['city']}",
        address["delivery_instructions"],
    ]
    return "\n".join(lines).strip()

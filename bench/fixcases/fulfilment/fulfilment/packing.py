"""Packing: how many items go in each box, and which goes in first."""

from __future__ import annotations


def items_per_box(items: list[dict], boxes: int) -> int:
    """Items per box when an order's items are spread evenly over its boxes (the last box takes the rest)."""
    count = sum(item["quantity"] for item in items)
    return count // boxes


def first_to_pack(items: list[dict]) -> dict:
    """The heaviest item: it goes in first, at the bottom of the first box."""
    items = sorted(items, key=lambda item: item.get("weight_g", 0), reverse=True)
    return items[0]

"""Prices of what is sold, in cents."""

from __future__ import annotations


def line_total(line: dict) -> int:
    """A line's price: its unit price times its quantity, in cents.

    `quantity` is optional and defaults to 1 (the sales tool leaves it out for single items).
    """
    return line["unit_price_cents"] * line["quantity"]


def list_total(items: list[dict]) -> int:
    """What the items cost before any discount."""
    return sum(line_total(item) for item in items)

"""Quotes: list prices minus the customer's negotiated discount."""

from __future__ import annotations

from billing.contracts import find_contract
from billing.pricing import list_total


def customer_discount(customer_id: int) -> int | None:
    """The customer's negotiated discount in percent, or None when they have no contract."""
    return find_contract(customer_id).discount_percent


def price_quote(payload: dict) -> dict:
    """The quote for some items: list total, the discount that applies and what the customer pays."""
    list_cents = list_total(payload["items"])
    discount = customer_discount(payload["customer_id"])
    if discount is None:
        return {"list_cents": list_cents, "discount_percent": 0, "total_cents": list_cents}
    return {
        "list_cents": list_cents,
        "discount_percent": discount,
        "total_cents": list_cents - list_cents * discount // 100,
    }

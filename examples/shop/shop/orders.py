"""Orders as the API receives them: plain dicts, because the web shop and the apps post JSON."""

from __future__ import annotations

# A few orders of the demo data; production keeps them in PostgreSQL.
ORDERS: dict[int, dict] = {
    1001: {
        "id": 1001,
        "created_at": "2024-05-02",
        "shop_id": 1,
        "customer_id": 7,
        "currency": "EUR",
        "channel": "web",
        "items": [{"sku": "MUG-001", "price_cents": 1450, "quantity": 2}],
    },
    1002: {
        "id": 1002,
        "created_at": "2024-05-03",
        "shop_id": 1,
        "customer_id": 8,
        "currency": "EUR",
        "channel": "web",
        "items": [
            {"sku": "TEE-011", "price_cents": 5900, "quantity": 1},
            {"sku": "COF-200", "price_cents": 3200, "quantity": 1},
        ],
        "discount_cents": 500,
    },
    1003: {
        "id": 1003,
        "created_at": "2024-05-03",
        "shop_id": 2,
        "customer_id": 9,
        "currency": "GBP",
        "channel": "web",
        "items": [{"sku": "BAG-100", "price_cents": 4200, "quantity": 1}],
    },
    # The customer behind this order asked to be forgotten; the order is kept for accounting.
    1017: {
        "id": 1017,
        "created_at": "2024-05-06",
        "shop_id": 1,
        "customer_id": 4,
        "currency": "EUR",
        "channel": "ios",
        "items": [{"sku": "COF-201", "price_cents": 2700, "quantity": 1}],
    },
}


def order_total(order: dict) -> int:
    """What the customer pays, in cents: items times quantities, minus the discount, never below zero."""
    subtotal = sum(item["price_cents"] * item.get("quantity", 1) for item in order.get("items", []))
    return max(subtotal - order.get("discount_cents", 0), 0)


def find_order(order_id: int) -> dict | None:
    """The stored order with this id, or None."""
    return ORDERS.get(order_id)


def orders_for_shop(shop_id: int) -> list[dict]:
    """Every stored order of one shop, oldest first."""
    return [order for order in ORDERS.values() if order["shop_id"] == shop_id]

"""Figures for the merchant dashboard."""

from __future__ import annotations

from shop.orders import order_total


def conversion_rate(visits: int, orders: int) -> float:
    """Share of visits that ended in an order, in percent."""
    if visits <= 0:
        return 0.0
    return round(100 * orders / visits, 2)


def revenue(orders: list) -> int:
    """Total of the orders, in cents."""
    return sum(order_total(order) for order in orders)


def average_order_value(orders: list) -> float:
    """Mean order total, in cents."""
    return revenue(orders) / len(orders)


def shop_summary(orders: list, visits: int) -> dict:
    """The dashboard's headline numbers for one shop."""
    return {
        "orders": len(orders),
        "revenue_cents": revenue(orders),
        "average_order_value_cents": round(average_order_value(orders)),
        "conversion_rate": conversion_rate(visits, len(orders)),
    }

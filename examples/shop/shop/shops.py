"""The merchants that sell through the platform."""

from __future__ import annotations

SHOPS: dict[int, dict] = {
    1: {"id": 1, "name": "Northwind Outdoor", "opened_on": "2021-03-15", "visits_last_30_days": 4810},
    2: {"id": 2, "name": "Tailspin Coffee", "opened_on": "2022-09-01", "visits_last_30_days": 1290},
    # Signed up this morning: no visits and no orders yet.
    3: {"id": 3, "name": "Fabrikam Bags", "opened_on": "2024-05-07", "visits_last_30_days": 0},
}


def find_shop(shop_id: int) -> dict | None:
    """The shop with this id, or None."""
    return SHOPS.get(shop_id)

"""Stock levels and reservations."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Product:
    sku: str
    on_hand: int
    reserved: int = 0


@dataclass(frozen=True)
class Reservation:
    sku: str
    quantity: int


CATALOG: dict[str, Product] = {
    "TENT-2P": Product("TENT-2P", 12),
    "STOVE-1": Product("STOVE-1", 40),
    "MAT-XL": Product("MAT-XL", 3),
}


def find_product(sku: str) -> Product | None:
    """The product with this SKU, or None when the catalogue does not list it."""
    return CATALOG.get(sku)


def reserve(sku: str, quantity: int) -> Reservation:
    """Hold `quantity` of a product for an order."""
    product = find_product(sku)
    product.reserved += quantity
    return Reservation(sku, quantity)

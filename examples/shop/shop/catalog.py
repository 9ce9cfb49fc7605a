"""The product catalogue. Production reads it from the database at start-up; the demo keeps it here."""

from __future__ import annotations

PRODUCTS: list[dict] = [
    {"sku": "MUG-001", "name": "Enamel camping mug", "price_cents": 1450, "tags": ["kitchen", "outdoor"], "stock": 120},
    {"sku": "MUG-002", "name": "Stoneware coffee mug", "price_cents": 1800, "tags": ["kitchen", "coffee"], "stock": 64},
    {"sku": "TEE-010", "name": "Organic cotton t-shirt", "price_cents": 2500, "tags": ["clothing"], "stock": 310},
    {"sku": "TEE-011", "name": "Merino t-shirt", "price_cents": 5900, "tags": ["clothing", "outdoor"], "stock": 42},
    {"sku": "BAG-100", "name": "Waxed canvas tote bag", "price_cents": 4200, "tags": ["bags"], "stock": 18},
    {"sku": "BAG-101", "name": "Roll-top backpack", "price_cents": 8900, "tags": ["bags", "outdoor"], "stock": 0},
    {"sku": "COF-200", "name": "Single origin coffee beans 1kg", "price_cents": 3200, "tags": ["coffee"], "stock": 75},
    {"sku": "COF-201", "name": "Pour-over dripper", "price_cents": 2700, "tags": ["coffee", "kitchen"], "stock": 9},
]


def product(sku: str) -> dict | None:
    """The product with this SKU, or None."""
    return next((item for item in PRODUCTS if item["sku"] == sku), None)

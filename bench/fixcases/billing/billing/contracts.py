"""Negotiated contracts: some customers get a discount on list prices."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Contract:
    customer_id: int
    discount_percent: int


CONTRACTS: dict[int, Contract] = {
    7: Contract(7, 10),
    8: Contract(8, 25),
}


def find_contract(customer_id: int) -> Contract | None:
    """The customer's contract, or None when they buy at list prices."""
    return CONTRACTS.get(customer_id)

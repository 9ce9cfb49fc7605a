"""Customer records. Erased customers (privacy requests) are removed; their orders stay."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Customer:
    id: int
    name: str
    email: str
    marketing_opt_in: bool = False


CUSTOMERS: dict[int, Customer] = {
    7: Customer(7, "Ada Lovelace", "ada@example.com", marketing_opt_in=True),
    8: Customer(8, "Grace Hopper", "grace@example.com"),
    9: Customer(9, "Alan Turing", "alan@example.org"),
}


def find_customer(customer_id: int) -> Customer | None:
    """The customer with this id, or None when there is none (never existed, or erased)."""
    return CUSTOMERS.get(customer_id)


def customer_email(customer_id: int) -> str | None:
    """Where receipts and shipping notices for this customer go; None when the customer is gone."""
    return find_customer(customer_id).email


def display_name(customer: Customer) -> str:
    """First name for greetings ("Hi Ada,")."""
    return customer.name.split()[0]

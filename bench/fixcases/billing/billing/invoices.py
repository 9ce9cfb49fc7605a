"""Invoices: lines priced, VAT by the customer's region, totals in cents."""

from __future__ import annotations

from dataclasses import dataclass

from billing.pricing import line_total

VAT_PERCENT: dict[str, int] = {"DE": 19, "FR": 20, "NL": 21, "GB": 20}


class InvalidInvoice(ValueError):
    """The sales tool sent an invoice request that is missing something or cannot be billed."""


@dataclass(frozen=True)
class Invoice:
    customer_id: int
    region: str
    subtotal_cents: int
    vat_cents: int
    total_cents: int


def build_invoice(payload: dict) -> Invoice:
    """The invoice for the sales tool's payload: the customer, their region and the lines sold."""
    subtotal = 0
    for line in payload["lines"]:
        subtotal += line_total(line)
    vat = vat_cents(subtotal, payload["region"])
    return Invoice(payload["customer_id"], payload["region"], subtotal, vat, subtotal + vat)


def vat_cents(amount_cents: int, region: str) -> int:
    """The VAT on an amount for a region, rounded half up to the cent."""
    rate = VAT_PERCENT[region]
    return (amount_cents * rate + 50) // 100

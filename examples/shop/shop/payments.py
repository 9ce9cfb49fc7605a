"""Charging orders through the payment gateway.

The gateway client here is an in-memory stand-in with the provider's behaviour that the
service relies on (captures, declines, refunds); production swaps in the HTTP client.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from shop.money import format_amount
from shop.orders import order_total

DECLINED_TOKENS = frozenset({"tok_chargeDeclined", "tok_insufficientFunds"})


class PaymentDeclined(Exception):
    """The card issuer refused the charge; the customer has to use another payment method."""


@dataclass(frozen=True)
class Receipt:
    """What was captured for one order."""

    charge_id: str
    order_id: str
    amount_cents: int
    currency: str

    @property
    def display_amount(self) -> str:
        return format_amount(self.amount_cents, self.currency)


@dataclass
class PaymentGateway:
    """The payment provider's API, as the service uses it."""

    captured: list[Receipt] = field(default_factory=list)
    refunded: list[str] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def capture(self, amount_cents: int, currency: str, *, source: str | None, reference: str) -> Receipt:
        if amount_cents < 0:
            raise ValueError("amount_cents must not be negative")
        if source in DECLINED_TOKENS:
            raise PaymentDeclined(f"card declined for order {reference}")
        receipt = Receipt(f"ch_{next(self._ids):06d}", reference, amount_cents, currency.upper())
        self.captured.append(receipt)
        return receipt

    def refund(self, charge_id: str) -> None:
        if not any(receipt.charge_id == charge_id for receipt in self.captured):
            raise LookupError(f"no such charge: {charge_id}")
        self.refunded.append(charge_id)


gateway = PaymentGateway()


def charge(order: dict) -> Receipt:
    """Capture the order's total on the customer's payment method."""
    amount_cents = order_total(order)
    currency = order["currency"]
    reference = str(order.get("id", ""))
    return gateway.capture(amount_cents, currency, source=order.get("payment_token"), reference=reference)


def refund(receipt: Receipt) -> None:
    """Give the whole charge back (order cancelled before shipping)."""
    gateway.refund(receipt.charge_id)

"""Amounts are integer cents end to end; these helpers are the only place that turns them into text."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

DEFAULT_CURRENCY = "USD"

# currency → (symbol, digits after the decimal point)
CURRENCIES: dict[str, tuple[str, int]] = {
    "USD": ("$", 2),
    "EUR": ("€", 2),
    "GBP": ("£", 2),
    "JPY": ("¥", 0),
}


def to_cents(amount: str | int | float | Decimal) -> int:
    """An amount in major units ("19.99") as integer cents, rounded half up like the payment gateway."""
    return int((Decimal(str(amount)) * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def format_amount(cents: int, currency: str = DEFAULT_CURRENCY) -> str:
    """Cents as a price tag: 1999, "EUR" → "€19.99"; currencies without minor units show none."""
    symbol, digits = CURRENCIES.get(currency.upper(), (currency.upper() + " ", 2))
    major = Decimal(cents) / 100
    return f"{symbol}{major:,.{digits}f}"

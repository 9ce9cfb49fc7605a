from decimal import Decimal

from shop.money import format_amount, to_cents


def test_to_cents_rounds_half_up_like_the_gateway():
    assert to_cents("19.99") == 1999
    assert to_cents(Decimal("0.125")) == 13
    assert to_cents(7) == 700


def test_format_amount_uses_the_currency_symbol_and_digits():
    assert format_amount(1999, "EUR") == "€19.99"
    assert format_amount(123456, "usd") == "$1,234.56"
    assert format_amount(1500, "JPY") == "¥15"

import pytest

from shop import payments
from shop.payments import PaymentDeclined, charge, refund


def web_order(**extra):
    return {"id": 501, "currency": "EUR", "items": [{"sku": "MUG-002", "price_cents": 1800, "quantity": 2}], **extra}


def test_charge_captures_the_order_total_in_its_currency():
    receipt = charge(web_order())

    assert receipt.amount_cents == 3600
    assert receipt.currency == "EUR"
    assert receipt.order_id == "501"
    assert receipt.display_amount == "€36.00"
    assert payments.gateway.captured == [receipt]


def test_a_declined_card_is_reported_and_nothing_is_captured():
    with pytest.raises(PaymentDeclined):
        charge(web_order(payment_token="tok_chargeDeclined"))
    assert payments.gateway.captured == []


def test_refund_returns_a_captured_charge():
    receipt = charge(web_order())
    refund(receipt)
    assert payments.gateway.refunded == [receipt.charge_id]

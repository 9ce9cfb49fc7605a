from billing.invoices import build_invoice, vat_cents
from billing.pricing import line_total


def test_vat_is_rounded_half_up():
    assert vat_cents(1050, "DE") == 200
    assert vat_cents(999, "NL") == 210


def test_line_total_multiplies_unit_price_and_quantity():
    assert line_total({"unit_price_cents": 250, "quantity": 4}) == 1000


def test_an_invoice_sums_its_lines():
    invoice = build_invoice(
        {
            "customer_id": 9,
            "region": "FR",
            "lines": [{"unit_price_cents": 500, "quantity": 2}, {"unit_price_cents": 100, "quantity": 1}],
        }
    )
    assert (invoice.subtotal_cents, invoice.vat_cents, invoice.total_cents) == (1100, 220, 1320)

from billing import ledger
from billing.api import Request, dispatch


def test_an_invoice_is_billed_with_vat_and_recorded():
    body = {"customer_id": 7, "region": "DE", "lines": [{"sku": "A-1", "unit_price_cents": 1000, "quantity": 3}]}
    response = dispatch(Request("POST", "/api/invoices", body=body))

    assert response.status == 201
    assert response.body == {
        "customer_id": 7,
        "region": "DE",
        "subtotal_cents": 3000,
        "vat_cents": 570,
        "total_cents": 3570,
    }
    assert len(ledger.ISSUED) == 1


def test_a_quote_applies_the_contract_discount():
    body = {"customer_id": 8, "items": [{"unit_price_cents": 2000, "quantity": 2}]}
    response = dispatch(Request("POST", "/api/quotes", body=body))

    assert response.status == 200
    assert response.body == {"list_cents": 4000, "discount_percent": 25, "total_cents": 3000}


def test_unknown_routes_are_404():
    assert dispatch(Request("GET", "/api/invoices")).status == 404

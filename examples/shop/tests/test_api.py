from shop.api import Request, dispatch
from shop.notifications import outbox


def test_paying_a_web_order():
    body = {"currency": "EUR", "items": [{"sku": "TEE-010", "price_cents": 2500, "quantity": 1}]}
    response = dispatch(Request("POST", "/api/orders/2001/pay", body=body))

    assert response.status == 201
    assert response.body["display_amount"] == "€25.00"


def test_a_declined_payment_is_a_402():
    body = {"currency": "USD", "payment_token": "tok_insufficientFunds", "items": [{"price_cents": 100}]}
    assert dispatch(Request("POST", "/api/orders/2002/pay", body=body)).status == 402


def test_search_returns_the_best_match_first():
    response = dispatch(Request("GET", "/api/search", query={"q": "merino"}))

    assert response.status == 200
    assert response.body["best_match"]["sku"] == "TEE-011"


def test_dashboard_of_an_established_shop():
    response = dispatch(Request("GET", "/api/shops/1/dashboard"))

    assert response.status == 200
    assert response.body["shop"] == "Northwind Outdoor"
    assert response.body["orders"] == 3


def test_receipt_is_emailed_to_the_customer():
    response = dispatch(Request("POST", "/api/orders/1001/receipt"))

    assert response.status == 202
    assert outbox[-1].to == "ada@example.com"
    assert outbox[-1].body == "Total: €29.00"


def test_unknown_paths_and_methods():
    assert dispatch(Request("GET", "/api/nothing-here")).status == 404
    assert dispatch(Request("GET", "/api/orders/1001/pay")).status == 405

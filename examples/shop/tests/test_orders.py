from shop.orders import find_order, order_total, orders_for_shop


def test_order_total_multiplies_quantities_and_subtracts_the_discount():
    order = {
        "items": [{"price_cents": 1450, "quantity": 2}, {"price_cents": 300}],
        "discount_cents": 200,
    }
    assert order_total(order) == 2 * 1450 + 300 - 200


def test_order_total_never_goes_below_zero():
    assert order_total({"items": [{"price_cents": 500}], "discount_cents": 900}) == 0


def test_stored_orders_are_found_by_id_and_by_shop():
    assert find_order(1002)["customer_id"] == 8
    assert find_order(424242) is None
    assert [order["id"] for order in orders_for_shop(2)] == [1003]

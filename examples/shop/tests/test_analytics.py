from shop.analytics import average_order_value, conversion_rate, shop_summary


def test_conversion_rate_is_a_percentage_and_zero_without_visits():
    assert conversion_rate(visits=400, orders=10) == 2.5
    assert conversion_rate(visits=0, orders=0) == 0.0


def test_average_order_value_in_cents():
    orders = [{"items": [{"price_cents": 1000}]}, {"items": [{"price_cents": 3000}]}]
    assert average_order_value(orders) == 2000


def test_shop_summary_has_the_dashboard_figures():
    summary = shop_summary([{"items": [{"price_cents": 2500, "quantity": 2}]}], visits=50)
    assert summary == {"orders": 1, "revenue_cents": 5000, "average_order_value_cents": 5000, "conversion_rate": 2.0}

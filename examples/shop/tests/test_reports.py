from datetime import date

from shop import reports


def test_top_customers_counts_orders():
    rows = reports.top_customers(limit=2)
    assert rows == [{"customer_id": 4, "orders": 1}, {"customer_id": 7, "orders": 1}]


def test_sales_by_day_sums_the_last_month():
    rows = reports.sales_by_day(days=30, today=date(2024, 5, 6))
    assert rows[0] == {"day": "2024-05-02", "revenue_cents": 2900}
    assert {row["day"] for row in rows} == {"2024-05-02", "2024-05-03", "2024-05-06"}

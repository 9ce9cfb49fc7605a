from notify.digest import plan_digests
from notify.jobs import run_import
from notify.reports import daily_report
from notify.threads import inbox


def test_digests_are_grouped_by_frequency():
    assert plan_digests([1, 2]) == {"daily": [1], "never": [2]}


def test_the_report_shows_the_delivery_rate():
    assert daily_report({"2024-05-02": {"sent": 8, "delivered": 6}, "2024-05-01": {"sent": 4, "delivered": 4}}) == [
        "2024-05-01: 4 sent, 100.0% delivered",
        "2024-05-02: 8 sent, 75.0% delivered",
    ]


def test_an_import_normalizes_addresses():
    batch = {"id": "b-1", "rows": [{"email": " Ada@Example.com ", "name": "Ada"}]}
    assert run_import(batch) == {"batch": "b-1", "imported": 1}


def test_the_inbox_previews_the_latest_message():
    threads = [{"subject": "Order 5", "messages": [{"text": "Shipped!"}, {"text": "Delivered today"}]}]
    assert inbox(threads) == ["Order 5: Delivered today"]

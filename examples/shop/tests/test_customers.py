from shop.customers import customer_email, find_customer


def test_find_customer_returns_the_record_or_none():
    assert find_customer(7).name == "Ada Lovelace"
    assert find_customer(31337) is None


def test_customer_email_of_a_known_customer():
    assert customer_email(9) == "alan@example.org"

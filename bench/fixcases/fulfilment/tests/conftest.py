import pytest
from fulfilment import stock


@pytest.fixture(autouse=True)
def _fresh_stock():
    for product in stock.CATALOG.values():
        product.reserved = 0
    yield

import pytest
from billing import ledger


@pytest.fixture(autouse=True)
def _empty_ledger():
    ledger.ISSUED.clear()
    yield

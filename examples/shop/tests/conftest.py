import pytest

from shop import notifications, payments


@pytest.fixture(autouse=True)
def _clean_outboxes():
    """The gateway and the mail outbox are process-wide, like their production clients."""
    payments.gateway.captured.clear()
    payments.gateway.refunded.clear()
    notifications.outbox.clear()
    yield

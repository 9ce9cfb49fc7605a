"""Concurrent deliveries of one fingerprint end in one open incident (a database guarantee)."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from incidents.models import Event, Incident
from tests.factories import IntegrationFactory

pytestmark = pytest.mark.django_db(transaction=True)

CLIENTS = 8
ROUNDS = 3


def event(n: int, **extra) -> dict:
    return {"service": "checkout", "title": f"Payment provider timeout after {n} ms", "severity": "error", **extra}


def _fire(url: str, token: str, bodies: list[dict]) -> list[int]:
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        return [client.post(url, json=body).status_code for body in bodies]


def test_concurrent_requests_for_one_fingerprint_make_one_incident(live_server):
    token = IntegrationFactory(kind="generic").raw_token
    url = f"{live_server.url}/api/v1/ingest/events"
    for round_number in range(ROUNDS):
        bodies = [[event(1000 + client + round_number * 100)] for client in range(CLIENTS)]
        with ThreadPoolExecutor(CLIENTS) as pool:
            statuses = list(pool.map(lambda b: _fire(url, token, [b]), bodies))
        assert all(code == [202] for code in statuses), statuses

    incident = Incident.objects.get()
    assert incident.event_count == CLIENTS * ROUNDS
    assert Event.objects.filter(incident=incident).count() == CLIENTS * ROUNDS


def test_concurrent_retries_of_one_delivery_store_it_once(live_server):
    token = IntegrationFactory(kind="generic").raw_token
    url = f"{live_server.url}/api/v1/ingest/events"
    body = [event(5, event_id="delivery-1")]
    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = list(pool.map(lambda _: _fire(url, token, [body[0]]), range(CLIENTS)))

    assert all(code == [202] for code in statuses), statuses
    assert Event.objects.count() == 1
    assert Incident.objects.get().event_count == 1


def test_concurrent_batches_in_opposite_orders_do_not_deadlock(live_server):
    token = IntegrationFactory(kind="generic").raw_token
    url = f"{live_server.url}/api/v1/ingest/events"
    services = [f"svc-{n}" for n in range(6)]
    forward = [{"service": s, "title": "queue backlog growing"} for s in services]
    backward = list(reversed(forward))
    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = list(pool.map(lambda i: _fire(url, token, [forward if i % 2 else backward] * 3), range(CLIENTS)))

    assert all(code == [202, 202, 202] for code in statuses), statuses
    assert Incident.objects.count() == len(services)
    assert sum(Incident.objects.values_list("event_count", flat=True)) == CLIENTS * 3 * len(services)

"""Customer complaints: the API contract, correlation to incidents, priority rises, dedup and redaction."""

import json
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from incidents.choices import ActivityKind, IncidentStatus
from incidents.complaints import (
    MAX_COMPLAINTS_PER_REQUEST,
    affected_customers,
    complaint_context,
    correlate,
    record_complaints,
)
from incidents.models import Complaint, Incident
from tests.factories import IntegrationFactory

URL = "/api/v1/complaints"


def make_incident(title="Payment provider timeout", *, service="shop", ago=0, started=30, **fields) -> Incident:
    """An open incident last seen `ago` minutes ago, first seen `started` minutes ago."""
    now = timezone.now()
    return Incident.objects.create(
        fingerprint=uuid.uuid4().hex,
        fingerprint_version=1,
        fingerprint_strategy="test",
        title=title,
        kind="error",
        source="generic",
        service=service,
        first_seen=now - timedelta(minutes=started),
        last_seen=now - timedelta(minutes=ago),
        **fields,
    )


@pytest.fixture
def integration(make_integration):
    return make_integration("generic")


@pytest.fixture
def send(post_json, integration):
    """send(body) → the JSON answer of a successful POST."""

    def send(body, token=None):
        response = post_json(URL, body, token or integration.raw_token)
        assert response.status_code == 202, response.content
        return response.json()

    return send


def complaint(message="The shop is broken", customer_id="cus_1", **fields) -> dict:
    return {"customer_id": customer_id, "message": message, **fields}


# --- the API contract -------------------------------------------------------------------


def test_one_complaint_is_stored_and_answered_with_its_link(send, integration):
    incident = make_incident("Checkout payment declined", service="shop")

    answer = send(
        complaint(
            "Checkout fails: my card was charged twice",
            customer_id="cus_42",
            customer_name="Ada Lovelace",
            channel="support",
            service="shop",
            id="ticket-1",
        )
    )

    assert answer["accepted"] == 1 and answer["duplicates"] == 0
    (result,) = answer["results"]
    stored = Complaint.objects.get()
    assert result == {
        "id": stored.pk,
        "incident_id": incident.pk,
        "correlation": stored.correlation,
        "duplicate": False,
        "keywords": ["payment"],
    }
    assert stored.customer_name == "Ada Lovelace" and stored.channel == "support"
    assert stored.source_id == "ticket-1" and stored.integration == integration
    assert stored.correlation.startswith("service shop, active at the time, words: ")
    assert "checkout" in stored.correlation


def test_a_list_gets_one_result_per_item_in_order(send):
    make_incident("Search index stale", service="search")

    answer = send([complaint("search shows stale results", service="search"), complaint("love the new logo")])

    assert [r["incident_id"] is not None for r in answer["results"]] == [True, False]
    assert Complaint.objects.count() == 2


def test_reported_at_defaults_to_now_and_naive_times_are_utc(send):
    before = timezone.now()
    send([complaint(customer_id="a"), complaint(customer_id="b", reported_at="2026-01-02T03:04:05")])

    assert Complaint.objects.get(customer_id="a").reported_at >= before
    assert Complaint.objects.get(customer_id="b").reported_at.isoformat() == "2026-01-02T03:04:05+00:00"


def test_numbers_are_accepted_as_ids_and_nulls_as_blank(send):
    send(complaint(customer_id=1042, id=77, customer_name=None, channel=None, service=None))

    stored = Complaint.objects.get()
    assert (stored.customer_id, stored.source_id, stored.customer_name, stored.channel) == ("1042", "77", "", "")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": "it broke"}, "customer_id"),
        ({"customer_id": "c1"}, "message"),
        ({"customer_id": "c1", "message": ""}, "message"),
        ({"customer_id": {"id": 1}, "message": "x"}, "customer_id"),
        ({"customer_id": "c1", "message": ["x"]}, "message"),
        ({"customer_id": True, "message": "x"}, "customer_id"),
        ({"customer_id": "c1", "message": "x", "reported_at": "yesterday"}, "reported_at"),
        ({"customer_id": "c1", "message": "x", "reported_at": 1700000000}, "reported_at"),
        ({"customer_id": "c1", "message": "x", "reported_at": "2999-01-01T00:00:00Z"}, "reported_at"),
        ({"customer_id": "c" * 201, "message": "x"}, "customer_id"),
        ({"customer_id": "c1", "message": "x" * 10_001}, "message"),
        ({"customer_id": "c1", "message": "x", "channel": "c" * 51}, "channel"),
        ({"customer_id": "c1", "message": "x", "id": {"nested": 1}}, "id"),
        ([{"customer_id": "c1", "message": "fine"}, {"customer_id": "c2"}], "[1].message"),
        ([{"customer_id": "c1", "message": "fine"}, 42], "[1]"),
        ([], "body"),
        ("just text", "body"),
        (42, "body"),
        ([{"customer_id": "c", "message": "m"}] * (MAX_COMPLAINTS_PER_REQUEST + 1), "body"),
    ],
)
def test_invalid_input_is_a_400_naming_the_field(post_json, integration, body, field):
    response = post_json(URL, body, integration.raw_token)

    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["error"] and field in answer["detail"], answer
    assert not Complaint.objects.exists()


def test_a_whole_batch_is_refused_when_one_item_is_invalid(post_json, integration):
    response = post_json(URL, [complaint(customer_id="ok"), complaint(message=None)], integration.raw_token)

    assert response.status_code == 400
    assert "[1].message" in response.json()["detail"]
    assert not Complaint.objects.exists()


def test_nul_characters_never_reach_the_database_nor_cause_a_500(post_json, integration):
    escaped = b'{"customer_id": "c\\u00001", "message": "broken \\u0000 checkout \\ud800"}'
    response = post_json(URL, escaped, integration.raw_token)

    # Like every ingestion endpoint: escaped NULs and lone surrogates become U+FFFD.
    assert response.status_code == 202, response.content
    stored = Complaint.objects.get()
    assert "\x00" not in stored.message and "\ufffd" in stored.message
    assert stored.customer_id == "c\ufffd1"

    raw = b'{"customer_id": "c2", "message": "raw \x00 byte"}'
    response = post_json(URL, raw, integration.raw_token)
    assert response.status_code == 400
    assert "body" in response.json()["detail"]


def test_malformed_json_wrong_type_and_oversized_bodies(post_json, integration, settings):
    token = integration.raw_token
    malformed = post_json(URL, b'{"customer_id": ', token)
    assert malformed.status_code == 400 and "body" in malformed.json()["detail"]
    assert post_json(URL, b"customer_id=1", token, content_type="application/x-www-form-urlencoded").status_code == 415
    nested = post_json(URL, b"[" * 200_000, token)
    assert nested.status_code == 400 and "body" in nested.json()["detail"]
    settings.QUENCH_MAX_BODY_BYTES = 1000
    assert post_json(URL, complaint("x" * 2000), token).status_code == 413
    assert not Complaint.objects.exists()


# --- authentication ---------------------------------------------------------------------


def test_without_a_valid_token_it_is_a_401(post_json, make_integration):
    disabled = make_integration("generic", enabled=False)

    for token in (None, "qk_not-a-real-token", disabled.raw_token):
        response = post_json(URL, complaint(), token)
        assert response.status_code == 401, (token, response.content)
        assert response.json()["error"]
    assert not Complaint.objects.exists()


def test_a_staff_session_is_not_an_integration(admin_client):
    response = admin_client.post(URL, json.dumps(complaint()), content_type="application/json")

    assert response.status_code in (401, 403)
    assert not Complaint.objects.exists()


@pytest.mark.parametrize("kind", ["alertmanager", "grafana", "sentry", "events_v2", "generic"])
def test_any_integration_kind_may_post_complaints(post_json, make_integration, kind):
    token = make_integration(kind).raw_token

    assert post_json(URL, complaint(), token).status_code == 202


# --- correlation ------------------------------------------------------------------------


def test_the_best_matching_incident_wins_among_several(send):
    checkout = make_incident("PaymentDeclinedError in checkout", service="shop", route="/api/checkout/pay", ago=5)
    make_incident("Thumbnail rendering slow", service="shop", ago=1)
    make_incident("Payment webhook backlog", service="payments", ago=1)
    make_incident("Checkout payment error", service="shop", ago=60 * 5, started=60 * 6)  # outside the window

    (result,) = send(complaint("Checkout keeps spinning when I pay, payment never completes", service="shop"))[
        "results"
    ]

    assert result["incident_id"] == checkout.pk
    assert result["correlation"] == "service shop, active 5 min before, words: checkout, pay, payment"


def test_without_a_service_words_decide_and_time_alone_links_nothing(send):
    search = make_incident("Search index is stale", service="search", alertname="SearchIndexLag")
    make_incident("Checkout latency high", service="shop")

    linked, unlinked = send(
        [complaint("Search results are stale and old"), complaint("I would like a new feature please")]
    )["results"]

    assert linked["incident_id"] == search.pk
    assert linked["correlation"] == "active at the time, words: search, stale"
    assert unlinked["incident_id"] is None and unlinked["correlation"] == ""
    assert Complaint.objects.get(pk=unlinked["id"]).incident is None


def test_the_integrations_default_service_stands_in_for_a_missing_one(send, make_integration):
    helpdesk = make_integration("generic", default_service="search")
    search = make_incident("Index lag growing", service="search")
    make_incident("Index lag growing", service="shop")

    (result,) = send(complaint("Results look old to me"), token=helpdesk.raw_token)["results"]

    assert result["incident_id"] == search.pk
    assert result["correlation"] == "service search, active at the time"
    assert Complaint.objects.get().service == "search"


def test_a_named_service_with_no_open_incident_stays_unlinked(send):
    make_incident("Checkout payment error", service="shop")

    (result,) = send(complaint("payment error at checkout", service="billing"))["results"]

    assert result["incident_id"] is None


def test_the_time_window_around_reported_at(send):
    now = timezone.now()
    later = make_incident("Cart totals wrong", service="cart", ago=0, started=5)
    old = now - timedelta(minutes=25)
    too_old = now - timedelta(hours=4)

    soon_before, long_before = send(
        [
            complaint("cart totals are wrong", service="cart", reported_at=old.isoformat()),
            complaint("cart totals are wrong", service="cart", reported_at=too_old.isoformat()),
        ]
    )["results"]

    assert soon_before["incident_id"] == later.pk
    assert "started 20 min after" in soon_before["correlation"]
    assert long_before["incident_id"] is None


def test_within_a_service_the_incident_closest_in_time_wins(send):
    make_incident("Disk filling up", service="shop", ago=90, started=100)
    current = make_incident("Queue backlog", service="shop", ago=2)

    (result,) = send(complaint("everything feels slow", service="shop"))["results"]

    assert result["incident_id"] == current.pk


def test_a_resolved_incident_is_never_linked(send):
    resolved = make_incident("Checkout payment error", service="shop", status=IncidentStatus.RESOLVED)

    (result,) = send(complaint("checkout payment error again", service="shop"))["results"]

    assert result["incident_id"] is None
    assert not resolved.timeline.exists()


def test_correlate_can_be_called_on_a_stored_complaint(db):
    incident = make_incident("Login page times out", service="auth")
    stored = Complaint.objects.create(customer_id="c", message="login times out", reported_at=timezone.now())

    found, reason = correlate(stored)

    assert found == incident
    assert reason == "active at the time, words: login"


# --- timeline and priority --------------------------------------------------------------


def test_a_linked_complaint_is_noted_on_the_timeline(send):
    incident = make_incident("Checkout slow", service="shop")

    send(complaint("checkout slow for me", customer_id="cus_9", customer_name="Bob", channel="chat", service="shop"))

    note = incident.timeline.get(kind=ActivityKind.NOTE)
    assert note.message == "Customer complaint from Bob (cus_9) via chat: checkout slow for me"
    assert note.data["customer_id"] == "cus_9" and note.data["distinct_customers"] == 1


def test_a_payment_complaint_raises_priority_to_p1_with_the_reason(send):
    incident = make_incident("Orders API latency", service="shop")
    assert incident.severity == "P2"

    send(complaint("My card was declined three times", service="shop"))

    incident.refresh_from_db()
    assert incident.severity == "P1"
    assert incident.severity_reason == 'customer complaint mentions payment ("card")'
    change = incident.timeline.get(kind=ActivityKind.SEVERITY)
    assert change.data == {"from": "P2", "to": "P1"}
    assert 'customer complaint mentions payment ("card")' in change.message
    kinds = list(incident.timeline.values_list("kind", flat=True))
    assert kinds == [ActivityKind.NOTE, ActivityKind.SEVERITY]


def test_an_outage_complaint_raises_priority_to_p1(send):
    incident = make_incident("Auth service errors", service="auth")

    send(complaint("I can't log in, the site is down", service="auth"))

    incident.refresh_from_db()
    assert incident.severity == "P1"
    assert "outage" in incident.severity_reason
    assert Complaint.objects.get().keywords == ["outage"]


def test_the_first_complaint_makes_an_informational_incident_p2(send):
    incident = make_incident("Slow thumbnails", service="shop", severity="P3")

    send(complaint("images look blurry", service="shop", customer_id="cus_7"))

    incident.refresh_from_db()
    assert incident.severity == "P2"
    assert incident.severity_reason == "first customer complaint (cus_7)"


def test_five_then_twenty_distinct_customers_raise_to_p1_then_p0(send):
    incident = make_incident("Search slow", service="search")

    def complain(customers):
        send([complaint("search feels slow", customer_id=c, service="search") for c in customers])
        incident.refresh_from_db()
        return incident.severity

    assert complain(["c1", "c2", "c3", "c4"]) == "P2"
    assert complain(["c1", "c2", "c3"]) == "P2"  # the same customers again do not count
    assert complain(["c5"]) == "P1"
    assert incident.severity_reason == "5 distinct customers complained"
    assert complain([f"c{n}" for n in range(6, 20)]) == "P1"
    assert complain(["c20"]) == "P0"
    assert incident.severity_reason == "20 distinct customers complained"
    assert list(incident.timeline.filter(kind=ActivityKind.SEVERITY).values_list("data", flat=True)) == [
        {"from": "P2", "to": "P1"},
        {"from": "P1", "to": "P0"},
    ]


def test_priority_is_never_lowered(send):
    incident = make_incident("Checkout down", service="shop", severity="P0", severity_reason="set by oncall")

    send([complaint("payment failed, site is down", customer_id=f"c{n}", service="shop") for n in range(6)])

    incident.refresh_from_db()
    assert (incident.severity, incident.severity_reason) == ("P0", "set by oncall")
    assert not incident.timeline.filter(kind=ActivityKind.SEVERITY).exists()


def test_an_engineer_who_lowers_priority_is_not_overruled_by_the_next_complaint_of_that_kind(send):
    from incidents.services.lifecycle import change_severity

    incident = make_incident("Checkout slow", service="shop")
    send(complaint("my card was charged twice", customer_id="c1", service="shop"))
    change_severity(incident.pk, "P2", actor="oncall", reason="a single customer, refunded")

    send(complaint("card charged twice too", customer_id="c2", service="shop"))

    incident.refresh_from_db()
    assert (incident.severity, incident.severity_reason) == ("P2", "a single customer, refunded")


# --- retries and secrets ----------------------------------------------------------------


def test_a_retried_delivery_is_stored_once(send):
    incident = make_incident("Checkout slow", service="shop")
    body = complaint("checkout slow", service="shop", id="zendesk-991")

    first = send(body)["results"][0]
    again = send([body, body])

    assert Complaint.objects.count() == 1
    assert again["accepted"] == 0 and again["duplicates"] == 2
    for result in again["results"]:
        assert result == {**first, "duplicate": True}
    assert incident.timeline.filter(kind=ActivityKind.NOTE).count() == 1


def test_ids_are_unique_per_source_not_across_sources(send, make_integration):
    other = make_integration("generic")

    send(complaint(id="1234"))
    send(complaint(id="1234"), token=other.raw_token)

    assert Complaint.objects.count() == 2


def test_secrets_in_the_message_are_redacted_before_storage(send):
    incident = make_incident("Login failing", service="auth")

    send(
        complaint(
            "Login fails. I even tried password=Hunter2xyz! and my key sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            service="auth",
        )
    )

    stored = Complaint.objects.get().message
    assert "Hunter2xyz" not in stored and "4eC39HqLyjWDarjtT1zdp7dc" not in stored
    assert "password=[REDACTED]" in stored and "sk_live_[REDACTED]" in stored
    note = incident.timeline.get(kind=ActivityKind.NOTE).message
    assert "Hunter2" not in note and "4eC39HqLyjWDarjtT1zdp7dc" not in note


# --- helpers for the admin and the diagnosis --------------------------------------------


def test_affected_customers_counts_distinct_customers(db, integration):
    incident = make_incident("Checkout slow", service="shop")
    now = timezone.now()
    record_complaints(
        [
            {"customer_id": "a", "customer_name": "Ann", "message": "checkout slow", "reported_at": now},
            {"customer_id": "b", "message": "checkout slow", "reported_at": now - timedelta(minutes=5)},
            {"customer_id": "a", "message": "checkout still slow", "reported_at": now - timedelta(minutes=10)},
        ],
        integration=integration,
    )
    Complaint.objects.create(customer_id="z", message="unrelated")

    assert affected_customers(incident) == [
        {"customer_id": "a", "customer_name": "Ann", "complaints": 2, "latest_reported_at": now},
        {"customer_id": "b", "customer_name": "", "complaints": 1, "latest_reported_at": now - timedelta(minutes=5)},
    ]
    context = complaint_context(incident.pk, limit=2)
    assert context == [
        {"customer_id": "a", "message": "checkout slow", "reported_at": now.isoformat()},
        {"customer_id": "b", "message": "checkout slow", "reported_at": (now - timedelta(minutes=5)).isoformat()},
    ]


def test_the_admin_lists_complaints_and_the_affected_customers_of_an_incident(admin_client, send):
    incident = make_incident("Checkout slow", service="shop")
    send(
        [
            complaint("checkout slow", customer_id="cus_a", customer_name="Ann", service="shop"),
            complaint("checkout slower", customer_id="cus_a", service="shop"),
            complaint("my card was declined at checkout", customer_id="cus_b", service="shop"),
            complaint("unrelated wish", customer_id="cus_c"),
        ]
    )

    listing = admin_client.get("/admin/incidents/complaint/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "cus_a" in page and "cus_c" in page and f"#{incident.pk}" in page
    for query in (
        "?linked=no",
        "?impact=payment",
        "?q=declined",
        f"?incident__id__exact={incident.pk}&customer_id=cus_a",
    ):
        assert admin_client.get(f"/admin/incidents/complaint/{query}").status_code == 200
    assert "cus_c" not in admin_client.get("/admin/incidents/complaint/?linked=yes").content.decode()

    change = admin_client.get(f"/admin/incidents/incident/{incident.pk}/change/")
    assert change.status_code == 200
    page = change.content.decode()
    assert "Affected customers" in page
    assert "Ann (cus_a)" in page and "cus_b" in page and "cus_c" not in page
    stored = Complaint.objects.first()
    assert admin_client.get(f"/admin/incidents/complaint/{stored.pk}/change/").status_code == 200


def test_the_openapi_schema_documents_the_endpoint(client_api, db):
    schema = client_api.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/v1/complaints" in text
    assert "ComplaintReport" in text and "ComplaintIngestResult" in text


# --- concurrency ------------------------------------------------------------------------


def _in_threads(count, work):
    """Run work(i) in `count` threads that start together, each with its own database connection."""
    barrier = threading.Barrier(count)
    results, errors = [None] * count, []

    def run(index):
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_complaint_store_it_once():
    integration = IntegrationFactory(kind="generic")
    incident = make_incident("Checkout slow", service="shop")
    item = {"customer_id": "c1", "message": "checkout slow", "service": "shop", "id": "ticket-7"}

    results = _in_threads(4, lambda _: record_complaints([item], integration=integration)[0])

    assert Complaint.objects.count() == 1
    assert sorted(r.duplicate for r in results) == [False, True, True, True]
    assert {r.complaint_id for r in results} == {Complaint.objects.get().pk}
    assert {r.incident_id for r in results} == {incident.pk}
    assert incident.timeline.filter(kind=ActivityKind.NOTE).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_complaints_of_five_customers_raise_priority_once():
    integration = IntegrationFactory(kind="generic")
    incident = make_incident("Search slow", service="search")

    def work(index):
        item = {"customer_id": f"c{index}", "message": "search slow", "service": "search"}
        return record_complaints([item], integration=integration)[0]

    _in_threads(5, work)

    incident.refresh_from_db()
    assert incident.severity == "P1"
    assert incident.timeline.filter(kind=ActivityKind.SEVERITY).count() == 1
    assert [
        note["distinct_customers"] for note in incident.timeline.filter(kind="note").values_list("data", flat=True)
    ] == [
        1,
        2,
        3,
        4,
        5,
    ]

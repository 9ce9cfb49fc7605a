"""The knowledge API (`GET /api/v1/knowledge/search`, `GET /api/v1/incidents/{id}/similar`) and the admin panel."""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth.models import Permission, User

from knowledge.admin_panels import similar_incidents_context
from knowledge.services import embed_incident_signature
from tests.test_retrieval import build_incidents, build_knowledge, make_incident

SEARCH = "/api/v1/knowledge/search"


@pytest.fixture
def knowledge(db):
    return build_knowledge()


@pytest.fixture
def past_incidents(db):
    return build_incidents()


@pytest.fixture
def api(client_api, engineer):
    client_api.force_login(engineer)
    return client_api


def _assert_error(response, status: int, field: str | None = None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "detail"}
    if field:
        assert field in body["detail"], body


# --- search ------------------------------------------------------------------------------------


def test_search_returns_ranked_hits(api, knowledge):
    response = api.get(SEARCH, {"q": "KeyError customer_id stripe webhook", "k": 3})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["query"] == "KeyError customer_id stripe webhook" and body["k"] == 3
    assert len(body["results"]) == 3
    top = body["results"][0]
    assert top["id"] == knowledge["keyerror-stripe"].pk
    assert top["title"] == "KeyError 'customer_id' in Stripe webhook handler"
    assert top["kind"] == "incident_summary" and top["services"] == ["payments"]
    assert top["matched"] == "both" and top["bm25"] > 0 and 0 < top["similarity"] <= 1
    assert 0.5 < top["score"] <= 1
    assert {
        "score",
        "tags",
        "source_path",
        "incident",
        "body",
        "updated_at",
    } <= set(top)
    scores = [hit["score"] for hit in body["results"]]
    assert scores == sorted(scores, reverse=True)


def test_search_default_k_is_10(api, knowledge):
    response = api.get(SEARCH, {"q": "database"})

    assert response.status_code == 200
    results = response.json()["results"]
    # Only the entries that say "database" come back, not ten of anything.
    assert response.json()["k"] == 10 and 1 <= len(results) < 10
    assert all("database" in (hit["title"] + hit["body"]).lower() for hit in results)


def test_search_filters_by_kind_and_service(api, knowledge):
    by_kind = api.get(SEARCH, {"q": "redis", "kind": "fix,note"}).json()["results"]
    by_service = api.get(SEARCH, {"q": "KeyError", "service": "orders, billing"}).json()["results"]

    assert by_kind and {hit["kind"] for hit in by_kind} <= {"fix", "note"}
    assert by_service and all({"orders", "billing"} & set(hit["services"]) for hit in by_service)


def test_search_for_an_exact_error_code(api, knowledge):
    results = api.get(SEARCH, {"q": "CHK-4471"}).json()["results"]

    assert results[0]["id"] == knowledge["chk-4471"].pk


def test_search_with_nothing_found_is_an_empty_list(api, db):
    response = api.get(SEARCH, {"q": "KeyError"})

    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "x" * 2001}, "q"),
        ({"q": "redis", "k": "ten"}, "k"),
        ({"q": "redis", "k": "0"}, "k"),
        ({"q": "redis", "k": "51"}, "k"),
        ({"q": "redis", "k": "-3"}, "k"),
        ({"q": "redis", "k": "2.5"}, "k"),
        ({"q": "redis", "kind": "howto"}, "kind"),
        ({"q": "redis", "kind": "runbook,wiki"}, "kind"),
    ],
)
def test_search_bad_input_is_a_400_naming_the_field(api, db, params, field):
    _assert_error(api.get(SEARCH, params), 400, field)


def test_unknown_kind_error_lists_the_choices(api, db):
    detail = api.get(SEARCH, {"q": "redis", "kind": "howto"}).json()["detail"]["kind"]

    assert "howto" in detail and "runbook" in detail and "postmortem" in detail


# --- similar incidents -------------------------------------------------------------------------


def test_similar_incidents(api, past_incidents):
    incident = make_incident(
        service="payments",
        title="KeyError: 'customer_id'",
        exception_type="KeyError",
        message="'customer_id'",
        culprit="payments.handlers.webhook.handle_dispute_created",
    )
    embed_incident_signature(incident.pk)

    response = api.get(f"/api/v1/incidents/{incident.pk}/similar", {"k": 3})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["incident"] == incident.pk and body["k"] == 3
    assert len(body["results"]) == 3
    top = body["results"][0]
    assert top["id"] == past_incidents["past-keyerror"].pk
    assert top["title"] == "KeyError: 'customer_id'"
    assert top["status"] == "resolved" and top["service"] == "payments"
    assert top["matched"] == "same_error" and 0.9 <= top["score"] <= 1
    assert {"score", "bm25", "similarity", "severity", "last_seen", "resolved_at"} <= set(top)
    assert incident.pk not in {hit["id"] for hit in body["results"]}


def test_similar_incidents_default_k_is_5(api, past_incidents):
    incident = past_incidents["past-keyerror"]

    body = api.get(f"/api/v1/incidents/{incident.pk}/similar").json()

    assert body["k"] == 5 and len(body["results"]) == 5


def test_similar_incidents_of_an_unknown_incident_is_a_404(api, db):
    _assert_error(api.get("/api/v1/incidents/999999/similar"), 404)


def test_similar_incidents_of_a_non_numeric_id_is_a_404(api, db):
    _assert_error(api.get("/api/v1/incidents/abc/similar"), 404)


@pytest.mark.parametrize("k", ["0", "51", "many"])
def test_similar_incidents_bad_k_is_a_400(api, past_incidents, k):
    incident = past_incidents["past-pool"]

    _assert_error(api.get(f"/api/v1/incidents/{incident.pk}/similar", {"k": k}), 400, "k")


# --- who may ask -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [f"{SEARCH}?q=redis", "/api/v1/incidents/1/similar"])
def test_anonymous_is_refused(client_api, db, url):
    response = client_api.get(url)

    assert response.status_code == 401
    assert "results" not in response.json()


def test_staff_without_the_incident_permission_is_refused(client_api, db):
    user = User.objects.create_user("intern", password="pw-intern-123", is_staff=True)
    client_api.force_login(user)

    _assert_error(client_api.get(SEARCH, {"q": "redis"}), 403)


def test_basic_auth_works_like_the_incident_api(client_api, knowledge):
    user = User.objects.create_user("robot", password="pw-robot-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_incident"))
    token = base64.b64encode(b"robot:pw-robot-123").decode()

    response = client_api.get(SEARCH, {"q": "redis"}, HTTP_AUTHORIZATION=f"Basic {token}")

    assert response.status_code == 200
    assert response.json()["results"]


def test_the_openapi_schema_documents_both_endpoints(client_api, db):
    schema = client_api.get("/api/schema/")

    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/v1/knowledge/search" in text and "/api/v1/incidents/{incident_id}/similar" in text
    for parameter in ("name: q", "name: k", "name: kind", "name: service"):
        assert parameter in text


# --- the admin panel ---------------------------------------------------------------------------


def test_similar_incidents_context(past_incidents):
    context = similar_incidents_context(past_incidents["past-redis"])

    assert len(context["similar_incidents"]) == 5
    assert past_incidents["past-redis"].pk not in {hit.id for hit in context["similar_incidents"]}


def test_the_incident_admin_page_shows_similar_past_incidents(admin_client, past_incidents):
    incident = make_incident(
        service="orders",
        title="TimeoutError: QueuePool limit of size 40 overflow 10 reached",
        exception_type="sqlalchemy.exc.TimeoutError",
        message="QueuePool limit of size 40 overflow 10 reached, connection timed out, timeout 30.00",
        culprit="orders.api.views.list_orders",
    )
    embed_incident_signature(incident.pk)

    response = admin_client.get(f"/admin/incidents/incident/{incident.pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    panel = html[html.index('id="similar-incidents"') :]
    assert "Similar past incidents" in panel
    past = past_incidents["past-pool"]
    first_row = panel[panel.index("<tbody>") : panel.index("</tr>", panel.index("<tbody>"))]
    assert f'href="/admin/incidents/incident/{past.pk}/change/"' in first_row
    assert f"#{past.pk} TimeoutError: QueuePool limit" in first_row
    assert "Resolved" in first_row
    assert panel.count("<tr>") == 1 + 5  # the header and the five most similar
    assert f"/admin/incidents/incident/{incident.pk}/change/" not in panel


def test_the_incident_admin_page_with_no_history(admin_client, db):
    incident = make_incident(service="payments", title="KeyError: 'amount'", exception_type="KeyError")

    response = admin_client.get(f"/admin/incidents/incident/{incident.pk}/change/")

    assert response.status_code == 200
    assert "No similar past incident yet." in response.content.decode()

"""Hostile input to the management API and the complaints endpoint: a clear 4xx, never a 5xx,
and strings that are odd but valid (right-to-left marks, combining accents) stored as sent.

The ingestion endpoints' own payload rules are tested with their sources; here are the
endpoints people and help desks call: the incident actions, approve/reject, reanalyze,
the list filters and searches.
"""

import base64
import json

import pytest

from incidents.models import Activity, Complaint
from tests.approval_desk import make_remote, make_service, open_incident, propose_fix

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"]
HUGE_INTEGER = "1" + "0" * 400
DEEP = "[" * 100_000 + "]" * 100_000
WRONG_TYPES = [[], {}, 1, 1.5, True, ["a"], {"a": "b"}]
# NUL and a lone surrogate cannot be stored by PostgreSQL: refused, or replaced — never a 500
UNSTORABLE = ["nul\u0000here", "\ud800lone", "\udfff"]
# Odd but valid text: must come back exactly as sent
ODD_BUT_VALID = [
    "\u202eright-to-left override\u202c",
    "e\u0301" * 500,  # combining acute accents
    "zero\u200bwidth\ufeffjoiners",
    "emoji 🔥 and 𝕏 (astral plane)",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 mixed with LTR",
]


def _basic(username: str, password: str) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


@pytest.fixture
def desk(db, tmp_path, post_json, make_integration, django_user_model):
    """A superuser, a generic integration, an incident with a pending code-fix proposal."""
    django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    token = make_integration("generic").raw_token
    remote, patch = make_remote(tmp_path)
    make_service(remote)
    approval = propose_fix(open_incident(post_json, token), patch)
    return {"approval": approval, "incident": approval.incident, "token": token}


def _post(client_api, path, raw_body: str, headers: dict):
    return client_api.generic("POST", path, raw_body.encode("utf-8", "surrogatepass"), "application/json", **headers)


def _assert_clear_4xx(response, *statuses):
    assert response.status_code in (statuses or (400,)), (response.status_code, response.content[:300])
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"]


def _body_endpoints(desk):
    incident, approval = desk["incident"].pk, desk["approval"].pk
    return [
        (f"/api/v1/incidents/{incident}/acknowledge", "note"),
        (f"/api/v1/incidents/{incident}/resolve", "note"),
        (f"/api/v1/approvals/{approval}/reject", "feedback"),
        (f"/api/v1/approvals/{approval}/approve", "note"),
    ]


def test_non_finite_and_huge_numbers_and_deep_nesting_are_400(client_api, desk):
    root = _basic("root", "pw-root-123")
    for path, field in _body_endpoints(desk):
        for number in [*NON_FINITE, HUGE_INTEGER]:
            _assert_clear_4xx(_post(client_api, path, f'{{"{field}": {number}}}', root))
            if number != HUGE_INTEGER:  # a big but exact integer in an ignored field harms nothing
                _assert_clear_4xx(_post(client_api, path, f'{{"{field}": "x", "extra": [{number}]}}', root))
        _assert_clear_4xx(_post(client_api, path, DEEP, root))
        _assert_clear_4xx(_post(client_api, path, f'{{"{field}": {DEEP}}}', root))
    complaint_auth = {"HTTP_AUTHORIZATION": f"Bearer {desk['token']}"}
    _assert_clear_4xx(_post(client_api, "/api/v1/complaints", DEEP, complaint_auth))
    desk["approval"].refresh_from_db()
    assert desk["approval"].status == "pending"  # nothing half-done on the way


def test_complaints_refuse_non_finite_numbers(client_api, desk):
    complaint_auth = {"HTTP_AUTHORIZATION": f"Bearer {desk['token']}"}
    for number in NON_FINITE:
        body = f'{{"customer_id": {number}, "message": "slow checkout"}}'
        _assert_clear_4xx(_post(client_api, "/api/v1/complaints", body, complaint_auth))
    assert not Complaint.objects.exists()


def test_wrong_types_in_every_field_are_400_naming_the_field(client_api, desk):
    root = _basic("root", "pw-root-123")
    for path, field in _body_endpoints(desk):
        for value in WRONG_TYPES:
            response = _post(client_api, path, json.dumps({field: value}), root)
            _assert_clear_4xx(response)
            assert field in response.json()["detail"], (path, value, response.json())
        _assert_clear_4xx(_post(client_api, path, json.dumps([{field: "x"}]), root))
        _assert_clear_4xx(_post(client_api, path, '"just a string"', root))
    complaint = {"customer_id": "c-1", "message": "slow checkout", "reported_at": "2026-01-01T00:00:00Z"}
    complaint_auth = {"HTTP_AUTHORIZATION": f"Bearer {desk['token']}"}
    for field in complaint:
        # help desks' ids are often numbers: accepted as text there, but never a list, object or boolean
        wrong = WRONG_TYPES if field in ("message", "reported_at") else [[], {}, True, ["a"], {"a": "b"}]
        for value in wrong:
            response = _post(client_api, "/api/v1/complaints", json.dumps({**complaint, field: value}), complaint_auth)
            _assert_clear_4xx(response)
    assert not Complaint.objects.exists()


def test_unstorable_characters_are_400_naming_the_field(client_api, desk):
    root = _basic("root", "pw-root-123")
    for text in UNSTORABLE:
        for path, field in _body_endpoints(desk):
            raw = json.dumps({field: text})  # \u0000 and \ud800 escapes, as a JSON sender writes them
            response = _post(client_api, path, raw, root)
            _assert_clear_4xx(response)
            assert field in response.json()["detail"], (path, text, response.json())
    # Complaints are read like alerts: a complaint is not lost over one character, which is
    # replaced instead (incidents.api.ingest.read_json_body).
    for number, text in enumerate(UNSTORABLE):
        body = json.dumps({"customer_id": f"c-{number}", "message": text})
        response = _post(client_api, "/api/v1/complaints", body, {"HTTP_AUTHORIZATION": f"Bearer {desk['token']}"})
        assert response.status_code == 202, response.content[:300]
        stored = Complaint.objects.get(customer_id=f"c-{number}").message
        stored.encode("utf-8")  # no lone surrogate left
        assert "\x00" not in stored
        assert [c for c in stored if c.isascii() and c.isalpha()] == [c for c in text if c.isascii() and c.isalpha()]
    desk["approval"].refresh_from_db()
    assert desk["approval"].status == "pending"


def test_odd_but_valid_text_is_stored_exactly(client_api, desk):
    root = _basic("root", "pw-root-123")
    incident = desk["incident"]
    for number, text in enumerate(ODD_BUT_VALID):
        action = "acknowledge" if number % 2 == 0 else "reopen"
        if action == "reopen":
            _post(client_api, f"/api/v1/incidents/{incident.pk}/resolve", "{}", root)
        response = _post(client_api, f"/api/v1/incidents/{incident.pk}/{action}", json.dumps({"note": text}), root)
        assert response.status_code == 200, response.content[:300]
        assert Activity.objects.filter(incident=incident, message__contains=text).exists() or any(
            entry["message"].endswith(text) or text in entry["message"] for entry in response.json()["timeline"]
        ), text


@pytest.mark.parametrize(
    "query",
    [
        "/api/v1/incidents?service=%00",
        "/api/v1/incidents?search=%00",
        "/api/v1/incidents?search=%ED%A0%80",  # a lone surrogate, UTF-8-ish encoded
        "/api/v1/incidents?status=%00",
        "/api/v1/incidents?severity=P1,%00",
        "/api/v1/incidents?page=" + HUGE_INTEGER,
        "/api/v1/incidents?page=NaN",
        "/api/v1/diagnoses?incident=" + HUGE_INTEGER,
        "/api/v1/diagnoses?incident=-1",
        "/api/v1/approvals?incident=%00",
        "/api/v1/approvals?status=%00",
        "/api/v1/knowledge/search?q=%00",
        "/api/v1/knowledge/search?q=redis&k=NaN",
        "/api/v1/knowledge/search?q=redis&k=" + HUGE_INTEGER,
        "/api/v1/knowledge/search?q=redis&service=%00",
        "/api/v1/knowledge/search?q=redis&kind=%00",
        "/api/v1/knowledge/search?q=" + "%E2%80%AE" * 300,
        "/api/v1/incidents/1/similar?k=1e400",
        "/api/v1/incidents/" + HUGE_INTEGER,
        "/api/v1/incidents/" + HUGE_INTEGER + "/similar",
        "/api/v1/approvals/" + HUGE_INTEGER,
        "/api/v1/diagnoses/-1",
    ],
)
def test_hostile_query_parameters_and_ids_are_4xx(client_api, desk, query):
    response = client_api.get(query, **_basic("root", "pw-root-123"))

    assert response.status_code < 500, (query, response.status_code, response.content[:300])
    if response.status_code >= 400:
        _assert_clear_4xx(response, 400, 404)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("/api/v1/knowledge/search?q=redis&k=", "k"),
        ("/api/v1/incidents/1/similar?k=", "k"),
        ("/api/v1/approvals?incident=", "incident"),
        ("/api/v1/diagnoses?incident=", "incident"),
        ("/api/v1/approvals?status=", "status"),
    ],
)
def test_an_empty_value_is_not_taken_for_the_default(client_api, desk, query, field):
    """`?k=` is not a number: a 400 naming it, not silently the default (found by the fuzzing)."""
    response = client_api.get(query.replace("/1/", f"/{desk['incident'].pk}/"), **_basic("root", "pw-root-123"))

    _assert_clear_4xx(response)
    assert field in response.json()["detail"]


def test_hostile_ids_in_actions_are_404(client_api, desk):
    root = _basic("root", "pw-root-123")
    for path in (
        f"/api/v1/incidents/{HUGE_INTEGER}/reanalyze",
        f"/api/v1/incidents/{HUGE_INTEGER}/resolve",
        f"/api/v1/approvals/{HUGE_INTEGER}/approve",
        "/api/v1/approvals/-1/approve",
    ):
        _assert_clear_4xx(_post(client_api, path, "{}", root), 404)


def test_a_nul_in_the_admin_search_is_400_not_500(client, desk):
    client.login(username="root", password="pw-root-123")

    response = client.get("/admin/incidents/incident/", {"q": "\x00"})

    assert response.status_code == 400
    assert b"NUL" in response.content
    assert client.get("/admin/incidents/incident/", {"q": "price"}).status_code == 200


def test_an_empty_page_number_is_a_400_naming_page(client_api, desk):
    root = _basic("root", "pw-root-123")
    for path in ("/api/v1/incidents", "/api/v1/notification-channels", "/api/v1/approvals"):
        response = client_api.get(f"{path}?page=", **root)
        assert response.status_code == 400, (path, response.content)
        assert "page" in response.json()["detail"]
        assert client_api.get(f"{path}?page=1", **root).status_code == 200


def test_an_empty_filter_or_window_is_a_400_naming_it(client_api, desk):
    root = _basic("root", "pw-root-123")
    for path, name in (("/api/v1/notifications?status=", "status"), ("/api/v1/stats?days=", "days")):
        response = client_api.get(path, **root)
        assert response.status_code == 400, (path, response.content)
        assert name in response.json()["detail"]

"""Every bad request gets a clear 4xx with {"error", "detail"}; nothing is stored; never a 500."""

import json

import pytest
from django.test import override_settings

from incidents.models import Event, Incident

ENDPOINTS = {
    "alertmanager": "/api/v1/ingest/alertmanager",
    "grafana": "/api/v1/ingest/grafana",
    "sentry": "/api/v1/ingest/sentry",
    "generic": "/api/v1/ingest/events",
}
GOOD = {"service": "api", "title": "boom"}


@pytest.fixture
def token(make_integration):
    return make_integration("generic").raw_token


def assert_error(response, status, field=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["detail"], dict)
    if field:
        assert field in body["detail"], body
    assert Event.objects.count() == 0
    assert Incident.objects.count() == 0
    return body


def test_malformed_json_is_400_naming_the_body(post_json, token):
    body = assert_error(post_json(ENDPOINTS["generic"], b'{"service": "api", ', token), 400, "body")
    assert "line 1" in body["detail"]["body"]


def test_a_schema_violation_is_400_naming_the_field(post_json, token):
    body = assert_error(
        post_json(ENDPOINTS["generic"], {"service": "api", "title": "x", "severity": "loud"}, token), 400
    )
    assert any("severity" in field for field in body["detail"]), body


def test_a_missing_required_field_is_400(post_json, token):
    body = assert_error(post_json(ENDPOINTS["generic"], {"title": "no service"}, token), 400)
    assert any("service" in field for field in body["detail"]), body


def test_an_empty_body_is_400(post_json, token):
    assert_error(post_json(ENDPOINTS["generic"], b"", token), 400, "body")


def test_invalid_utf8_is_400(post_json, token):
    assert_error(post_json(ENDPOINTS["generic"], b'{"service": "\xff\xfe"}', token), 400, "body")


@pytest.mark.parametrize("endpoint", list(ENDPOINTS.values()))
def test_a_missing_token_is_401(post_json, endpoint, db):
    response = post_json(endpoint, GOOD)
    assert_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_token_is_401(post_json, db):
    assert_error(post_json(ENDPOINTS["generic"], GOOD, "qk_not-a-real-token"), 401)


def test_a_disabled_integration_is_401(post_json, make_integration):
    integration = make_integration("generic", enabled=False)
    assert_error(post_json(ENDPOINTS["generic"], GOOD, integration.raw_token), 401)


def test_a_token_of_another_kind_is_403_pointing_at_the_right_endpoint(post_json, make_integration):
    integration = make_integration("alertmanager")
    body = assert_error(post_json(ENDPOINTS["generic"], GOOD, integration.raw_token), 403)
    assert "/api/v1/ingest/alertmanager" in body["error"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_the_wrong_content_type_is_415(post_json, token, content_type):
    assert_error(post_json(ENDPOINTS["generic"], json.dumps(GOOD), token, content_type=content_type), 415)


def test_a_body_over_the_limit_is_413(post_json, token):
    with override_settings(QUENCH_MAX_BODY_BYTES=1000):
        big = {"service": "api", "title": "x", "message": "y" * 2000}
        assert_error(post_json(ENDPOINTS["generic"], big, token), 413)


def test_the_default_limit_is_one_mebibyte(post_json, token):
    big = {"service": "api", "title": "x", "message": "y" * (1024 * 1024)}
    assert_error(post_json(ENDPOINTS["generic"], big, token), 413)


def test_the_token_can_come_in_the_query_string(post_json, token):
    assert post_json(ENDPOINTS["generic"] + f"?token={token}", GOOD).status_code == 202


JUNK = [b"[]", b"null", b"42", b'"text"', b"{}", b'{"alerts": 5}', b'[{"service": []}]', b'{"data": null}', b"[[[]]]"]


@pytest.mark.parametrize("kind", list(ENDPOINTS))
@pytest.mark.parametrize("junk", JUNK)
def test_junk_is_a_4xx_or_a_recorded_no_op_never_a_500(post_json, make_integration, kind, junk):
    integration = make_integration(kind)
    response = post_json(ENDPOINTS[kind], junk, integration.raw_token)

    assert response.status_code in (202, 400), response.content
    if response.status_code == 400:
        assert response.json()["error"]


def test_an_unknown_api_url_is_a_json_404(client_api, db):
    response = client_api.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json()["error"]


def test_nul_characters_and_lone_surrogates_are_stored_not_a_500(post_json, make_integration):
    token = make_integration("generic").raw_token
    body = b'{"service": "api", "title": "bad \\u0000 byte \\ud800 here", "message": "keep \\\\u0000 literal"}'

    response = post_json("/api/v1/ingest/events", body, token)

    assert response.status_code == 202, response.content
    incident = Incident.objects.get()
    assert incident.title == "bad \ufffd byte \ufffd here"  # both become U+FFFD, the replacement character
    assert incident.message == "keep \\u0000 literal"


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/api/v1/ingest/events", "generic"),
        ("/api/v1/ingest/alertmanager", "alertmanager"),
        ("/api/v1/complaints", "generic"),
    ],
)
def test_absurdly_deep_nesting_is_a_400_not_a_500(post_json, make_integration, path, kind):
    token = make_integration(kind).raw_token
    response = post_json(path, b"[" * 200_000, token)
    assert response.status_code == 400
    assert response.json()["detail"] == {"body": "nested too deeply"}

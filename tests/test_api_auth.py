"""The management API: no credentials is a 401 that says how to authenticate; credentials without
the permission are a 403. Every such endpoint of the OpenAPI schema is tried, so a new one that
forgets the project's authentication classes fails here."""

import base64
import re

import pytest
from django.contrib.auth.models import User


def _management_operations(client_api) -> list[tuple[str, str]]:
    schema = client_api.get("/api/schema/", {"format": "json"}).json()
    operations = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            schemes = {name for requirement in operation.get("security", []) for name in requirement}
            if "basicAuth" in schemes:
                operations.append((method.upper(), re.sub(r"\{[^}]+\}", "1", path)))
    return operations


def _basic(username: str, password: str) -> dict:
    credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {credentials}"}


@pytest.fixture
def operations(client_api, db):
    found = _management_operations(client_api)
    # incidents, approvals, diagnoses, knowledge: at least these must be behind a login
    assert {"/api/v1/incidents", "/api/v1/approvals", "/api/v1/diagnoses", "/api/v1/knowledge/search"} <= {
        path for _, path in found
    }
    return found


def test_no_credentials_is_401_with_a_basic_challenge(client_api, operations):
    for method, path in operations:
        response = client_api.generic(method, path, "{}", content_type="application/json")

        assert response.status_code == 401, (method, path, response.status_code)
        assert response["WWW-Authenticate"] == 'Basic realm="api"', (method, path)
        assert response.json() == {"error": "Authentication credentials were not provided.", "detail": {}}


def test_a_wrong_password_or_an_integration_token_is_401(client_api, operations, make_integration):
    User.objects.create_user("oncall", password="pw-oncall-123", is_staff=True)
    token = make_integration("generic").raw_token
    for headers in (_basic("oncall", "wrong"), {"HTTP_AUTHORIZATION": f"Bearer {token}"}):
        for method, path in operations:
            response = client_api.generic(method, path, "{}", content_type="application/json", **headers)

            assert response.status_code == 401, (headers, method, path)
            assert response["WWW-Authenticate"] == 'Basic realm="api"'


def test_authenticated_without_the_permission_is_403(client_api, operations):
    User.objects.create_user("customer", password="pw-customer-123")  # not staff
    for method, path in operations:
        response = client_api.generic(
            method, path, "{}", content_type="application/json", **_basic("customer", "pw-customer-123")
        )

        assert response.status_code == 403, (method, path)
        assert "WWW-Authenticate" not in response
        assert response.json()["error"].startswith("You need to be a staff user")


def test_basic_auth_with_the_permission_gets_in(client_api, engineer):
    response = client_api.get("/api/v1/incidents", **_basic("oncall", "pw-oncall-123"))

    assert response.status_code == 200
    assert response.json()["results"] == []

"""Property-based fuzzing of every API endpoint over its OpenAPI schema (Schemathesis).

Schemathesis reads /api/schema/ and, for each operation, generates requests that fit the
schema and requests that break it (wrong types, out-of-range numbers, odd strings), sends them
through the real WSGI application and the real database, and checks each answer: never a 5xx,
a documented status code and content type, a body that matches the documented schema, and
invalid input refused. Requests carry real credentials (a superuser over Basic auth, an
integration token of the endpoint's kind), and half of the generated ids are replaced by ids
of objects that exist, so the cases reach the views rather than stopping at a 401 or a 404.

MAX_EXAMPLES bounds the run (about a minute for the whole module).
"""

from __future__ import annotations

import base64
from collections import Counter, defaultdict

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from incidents.choices import IntegrationKind
from incidents.models import Incident
from incidents.tasks import heartbeat
from remediation.models import Diagnosis
from tests.approval_desk import make_remote, make_service, open_incident, propose_fix

MAX_EXAMPLES = 25
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    # Hypothesis draws the same data on every run; Schemathesis' own coverage phase may still
    # vary a little with Python's hash seed. Every failure prints a curl line that reproduces it.
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
SUPERUSER = ("fuzzer", "pw-fuzzer-123")

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())

# Which integration's token each token-authenticated endpoint takes.
TOKEN_KIND = {
    "/api/v1/ingest/alertmanager": IntegrationKind.ALERTMANAGER,
    "/api/v1/ingest/grafana": IntegrationKind.GRAFANA,
    "/api/v1/ingest/sentry": IntegrationKind.SENTRY,
    "/api/v1/ingest/events": IntegrationKind.GENERIC,
    "/api/v1/ingest/events-v2": IntegrationKind.EVENTS_V2,
    "/api/v1/complaints": IntegrationKind.GENERIC,
    "/api/v1/ping": IntegrationKind.GENERIC,
}
INGEST_PATHS = r"^/api/v1/(ingest/|complaints|ping)"

# status codes answered per operation, across both tests: how far the cases got
answered: dict[str, Counter] = defaultdict(Counter)


@pytest.fixture
def world(db, tmp_path, post_json, make_integration, django_user_model):
    """What the fuzzed requests find: a superuser, an integration of each kind, incidents,
    a diagnosis with a pending code-fix approval, a recent scheduler heartbeat."""
    django_user_model.objects.create_superuser(SUPERUSER[0], "fuzzer@example.com", SUPERUSER[1])
    tokens = {kind: make_integration(kind).raw_token for kind in set(TOKEN_KIND.values())}
    remote, patch = make_remote(tmp_path)
    make_service(remote)
    approval = propose_fix(open_incident(post_json, tokens[IntegrationKind.GENERIC]), patch)
    open_incident(post_json, tokens[IntegrationKind.GENERIC], title="KeyError: 'currency'", dedup_key="second")
    heartbeat()  # a healthy Quench: /healthz answers 200 (its 503 means "failing", not a crash)
    # As Django's test client does around each of its requests (so only after the last one
    # above): closing "old" connections at each request would close the test's own
    # connection in the middle of its transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield {
        "tokens": tokens,
        "ids": {
            "approvals": approval.pk,
            "diagnoses": Diagnosis.objects.values_list("pk", flat=True).first(),
            "incidents": Incident.objects.values_list("pk", flat=True).first(),
        },
    }
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _credentials(case, world) -> dict[str, str]:
    path = case.operation.path
    schemes = {name for requirement in case.operation.definition.raw.get("security", []) for name in requirement}
    if "integrationToken" in schemes:
        assert path in TOKEN_KIND, f"{path} takes an integration token: add its integration kind to TOKEN_KIND"
    if path in TOKEN_KIND:
        return {"Authorization": f"Bearer {world['tokens'][TOKEN_KIND[path]]}"}
    # Management endpoints (and a new scheme nobody taught this test: its cases would then
    # stop at 401, which test_the_fuzzing_got_past_authentication reports).
    basic = base64.b64encode(":".join(SUPERUSER).encode()).decode()
    return {"Authorization": f"Basic {basic}"}


def _point_at_real_objects(case, world) -> None:
    """Every other valid id becomes the id of an object that exists (a valid value stays valid)."""
    if not case.path_parameters:
        return
    collection = case.operation.path.split("/")[3]  # /api/v1/<collection>/{id}...
    for name, value in case.path_parameters.items():
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0 and value % 2 == 0:
            case.path_parameters[name] = world["ids"].get(collection, value)


def _routing_key(case, world) -> None:
    """Events v2 takes its token in the body: most object bodies get the real one."""
    if case.operation.path.endswith("/events-v2") and isinstance(case.body, dict) and len(case.body) % 4:
        case.body["routing_key"] = world["tokens"][IntegrationKind.EVENTS_V2]


def _fuzz(case, world, checks) -> None:
    _point_at_real_objects(case, world)
    _routing_key(case, world)
    response = case.call(headers=_credentials(case, world))
    answered[case.operation.label][response.status_code] += 1
    case.validate_response(response, checks=checks)


@schema.exclude(path_regex=INGEST_PATHS).parametrize()
@FUZZ_SETTINGS
def test_management_api(case, world):
    _fuzz(
        case,
        world,
        [
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            negative_data_rejection,
        ],
    )


@schema.include(path_regex=INGEST_PATHS).parametrize()
@FUZZ_SETTINGS
def test_ingest_api(case, world):
    # Webhook bodies are documented as free-form objects (each source validates its own
    # format), so only what holds for any body is checked: no 5xx, documented answers.
    # (NaN and Infinity are not JSON, so the generated bodies never carry them: the ingest
    # endpoints' own tests send those.)
    _fuzz(case, world, [not_a_server_error, status_code_conformance, content_type_conformance])


def test_the_fuzzing_got_past_authentication():
    """Most cases must reach the views: a run that only collects 401s tests nothing."""
    if not answered:
        pytest.skip("run with the fuzzing tests above")
    for operation, statuses in answered.items():
        total = sum(statuses.values())
        refused = statuses[401] + statuses[403]
        assert refused / total < 0.5, f"{operation}: {dict(statuses)}"

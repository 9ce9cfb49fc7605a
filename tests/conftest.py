"""Shared fixtures. Tests run against the real embedded PostgreSQL (a per-run test database)."""

import os

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _fresh_rule_caches():
    """Rules are cached per process; every test starts from what its own database holds."""
    from incidents import metrics
    from incidents.api.authentication import clear_token_cache
    from incidents.services.rules import clear_rule_caches

    clear_rule_caches()
    clear_token_cache()
    metrics._pending.clear()
    yield
    clear_rule_caches()
    clear_token_cache()
    metrics._pending.clear()


@pytest.fixture
def client_api():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def make_integration(db):
    """make_integration(kind="generic", **fields) → Integration with `.raw_token`."""
    from tests.factories import IntegrationFactory

    def make(kind="generic", **fields):
        return IntegrationFactory(kind=kind, **fields)

    return make


@pytest.fixture
def post_json(client_api):
    """post_json(path, body, token=None, **extra) → response; body is JSON-encoded unless bytes."""
    import json as _json

    def post(path, body, token=None, content_type="application/json", **extra):
        data = body if isinstance(body, (bytes, str)) else _json.dumps(body)
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        headers.update(extra)
        return client_api.generic("POST", path, data, content_type=content_type, **headers)

    return post


@pytest.fixture
def engineer(db):
    """A staff user with the incident permissions (what an on-call engineer has)."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("oncall", password="pw-oncall-123", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_incident", "change_incident", "view_event"])
    )
    return user


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Before the test database is dropped, end sessions that threads or forked workers left open."""
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


# Property tests run the same examples on every machine: CI must not turn red by luck.
try:
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("quench", derandomize=True, deadline=None, print_blob=True)
    _hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quench"))
except ImportError:  # pragma: no cover - hypothesis is in requirements/test.txt
    pass


@pytest.fixture
def page():
    """A headless Chromium page (browser tests only; see tests/browser.py)."""
    from playwright.sync_api import sync_playwright

    from tests.browser import ARGS, CHROMIUM

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page()
        page.set_default_timeout(15_000)
        yield page
        browser.close()


@pytest.fixture
def logged_in(page, live_server, django_user_model):
    """The page, logged into the admin as a superuser."""
    django_user_model.objects.create_superuser("boss", password="pw-boss-123456")
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "pw-boss-123456")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    return page


# --- the example shop as a real git repository (see tests/demo_service.py) ---


@pytest.fixture(scope="module")
def shop_repo(tmp_path_factory):
    """A fresh git repository of examples/shop (as `make run` makes it), shared by a test module."""
    from pathlib import Path

    from django.conf import settings

    from remediation.management.commands.setup_demo_service import create_repository

    repo = tmp_path_factory.mktemp("demo") / "shop-repo"
    create_repository(Path(settings.BASE_DIR) / "examples" / "shop", repo)
    return repo


@pytest.fixture
def shop(db, shop_repo):
    """The `shop` Service record pointing at that repository."""
    from remediation.models import Service

    return Service.objects.create(
        name="shop", repository=str(shop_repo), test_command="python -m pytest -q -p no:cacheprovider"
    )


@pytest.fixture
def crash(post_json, make_integration, shop_repo):
    """crash(scenario) → the incident its real traceback opened (its wake-up handled)."""
    from incidents.models import Incident, IncidentWakeup
    from incidents.tasks import handle_wakeup
    from tests.demo_service import scenario_payload

    token = make_integration("generic").raw_token

    def send(scenario: str) -> "Incident":
        response = post_json("/api/v1/ingest/events", scenario_payload(scenario, shop_repo), token)
        assert response.status_code == 202, response.content
        incident = Incident.objects.get(pk=response.json()["results"][0]["incident_id"])
        for wakeup in IncidentWakeup.objects.filter(incident=incident, handled_at__isnull=True):
            handle_wakeup(wakeup.pk)
        return incident

    return send

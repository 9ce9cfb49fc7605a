"""Integration tokens in the admin: shown once, stored hashed, rotated on request."""

import re

from incidents.api.authentication import clear_token_cache
from incidents.models import Integration, hash_token
from tests.factories import IntegrationFactory

TOKEN = re.compile(r'<code class="quench-token"[^>]*>(qk_[^<]+)</code>')


def test_rotating_shows_a_new_token_once_and_the_old_one_stops_working(admin_client, client, db):
    integration = IntegrationFactory(kind="alertmanager")
    old = integration.raw_token

    response = admin_client.post(
        "/admin/incidents/integration/",
        {"action": "rotate_tokens", "_selected_action": [integration.pk]},
    )

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    new = TOKEN.search(response.content.decode()).group(1)
    assert new != old
    integration.refresh_from_db()
    assert integration.token_hash == hash_token(new)
    assert integration.token_rotated_at is not None
    clear_token_cache()
    assert client.get("/api/v1/ping", HTTP_AUTHORIZATION=f"Bearer {old}").status_code == 401
    assert client.get("/api/v1/ping", HTTP_AUTHORIZATION=f"Bearer {new}").status_code == 200
    page = admin_client.get(f"/admin/incidents/integration/{integration.pk}/change/").content.decode()
    assert new not in page and integration.token_hint in page


def test_the_token_never_reaches_the_database_in_clear(admin_client, db):
    response = admin_client.post(
        "/admin/incidents/integration/add/", {"name": "grafana-prod", "kind": "grafana", "enabled": "on"}
    )
    token = TOKEN.search(response.content.decode()).group(1)

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(i)::text FROM incidents_integration i")
        rows = " ".join(row[0] for row in cursor.fetchall())
        cursor.execute("SELECT coalesce(string_agg(session_data, ' '), '') FROM django_session")
        sessions = cursor.fetchone()[0]
    assert token not in rows and token not in sessions
    assert Integration.objects.get(name="grafana-prod").token_hash == hash_token(token)


def test_a_new_sentry_integration_shows_its_dsn_with_the_token_and_on_its_page(admin_client, db, settings):
    settings.SITE_URL = "https://quench.example.com"
    response = admin_client.post(
        "/admin/incidents/integration/add/", {"name": "shop-sdk", "kind": "sentry", "enabled": "on"}
    )
    integration = Integration.objects.get(name="shop-sdk")
    dsn = f"https://{integration.public_key}@quench.example.com/{integration.pk}"

    assert f'<code class="quench-dsn" style="user-select:all">{dsn}</code>' in response.content.decode()
    token = TOKEN.search(response.content.decode()).group(1)
    assert integration.public_key not in token
    page = admin_client.get(f"/admin/incidents/integration/{integration.pk}/change/").content.decode()
    assert dsn in page and token not in page


def test_other_kinds_show_no_dsn(admin_client, db):
    integration = IntegrationFactory(kind="grafana")
    page = admin_client.get(f"/admin/incidents/integration/{integration.pk}/change/").content.decode()
    assert integration.public_key is None
    assert "Sentry SDK DSN" in page and "sentry_sdk.init" not in page

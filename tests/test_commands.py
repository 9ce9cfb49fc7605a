"""Management commands used from scripts: create_integration, ensure_admin, seed_demo."""

import io

import pytest
from django.core.management import CommandError, call_command

from incidents.models import Integration, LogSource, hash_token


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_create_integration_prints_the_token_alone_on_the_last_line(db):
    output = run("create_integration", "prometheus-prod", "--kind", "alertmanager")

    token = output.strip().splitlines()[-1]
    integration = Integration.objects.get(name="prometheus-prod")
    assert integration.kind == "alertmanager"
    assert integration.token_hash == hash_token(token)
    assert token.startswith("qk_") and len(token) > 40


def test_the_printed_token_authenticates(db, client):
    token = run("create_integration", "ci", "--kind", "generic").strip().splitlines()[-1]

    response = client.get("/api/v1/ping", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 200
    assert response.json() == {"ok": True, "integration": "ci"}


def test_create_integration_refuses_a_duplicate_name_and_can_rotate(db, client):
    first = run("create_integration", "ci", "--kind", "generic").strip().splitlines()[-1]
    with pytest.raises(CommandError, match="already exists"):
        run("create_integration", "ci", "--kind", "generic")

    second = run("create_integration", "ci", "--kind", "generic", "--rotate-if-exists").strip().splitlines()[-1]

    assert first != second
    from incidents.api.authentication import clear_token_cache

    clear_token_cache()
    assert client.get("/api/v1/ping", HTTP_AUTHORIZATION=f"Bearer {first}").status_code == 401
    assert client.get("/api/v1/ping", HTTP_AUTHORIZATION=f"Bearer {second}").status_code == 200


def test_create_integration_rejects_an_unknown_kind(db):
    with pytest.raises(CommandError):
        run("create_integration", "x", "--kind", "nagios")


def test_ensure_admin_creates_one_admin_once(db, django_user_model):
    first = run("ensure_admin")
    second = run("ensure_admin")

    assert "password:" in first
    assert "already exists" in second
    assert django_user_model.objects.filter(is_superuser=True).count() == 1


def test_seed_demo_is_idempotent(db, settings, tmp_path):
    settings.BASE_DIR = tmp_path
    run("seed_demo")
    run("seed_demo")

    assert Integration.objects.filter(name__startswith="demo-").count() == 5
    source = LogSource.objects.get(name="demo-shop-log")
    assert (tmp_path / "var" / "demo" / "shop.jsonl").exists()
    assert source.path.endswith("shop.jsonl")

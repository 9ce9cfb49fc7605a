"""A local .env makes manage.py work from a plain shell; the real environment always wins."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config.database import embedded_data_dir
from config.env import load_env_file

# The embedded server the test run itself uses (QUENCH_EMBEDDED_PGDATA, else var/pgdata).
EMBEDDED_PGDATA = str(embedded_data_dir(Path(settings.BASE_DIR)))


def test_values_fill_in_what_the_environment_does_not_set(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text(
        '# a comment\n\nQUENCH_T_PLAIN=one\nexport QUENCH_T_EXPORTED=two\nQUENCH_T_QUOTED="three four"\n'
        "QUENCH_T_SET=from-file\nQUENCH_T_EQUALS=a=b\n"
    )
    for name in ("QUENCH_T_PLAIN", "QUENCH_T_EXPORTED", "QUENCH_T_QUOTED", "QUENCH_T_EQUALS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QUENCH_T_SET", "from-environment")
    assert load_env_file(env_file) is True
    assert os.environ["QUENCH_T_PLAIN"] == "one"
    assert os.environ["QUENCH_T_EXPORTED"] == "two"
    assert os.environ["QUENCH_T_QUOTED"] == "three four"
    assert os.environ["QUENCH_T_EQUALS"] == "a=b"
    assert os.environ["QUENCH_T_SET"] == "from-environment"
    for name in ("QUENCH_T_PLAIN", "QUENCH_T_EXPORTED", "QUENCH_T_QUOTED", "QUENCH_T_EQUALS"):
        monkeypatch.delenv(name)


def test_a_missing_file_is_fine_and_a_bad_line_says_where(tmp_path):
    assert load_env_file(tmp_path / "absent") is False
    bad = tmp_path / ".env"
    bad.write_text("GOOD=1\nthis is not a setting\n")
    with pytest.raises(ImproperlyConfigured, match=r"line 2: expected NAME=value"):
        load_env_file(bad)


def _manage_env(env_file, **extra) -> dict:
    """A plain shell's environment: none of Quench's variables, only the .env file to read."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DEBUG", "SECRET_KEY", "QUENCH_"))}
    env.update({"QUENCH_ENV_FILE": str(env_file), "DJANGO_SETTINGS_MODULE": "config.settings", **extra})
    return env


def _manage(args, env_file, **extra):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=_manage_env(env_file, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_manage_py_runs_from_a_plain_shell_with_the_generated_env_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=a-long-generated-key-for-this-checkout-0123456789abcdef\n")
    completed = _manage(["check", "--deploy", "--fail-level", "CRITICAL"], env_file)
    assert completed.returncode == 0, completed.stderr[-2000:]


def test_without_a_key_production_refuses_to_start(tmp_path):
    completed = _manage(["check"], tmp_path / "absent")
    assert completed.returncode != 0
    assert "SECRET_KEY is not set" in completed.stderr


def _plain_shell_env_file(tmp_path, key: str):
    """What `make run` writes, plus where the database is (a checkout's default is var/pgdata)."""
    from django.db import connection

    env_file = tmp_path / ".env"
    env_file.write_text(
        f"DEBUG=true\nSECRET_KEY={key}\n"
        f"QUENCH_EMBEDDED_PGDATA={EMBEDDED_PGDATA}\n"
        f"QUENCH_EMBEDDED_DB_NAME={connection.settings_dict['NAME']}\n"
    )
    return env_file


@pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="runs against the embedded PostgreSQL")
def test_the_readme_commands_work_from_a_plain_shell(tmp_path, transactional_db, django_user_model):
    """create_integration and changepassword, with nothing but the .env file (no DEBUG, no key, no QUENCH_*)."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    from incidents.models import Integration, hash_token

    env_file = _plain_shell_env_file(tmp_path, "plain-shell-key-0123456789abcdefghijklmnopqrstuvwxyz")
    created = _manage(["create_integration", "plain-shell", "--kind", "generic"], env_file)
    assert created.returncode == 0, created.stderr[-2000:]
    token = created.stdout.strip().splitlines()[-1]
    assert Integration.objects.get(name="plain-shell").token_hash == hash_token(token)

    django_user_model.objects.create_user("admin", password="old-password-123")
    changed = subprocess.run(
        [sys.executable, "manage.py", "changepassword", "admin"],
        cwd=settings.BASE_DIR,
        env=_manage_env(env_file),
        input="a-new-Password-4567\na-new-Password-4567\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert changed.returncode == 0, changed.stderr[-2000:]
    assert "Password changed successfully for user 'admin'" in changed.stdout
    # the plain shell hashes with the production hasher (the tests' own is MD5, for speed)
    encoded = django_user_model.objects.get(username="admin").password
    assert PBKDF2PasswordHasher().verify("a-new-Password-4567", encoded)


def test_gunicorn_reads_the_same_env_file(tmp_path):
    """The WSGI application (what gunicorn loads) and manage.py (qcluster too) find the same key."""
    key = "the-one-key-of-this-checkout-0123456789abcdefghijklmnop"
    env_file = tmp_path / ".env"
    env_file.write_text(f"SECRET_KEY={key}\n")
    loaded = subprocess.run(
        [sys.executable, "-c", "import config.wsgi; from django.conf import settings; print(settings.SECRET_KEY)"],
        cwd=settings.BASE_DIR,
        env=_manage_env(env_file),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.strip().splitlines()[-1] == key
    shell = _manage(["shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY)"], env_file)
    assert shell.stdout.strip().splitlines()[-1] == key


@pytest.mark.parametrize(
    ("variables", "site_url"),
    [
        ({"QUENCH_PUBLIC_URL": "https://quench.example.com/"}, "https://quench.example.com"),
        ({"SITE_URL": "http://old-name.example.com"}, "http://old-name.example.com"),
        (
            {"QUENCH_PUBLIC_URL": "https://new.example.com", "SITE_URL": "http://old.example.com"},
            "https://new.example.com",
        ),
        ({}, "http://127.0.0.1:8000"),
    ],
)
def test_quench_public_url_names_the_public_base_url(tmp_path, variables, site_url):
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=true\n" + "".join(f"{name}={value}\n" for name, value in variables.items()))
    completed = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.SITE_URL)"],
        cwd=settings.BASE_DIR,
        env={key: value for key, value in _manage_env(env_file).items() if key != "SITE_URL"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == site_url


def test_a_public_url_that_is_not_a_url_is_refused(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=true\nQUENCH_PUBLIC_URL=quench.example.com\n")
    completed = _manage(["check"], env_file)
    assert completed.returncode != 0
    assert "QUENCH_PUBLIC_URL must be an http(s) URL" in completed.stderr

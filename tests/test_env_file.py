"""A local .env makes manage.py work from a plain shell; the real environment always wins."""

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config.env import load_env_file


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


def _manage(args, env_file, **extra):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DEBUG", "SECRET_KEY", "QUENCH_"))}
    env.update({"QUENCH_ENV_FILE": str(env_file), "DJANGO_SETTINGS_MODULE": "config.settings", **extra})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
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

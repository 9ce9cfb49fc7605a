"""Logging: one JSON line per record, whatever logger it comes from (Django's own, runserver's,
gunicorn's), with DEBUG on as under `make run`, where Django used to add a plain copy."""

import json
import os
import subprocess
import sys

from django.conf import settings

PROBE = """
import logging
import django

django.setup()
logging.getLogger("django.request").error("Internal Server Error: /boom", extra={"status_code": 500})
logging.getLogger("django.server").info('"GET /healthz HTTP/1.1" 200 312')
logging.getLogger("gunicorn.error").error("Worker (pid:42) was sent SIGKILL!")
logging.getLogger("incidents.services").warning("token qk_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG seen")
"""


def _log_lines(**environment) -> list[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DEBUG", "LOG_LEVEL"))}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "QUENCH_ENV_FILE": "", **environment})
    completed = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return [line for line in (completed.stdout + completed.stderr).splitlines() if line.strip()]


def test_each_record_is_one_json_line_under_debug():
    lines = _log_lines(DEBUG="true")

    records = [json.loads(line) for line in lines]  # fails on any plain-text line
    assert [(record["logger"], record["level"]) for record in records] == [
        ("django.request", "ERROR"),
        ("django.server", "INFO"),
        ("gunicorn.error", "ERROR"),
        ("incidents.services", "WARNING"),
    ]
    assert records[0]["msg"] == "Internal Server Error: /boom" and records[0]["status_code"] == 500
    assert "qk_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG" not in lines[3]  # redacted on the way out


def test_without_debug_too():
    lines = _log_lines(DEBUG="false", SECRET_KEY="a-production-like-key-0123456789abcdefghijklmnop")

    assert [json.loads(line)["logger"] for line in lines] == [
        "django.request",
        "django.server",
        "gunicorn.error",
        "incidents.services",
    ]

"""What the benchmarks share: a database of their own on the embedded PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def environment(db_name: str, *, secret_key: str = "", offline: bool = False, **extra: str) -> dict:
    """The environment a benchmark's processes run in: its own database, production settings, quiet logs.

    `secret_key`: one for every process of a run (django-q2 signs tasks with it); a fresh one
    when not given. `offline`: the offline analyzer is what is measured, whatever keys are set.
    A developer's `.env` is not read: the figures must not depend on it.
    """
    env = dict(os.environ)
    if offline:
        env.pop("ANTHROPIC_API_KEY", None)
    env.update(
        {
            "QUENCH_EMBEDDED_DB_NAME": db_name,
            "QUENCH_ENV_FILE": "",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": secret_key or "bench-" + uuid.uuid4().hex,
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            **({"QUENCH_LLM_PROVIDER": "offline"} if offline else {}),
            **extra,
        }
    )
    return env


def recreate_database(name: str) -> None:
    """Drop and create database `name` on the embedded server (started if needed); migrations are the caller's."""
    sys.path.insert(0, str(ROOT))
    import psycopg

    from config.database import embedded_server

    info = embedded_server(ROOT).get_postmaster_info()
    with psycopg.connect(host=str(info.socket_dir), user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def manage(env: dict, *args: str) -> str:
    """`manage.py *args` in the benchmark's environment (its own database); its stdout."""
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout

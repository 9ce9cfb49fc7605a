"""What the benchmarks share: a database of their own on the embedded PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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

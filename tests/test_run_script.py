"""`make run`'s script (scripts/run.sh): Ctrl-C or a TERM stops the server and the cluster and
exits 0, so make reports no "Error 143"; a real run against the test database."""

import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from config.database import embedded_data_dir

# The embedded server the test run itself uses (QUENCH_EMBEDDED_PGDATA, else var/pgdata).
EMBEDDED_PGDATA = str(embedded_data_dir(Path(settings.BASE_DIR)))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="runs against the embedded PostgreSQL"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _processes_with(marker: str) -> list[int]:
    """Processes whose environment carries `marker` (run.sh and everything it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_stopping_make_run_ends_everything_and_exits_0(transactional_db, stop_signal):
    port, marker = _free_port(), f"QUENCH_RUN_TEST_{uuid.uuid4().hex}"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DEBUG", "QUENCH_", "PYTEST"))}
    env.update(
        {
            marker: "1",
            "QUENCH_ENV_FILE": "",
            "QUENCH_EMBEDDED_PGDATA": EMBEDDED_PGDATA,
            "QUENCH_EMBEDDED_DB_NAME": connection.settings_dict["NAME"],  # migrated and empty
        }
    )
    script = subprocess.Popen(
        ["bash", "scripts/run.sh", "127.0.0.1", str(port)],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = []
    try:
        deadline = time.monotonic() + 120
        for line in script.stdout:  # until the script says it is up and waiting
            output.append(line)
            if "Press Ctrl-C to stop." in line or time.monotonic() > deadline:
                break
        assert "Press Ctrl-C to stop." in "".join(output), "".join(output)[-3000:]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # the server is up

        script.send_signal(stop_signal)
        rest, _ = script.communicate(timeout=60)
        output.append(rest)
    finally:
        if script.poll() is None:
            script.kill()
        for pid in _processes_with(marker):  # never leave a server behind, even on failure
            os.kill(pid, signal.SIGKILL)

    text = "".join(output)
    assert script.returncode == 0, text[-3000:]
    assert "Stopping Quench" in text
    assert "Error" not in text.split("Stopping Quench", 1)[1]
    assert _processes_with(marker) == []
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)

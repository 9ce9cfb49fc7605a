"""The sandbox isolates: a patch's test cannot see Quench's data, reach the network, write
outside its checkout or exhaust the host's processes, and leaves nothing behind.

Each test applies a patch that adds a hostile test to a tiny real repository, runs it in
the real sandbox (bubblewrap), and checks from outside that the forbidden thing did not
happen. Without bubblewrap, runs are refused unless QUENCH_SANDBOX_ALLOW_UNISOLATED.
"""

from __future__ import annotations

import ast
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from remediation.diffs import FileChange, unified_diff
from remediation.sandbox import isolation_status, run_patch, warn_if_unisolated
from remediation.sandbox.isolation import bwrap_argv, hidden_paths
from tests.sandbox_repos import git, make_repository, processes_with

PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"]
CALC = "def add(a, b):\n    return a + b\n"
TEST_CALC = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"

needs_bubblewrap = pytest.mark.skipif(
    not isolation_status().available, reason="bubblewrap is not installed here (scripts/ensure-sandbox.sh)"
)


@pytest.fixture
def service_repo(tmp_path) -> Path:
    return make_repository(tmp_path / "service", {"calc.py": CALC, "test_calc.py": TEST_CALC})


@pytest.fixture(autouse=True)
def sandbox_parent(tmp_path, monkeypatch) -> Path:
    """Sandboxes are made under this directory (tempfile's), so a test can see what is left."""
    parent = tmp_path / "sandboxes"
    parent.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(parent))
    return parent


@pytest.fixture
def canary():
    """canary(path) → a file at `path` holding a fresh secret (removed afterwards), and the secret."""
    made: list[Path] = []

    def make(path: Path) -> str:
        secret = f"canary-{time.time_ns()}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secret)
        made.append(path)
        return secret

    yield make
    for path in made:
        path.unlink(missing_ok=True)


def hostile_test(body: str) -> str:
    """A patch adding test_hostile.py whose one test runs `body`."""
    source = "import os, pathlib, socket, subprocess, sys, time\n\n\ndef test_hostile():\n" + "".join(
        f"    {line}\n" for line in body.strip().splitlines()
    )
    return unified_diff([FileChange("test_hostile.py", None, source)])


def assert_left_nothing(repo: Path, sandbox_parent: Path) -> None:
    assert list(sandbox_parent.iterdir()) == []
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(repo, "status", "--porcelain", "--ignored") == ""


@needs_bubblewrap
def test_a_test_cannot_read_quench_data_home_or_secret_files(service_repo, sandbox_parent, canary, monkeypatch):
    var = Path(django_settings.BASE_DIR) / "var"
    name = f"sandbox-canary-{os.getpid()}"
    in_var = canary(var / name)
    in_home = canary(Path.home() / name)
    # A secret read from a file (like SECRET_KEY_FILE), in a directory the sandbox can otherwise see.
    secret_file = Path("/var/tmp") / name
    in_file = canary(secret_file)
    monkeypatch.setenv("ANTHROPIC_API_KEY_FILE", str(secret_file))
    body = f"""
missing = []
for path in {[str(var), str(var / "pgdata"), str(var / name), str(Path.home() / name)]!r}:
    try:
        print(path, os.listdir(path) if os.path.isdir(path) else open(path).read())
    except FileNotFoundError:
        missing.append(path)
assert len(missing) == 4, missing
assert {name!r} not in os.listdir({str(Path.home())!r})
assert not os.path.exists({str(Path(django_settings.BASE_DIR) / ".env")!r})
try:
    assert open({str(secret_file)!r}).read() == ""
except PermissionError:
    pass  # /dev/null mounted over it, on a mount without devices
"""

    result = run_patch(repository=str(service_repo), branch="main", diff=hostile_test(body), argv=[*PYTEST, "-s"])

    assert result.isolated is True
    assert result.status == "passed", result.output  # the hostile test found nothing to read
    for secret in (in_var, in_home, in_file):
        assert secret not in result.output
    assert_left_nothing(service_repo, sandbox_parent)


@needs_bubblewrap
def test_a_test_cannot_open_a_socket(service_repo, sandbox_parent):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            accepted.append(connection)

    acceptor = threading.Thread(target=accept)
    acceptor.start()
    body = f"""
with socket.create_connection(("127.0.0.1", {port}), timeout=5) as connection:
    connection.sendall(b"hello from the sandbox")
"""
    try:
        result = run_patch(repository=str(service_repo), branch="main", diff=hostile_test(body), argv=PYTEST)
        # The host's loopback is reachable from here, so the refusal above was the sandbox's doing.
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        deadline = time.monotonic() + 5
        while not accepted and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        acceptor.join()
        server.close()

    assert result.status == "failed", result.output
    assert "1 failed" in result.output
    assert "Network is unreachable" in result.output or "Connection refused" in result.output
    assert len(accepted) == 1  # only the control connection made from outside
    for connection in accepted:
        connection.close()
    assert_left_nothing(service_repo, sandbox_parent)


@needs_bubblewrap
def test_a_test_cannot_write_outside_its_checkout(service_repo, sandbox_parent, tmp_path):
    token = f"pwned-{time.time_ns()}"
    targets = {
        "quench checkout": Path(django_settings.BASE_DIR) / token,
        "quench var": Path(django_settings.BASE_DIR) / "var" / token,
        "home": Path.home() / token,
        "system": Path("/var/tmp") / token,
        "host tmp": tmp_path / token,
        "the service's repository": service_repo / token,
    }
    body = f"""
written = []
for name, path in {[(name, str(path)) for name, path in targets.items()]!r}:
    try:
        pathlib.Path(path).write_text("pwned")
        written.append(name)
    except OSError as exc:
        print(name, type(exc).__name__)
checkout = pathlib.Path("in-checkout.txt")
checkout.write_text("fine")  # the checkout itself is writable
assert checkout.read_text() == "fine"
# /tmp is writable but private: what is written there is gone with the sandbox.
assert set(written) <= {{"host tmp", "the service's repository"}}, written
"""

    result = run_patch(repository=str(service_repo), branch="main", diff=hostile_test(body), argv=[*PYTEST, "-s"])

    assert result.status == "passed", result.output
    for name, path in targets.items():
        assert not path.exists(), f"the sandbox wrote into {name}: {path}"
    assert "quench checkout" in result.output  # each refused write was reported
    assert_left_nothing(service_repo, sandbox_parent)


@needs_bubblewrap
def test_a_fork_bomb_fails_and_leaves_no_process(service_repo, sandbox_parent, settings):
    token = f"{time.time_ns()}"
    body = f"""
children = []
try:
    for _ in range(1000):
        pid = os.fork()
        if pid == 0:
            os.execv("/bin/sleep", ["sleep", "120.{token}"])
        children.append(pid)
except OSError:
    time.sleep(1)  # long enough for the test to see the children from outside
    raise
"""
    seen = []
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set():
            seen.append(len(processes_with(token)))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = run_patch(repository=str(service_repo), branch="main", diff=hostile_test(body), argv=PYTEST)
    finally:
        watching.set()
        watcher.join()

    assert result.status == "failed", result.output
    assert "BlockingIOError" in result.output or "Resource temporarily unavailable" in result.output
    assert 0 < max(seen) <= settings.QUENCH_SANDBOX_MAX_PROCESSES < 1000
    deadline = time.monotonic() + 5
    while processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(token) == []
    assert_left_nothing(service_repo, sandbox_parent)


@needs_bubblewrap
def test_a_daemon_that_leaves_the_process_group_ends_with_the_sandbox(service_repo, sandbox_parent):
    token = f"{time.time_ns()}"
    body = f"""
subprocess.Popen(["sleep", "120.{token}"], start_new_session=True)  # out of the group killpg ends
time.sleep(0.5)
"""

    result = run_patch(repository=str(service_repo), branch="main", diff=hostile_test(body), argv=PYTEST)

    assert result.status == "passed", result.output
    deadline = time.monotonic() + 5
    while processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(token) == []  # its PID namespace ended with the run
    assert_left_nothing(service_repo, sandbox_parent)


@needs_bubblewrap
def test_the_command_runs_unprivileged_with_its_own_processes_only(service_repo, sandbox_parent):
    body = """
print("uid", os.getuid(), "pids", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
print("interfaces", sorted(name for _, name in socket.if_nameindex()))
print("status", open("/proc/self/status").read().split("CapEff:")[1].split()[0])
"""

    result = run_patch(repository=str(service_repo), branch="main", diff=hostile_test(body), argv=[*PYTEST, "-s"])

    assert result.status == "passed", result.output
    assert result.isolated is True
    if os.geteuid() == 0:
        assert f"uid {django_settings.QUENCH_SANDBOX_UID} " in result.output
    pids = ast.literal_eval(result.output.split(" pids ", 1)[1].split("\n", 1)[0])
    assert max(pids) < 100  # a fresh PID namespace: the host's processes are not there
    assert "interfaces ['lo']" in result.output
    assert "status 0000000000000000" in result.output
    assert_left_nothing(service_repo, sandbox_parent)


def test_without_bubblewrap_runs_are_refused_unless_allowed(service_repo, sandbox_parent, settings, tmp_path):
    settings.QUENCH_SANDBOX_BWRAP = str(tmp_path / "no-such-bwrap")
    settings.QUENCH_SANDBOX_ALLOW_UNISOLATED = False

    result = run_patch(repository=str(service_repo), branch="main", diff=hostile_test("assert True"), argv=PYTEST)

    assert result.status == "error"
    assert result.isolated is False
    assert "Refused to run the tests without isolation" in result.message
    assert "bubblewrap" in result.message
    assert "QUENCH_SANDBOX_ALLOW_UNISOLATED=true" in result.message
    assert result.base_commit == ""  # refused before a checkout was made
    assert_left_nothing(service_repo, sandbox_parent)

    settings.QUENCH_SANDBOX_ALLOW_UNISOLATED = True
    result = run_patch(repository=str(service_repo), branch="main", diff=hostile_test("assert True"), argv=PYTEST)

    assert result.status == "passed", result.output
    assert result.isolated is False
    assert "Not isolated" in result.message
    assert_left_nothing(service_repo, sandbox_parent)


def test_missing_bubblewrap_is_logged_at_start(settings, caplog, tmp_path):
    settings.QUENCH_SANDBOX_BWRAP = str(tmp_path / "no-such-bwrap")
    caplog.set_level(logging.WARNING, logger="remediation.sandbox.isolation")

    warn_if_unisolated()
    settings.QUENCH_SANDBOX_ALLOW_UNISOLATED = True
    warn_if_unisolated()

    refused, unisolated = [record.getMessage() for record in caplog.records]
    assert "bubblewrap was not found" in refused
    assert "will be refused" in refused
    assert "apt-get install bubblewrap" in refused
    assert "UNISOLATED" in unisolated


def test_quench_data_home_and_secret_files_are_hidden(settings, monkeypatch, tmp_path):
    """What the mount table hides (the tests above show that it works)."""
    secret = Path("/var/tmp") / f"quench-secret-{os.getpid()}"
    secret.write_text("s3cr3t")
    try:
        monkeypatch.setenv("SECRET_KEY_FILE", str(secret))
        monkeypatch.setenv("Q_REDIS_URL_FILE", str(secret))
        monkeypatch.setenv("SSL_CERT_FILE", "/etc/hostname")  # the system's, not a secret
        settings.QUENCH_SANDBOX_HIDE_PATHS = ["/srv/does-not-exist", "/etc/ssl/private"]
        directories, files = hidden_paths()
        args = bwrap_argv("bwrap", cwd=tmp_path, writable=[tmp_path])
    finally:
        secret.unlink()

    base = os.path.realpath(django_settings.BASE_DIR)
    assert base in directories or base.startswith("/tmp/")  # under /tmp, the private /tmp hides it
    assert os.path.realpath(Path.home()) in directories or Path.home() == Path("/")
    assert str(secret) in files
    assert "/etc/hostname" not in files
    assert "/srv/does-not-exist" not in directories  # only what exists
    if base in directories:
        assert args[args.index(base) - 1] == "--tmpfs"
    # Quench's own Python stays usable, read-only, where the checkout (or home) would hide it.
    python = os.path.realpath(sys.prefix)
    if any(python.startswith(hidden + "/") for hidden in directories):
        assert args[args.index(python) - 1 : args.index(python) + 2] == ["--ro-bind", python, python]
    bind = args.index("--bind")
    assert args[bind : bind + 3] == ["--bind", str(tmp_path), str(tmp_path)]
    for option in ("--unshare-net", "--unshare-pid", "--die-with-parent"):
        assert option in args

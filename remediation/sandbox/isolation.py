"""Bubblewrap: what a sandboxed command may see, write and reach.

`bwrap_argv` builds the bwrap command line a sandboxed command runs under:

- the whole file system read-only (`--ro-bind / /`), a fresh /dev and the /proc of a new
  PID namespace (the command sees its own processes only, and when it ends they all end);
- a private, writable /tmp and /dev/shm; an empty /run (database and Docker sockets);
- hidden behind an empty read-only directory: Quench's BASE_DIR (its code, `.env`, and
  `var/` with the database, repository mirrors and static files), the home directory of
  the user running Quench, QUENCH_REPOSITORY_CACHE and QUENCH_SANDBOX_HIDE_PATHS; the
  files secrets are read from (SECRET_KEY_FILE and other secrets' `*_FILE`) cannot be
  read (/dev/null is mounted on them);
- shown again read-only where a hidden directory holds them: the Python running Quench
  (its virtual environment and installation) and QUENCH_SANDBOX_READ_ONLY_PATHS;
- writable: only the paths the caller binds (the checkout, the run's HOME and TMPDIR);
- no network (a new network namespace: its own loopback device and nothing else), its own
  System V IPC and host name; no capabilities. As root, the command itself runs as
  QUENCH_SANDBOX_UID, because the kernel does not apply the process limit to root.

`isolation_status` says whether that works here (bwrap found and able to create the
namespaces); without it sandbox runs are refused unless QUENCH_SANDBOX_ALLOW_UNISOLATED.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

logger = logging.getLogger("remediation.sandbox.isolation")

INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap), or set "
    "QUENCH_SANDBOX_ALLOW_UNISOLATED=true to run tests as Quench's own user, with its view of "
    "the file system and the network"
)
# Emptied in the sandbox whatever the settings say: /run holds sockets (PostgreSQL, Docker)
# and secrets (/run/secrets).
_EMPTIED = ("/run",)
# Private and writable in the sandbox: fresh, empty mounts, not the host's directories.
_PRIVATE = ("/tmp", "/dev/shm")  # noqa: S108
_PROBE_TIMEOUT_SECONDS = 10
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|_URL$|_DSN$", re.IGNORECASE)

_probes: dict[str, str] = {}  # bwrap path → "" when it works, else why not
_probes_lock = threading.Lock()


@dataclass(frozen=True)
class IsolationStatus:
    """Whether sandboxed commands run isolated here, with which bwrap, and if not, why not."""

    available: bool
    bwrap: str | None
    problem: str = ""

    def as_health(self) -> dict:
        """The sandbox's entry in /healthz: not ok (degraded) without isolation."""
        allowed = bool(settings.QUENCH_SANDBOX_ALLOW_UNISOLATED)
        if self.available:
            return {"ok": True, "isolated": True, "bwrap": self.bwrap}
        consequence = (
            "sandbox runs are NOT isolated (QUENCH_SANDBOX_ALLOW_UNISOLATED=true)"
            if allowed
            else "sandbox runs are refused"
        )
        return {
            "ok": False,
            "isolated": False,
            "bwrap": self.bwrap,
            "allow_unisolated": allowed,
            "problem": f"{self.problem}; {consequence}",
        }


def sandbox_health() -> dict:
    """The "sandbox" check of /healthz (registered by RemediationConfig.ready)."""
    return isolation_status().as_health()


def find_bwrap() -> str | None:
    """The bwrap executable QUENCH_SANDBOX_BWRAP names (a path, or a name on PATH); None if absent."""
    configured = (settings.QUENCH_SANDBOX_BWRAP or "").strip()
    if not configured:
        return None
    if "/" in configured:
        return configured if os.path.isfile(configured) and os.access(configured, os.X_OK) else None
    return shutil.which(configured)


def isolation_status(*, probe: bool = True) -> IsolationStatus:
    """Whether bubblewrap is there and can create the sandbox's namespaces (tried once per process)."""
    configured = (settings.QUENCH_SANDBOX_BWRAP or "").strip()
    if not configured:
        return IsolationStatus(False, None, "sandbox isolation is turned off (QUENCH_SANDBOX_BWRAP is empty)")
    bwrap = find_bwrap()
    if bwrap is None:
        return IsolationStatus(False, None, f'bubblewrap was not found (QUENCH_SANDBOX_BWRAP="{configured}")')
    if not probe:
        return IsolationStatus(True, bwrap)
    with _probes_lock:
        if bwrap not in _probes:
            _probes[bwrap] = _probe(bwrap)
        problem = _probes[bwrap]
    if problem:
        return IsolationStatus(False, bwrap, f"bubblewrap ({bwrap}) cannot create a sandbox here: {problem}")
    return IsolationStatus(True, bwrap)


def _probe(bwrap: str) -> str:
    """Run `true` in the namespaces a sandbox uses; "" when that works, else what went wrong."""
    true = shutil.which("true") or "/bin/true"
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-net", "--unshare-pid"]
    try:
        completed = subprocess.run(
            [*argv, "--die-with-parent", "--", true],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_PROBE_TIMEOUT_SECONDS,
            env={"PATH": os.defpath, "LANG": "C.UTF-8"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{type(exc).__name__}: {exc}"
    if completed.returncode != 0:
        detail = " ".join(completed.stderr.decode(errors="replace").split())[:300]
        return detail or f"exit code {completed.returncode}"
    return ""


def warn_if_unisolated() -> None:
    """Log once, at start-up, that sandbox runs are not isolated (presence of bwrap only: no probe)."""
    status = isolation_status(probe=False)
    if status.available:
        return
    if settings.QUENCH_SANDBOX_ALLOW_UNISOLATED:
        logger.warning(
            "Sandbox isolation is unavailable (%s): fix attempts' tests will run UNISOLATED as Quench's own "
            "user, because QUENCH_SANDBOX_ALLOW_UNISOLATED=true. Install bubblewrap to isolate them.",
            status.problem,
        )
    else:
        logger.warning(
            "Sandbox isolation is unavailable (%s): fix attempts will be refused until you %s.",
            status.problem,
            INSTALL_HINT,
        )


def sandbox_identity() -> tuple[int, int] | None:
    """The (uid, gid) the isolated command switches to: QUENCH_SANDBOX_UID as root, else None (stay)."""
    if os.geteuid() != 0:
        return None
    uid = int(settings.QUENCH_SANDBOX_UID)
    if uid <= 0:
        raise ValueError("QUENCH_SANDBOX_UID must be a user id other than root's (0).")
    return uid, uid


def hidden_paths() -> tuple[list[str], list[str]]:
    """The directories and the files the sandbox must not see (real paths that exist, outermost only)."""
    candidates = [
        str(settings.BASE_DIR),
        settings.QUENCH_REPOSITORY_CACHE,
        os.environ.get("QUENCH_EMBEDDED_PGDATA", ""),
        *_home_directories(),
        *settings.QUENCH_SANDBOX_HIDE_PATHS,
        *_secret_files(),
    ]
    directories: set[str] = set()
    files: set[str] = set()
    for candidate in candidates:
        if not candidate or not os.path.isabs(candidate):
            continue
        path = os.path.realpath(candidate)
        if path == "/" or any(_within(path, system) for system in ("/proc", "/dev", "/sys")):
            continue  # never hide the whole system (a home directory of "/" is not a secret)
        if os.path.isdir(path):
            directories.add(path)
        elif os.path.isfile(path):
            files.add(path)
    emptied = [*_EMPTIED, *_PRIVATE]
    outermost = sorted(
        path
        for path in directories
        if not any(_within(path, other) for other in directories | set(emptied) if other != path)
    )
    covered = [*outermost, *emptied]
    return outermost, sorted(path for path in files if not any(_within(path, other) for other in covered))


def _secret_files() -> list[str]:
    """Files secrets are read from (`env_secret`'s NAME_FILE: SECRET_KEY_FILE, DATABASE_URL_FILE, ...).

    Only those whose NAME is a setting or sounds like a secret: SSL_CERT_FILE and the like
    are the system's, and tests may need them.
    """
    return [
        value
        for name, value in os.environ.items()
        if name.endswith("_FILE")
        and (hasattr(settings, name.removesuffix("_FILE")) or _SECRET_NAME.search(name.removesuffix("_FILE")))
    ]


def _home_directories() -> list[str]:
    homes = [os.path.expanduser("~")]
    with contextlib.suppress(KeyError):  # a user id without a passwd entry (containers)
        homes.append(pwd.getpwuid(os.geteuid()).pw_dir)
    return homes


def shown_paths() -> list[str]:
    """What stays visible (read-only) even under a hidden directory: Quench's Python, and the setting's paths."""
    python = [
        sys.prefix,  # the virtual environment
        sys.base_prefix,  # the installation it was made from
        os.path.dirname(sys.executable),
        os.path.dirname(os.path.realpath(sys.executable)),
    ]
    return sorted(
        {os.path.realpath(path) for path in [*python, *settings.QUENCH_SANDBOX_READ_ONLY_PATHS] if path} - {"/"}
    )


def hidden_location(path: str) -> str | None:
    """The hidden directory that hides `path` in the sandbox, or None when the command can see it."""
    real = os.path.realpath(path)
    directories, files = hidden_paths()
    if any(_within(real, shown) for shown in shown_paths()):
        return None
    if real in files:
        return real
    for hidden in [*directories, *_EMPTIED]:
        if _within(real, hidden):
            return hidden
    return None


def bwrap_argv(
    bwrap: str,
    *,
    cwd: Path,
    writable: list[Path],
    read_only: list[Path] = (),
    identity: tuple[int, int] | None = None,
) -> list[str]:
    """The bwrap arguments (up to and including "--") for a command run in `cwd`."""
    directories, files = hidden_paths()
    args = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for path in _PRIVATE:
        args += ["--perms", "1777", "--tmpfs", path]
    for path in _EMPTIED:
        args += ["--tmpfs", path]
    for path in directories:
        args += ["--tmpfs", path]
    for path in files:
        args += ["--ro-bind", "/dev/null", path]
    covers = [*directories, *_EMPTIED, *_PRIVATE]
    made: set[str] = set()

    def mount_point(target: str) -> list[str]:
        """--dir for each directory bwrap would otherwise create 0700 (untraversable for the command)."""
        parents: list[str] = []
        for root in covers:
            if target != root and _within(target, root):
                parent = os.path.dirname(target)
                while parent != root and parent not in made:
                    parents.append(parent)
                    parent = os.path.dirname(parent)
        made.update(parents)
        return [arg for parent in sorted(parents, key=len) for arg in ("--perms", "0755", "--dir", parent)]

    for path in shown_paths():
        # Only what a hidden directory covers needs showing again, and never a hidden directory itself.
        if any(_within(path, root) and path != root for root in covers) and not any(
            _within(hidden, path) for hidden in directories
        ):
            args += [*mount_point(path), "--ro-bind", path, path]
    for path in map(str, read_only):
        args += [*mount_point(path), "--ro-bind", path, path]
    for path in map(str, writable):
        args += [*mount_point(path), "--bind", path, path]
    for path in [*_EMPTIED, *directories]:
        args += ["--remount-ro", path]  # that mount only: the shown paths under it keep theirs
    args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    args += ["--hostname", "quench-sandbox", "--die-with-parent", "--chdir", str(cwd)]
    if identity is not None:
        # Only to switch to the sandbox's user (the launcher does that, then execs the command).
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    return [*args, "--"]


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")

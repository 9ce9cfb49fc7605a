"""Where a service's code is: a local git repository used in place, or a mirror of a clone URL.

Every git call goes through `git()`: an argument list (never a shell), a timeout that ends
git's whole process group (clone and fetch start helpers such as git-remote-https), no
terminal prompts, and error messages with any credentials in URLs taken out.

A clone URL is mirrored under `settings.QUENCH_REPOSITORY_CACHE`: `git clone --mirror` the
first time, `git fetch --prune` afterwards, under a file lock so that two processes (web,
several django-q2 workers) never clone or fetch one mirror at once. Credentials in the URL
are used for the network call only: the mirror's stored remote URL has them removed, and no
log line or error message carries them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

logger = logging.getLogger("remediation.repositories")

CLONE_URL_PREFIXES = ("https://", "http://", "ssh://", "file://", "git@")

# Local git operations (rev-parse, worktree add, apply) finish in seconds on any sane
# repository; network ones (clone, fetch) get longer.
LOCAL_TIMEOUT_SECONDS = 120
NETWORK_TIMEOUT_SECONDS = 180

# Variables that would point git at another repository or inject configuration
# (`git rev-parse --local-env-vars` plus the config-injecting ones). Quench may itself run
# from a git hook or under a tool that sets them.
_REPOSITORY_ENV_VARS = frozenset(
    {
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_CONFIG",
        "GIT_CONFIG_COUNT",
        "GIT_CONFIG_PARAMETERS",
        "GIT_DIR",
        "GIT_GRAFT_FILE",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_INTERNAL_SUPER_PREFIX",
        "GIT_NAMESPACE",
        "GIT_NO_REPLACE_OBJECTS",
        "GIT_OBJECT_DIRECTORY",
        "GIT_PREFIX",
        "GIT_REPLACE_REF_BASE",
        "GIT_SHALLOW_FILE",
        "GIT_WORK_TREE",
    }
)

# user:password@ (or token@) in any scheme://… URL, wherever it appears in git's output.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


class RepositoryError(Exception):
    """A repository or branch that cannot be used, said in one sentence an operator can act on.

    `output` is git's whole error output (credentials removed) when git said more than fits.
    """

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


def is_clone_url(repository: str) -> bool:
    return repository.strip().startswith(CLONE_URL_PREFIXES)


def display_url(repository: str) -> str:
    """`repository` as it may be logged or shown: credentials in a URL replaced by `***`."""
    return _URL_CREDENTIALS.sub(r"\g<scheme>***@", repository)


def _without_credentials(url: str) -> str:
    """The URL with its user-info removed entirely (what the mirror stores as its remote)."""
    if "://" not in url:
        return url  # git@host:path carries a user name, never a secret
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def mirror_name(url: str) -> str:
    """A file-system-safe, stable directory name for the mirror of `url`.

    Readable (host and path) for operators looking at the cache, plus a hash of the URL
    without credentials, so a rotated token still maps to the same mirror and two URLs that
    flatten to the same readable part still get different directories.
    """
    clean = _without_credentials(url.strip()).rstrip("/")
    readable = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", clean)
    readable = re.sub(r"\.git$", "", readable)
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", readable).strip("-.")[-60:].strip("-.") or "repository"
    digest = hashlib.sha256(clean.encode()).hexdigest()[:12]
    return f"{readable}-{digest}"


def git_environment() -> dict[str, str]:
    """The environment for Quench's own git calls: never prompt, English messages, no repository overrides.

    It keeps the rest of Quench's environment on purpose (HOME for the operator's git
    configuration, SSH_AUTH_SOCK, credential helpers): these calls fetch the operator's
    code. The sandboxed test command gets a different, scrubbed environment.
    """
    env = {key: value for key, value in os.environ.items() if key not in _REPOSITORY_ENV_VARS}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return env


def git(
    args: list[str],
    *,
    cwd: Path | str | None = None,
    timeout: float = LOCAL_TIMEOUT_SECONDS,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
) -> str:
    """Run `git *args` and return its stdout; RepositoryError (credentials removed) when it fails.

    `env` adds variables to Quench's git environment (a temporary index, a commit's fixed
    author and dates); `input_text` is written to git's standard input.
    """
    command = ["git", *args]
    try:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env={**git_environment(), **(env or {})},
            stdin=subprocess.DEVNULL if input_text is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,  # its own process group, so a timeout ends git's helpers too
        )
    except FileNotFoundError:
        raise RepositoryError("git is not installed (or not on PATH).") from None
    try:
        stdout, stderr = process.communicate(input=input_text, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise RepositoryError(f"git {args[0]} did not finish within {timeout:g} s.") from None
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    if process.returncode != 0:
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        # git's "fatal:"/"error:" lines say what went wrong; hints follow them.
        errors = [line for line in lines if line.startswith(("fatal:", "error:"))] or lines
        detail = " ".join(errors[:3]) or f"exit code {process.returncode}"
        raise RepositoryError(f"git {args[0]} failed: {display_url(detail)}", output=display_url(stderr))
    return stdout


def local_repository(repository: str) -> Path:
    """The local git repository to build sandboxes from.

    An absolute path is used in place and must be the top directory of a git repository
    (or a bare repository). A clone URL is mirrored into the repository cache and the
    mirror is returned, fetched up to date.
    """
    repository = repository.strip()
    if not repository:
        raise RepositoryError("No repository is configured for this service.")
    if is_clone_url(repository):
        return _mirror(repository)
    path = Path(repository)
    if not path.is_absolute():
        raise RepositoryError(f"{repository!r} is neither an absolute path nor a clone URL.")
    if not path.is_dir():
        raise RepositoryError(f"{path} does not exist or is not a directory.")
    try:
        bare = git(["rev-parse", "--is-bare-repository"], cwd=path).strip() == "true"
    except RepositoryError as exc:
        raise RepositoryError(f"{path} is not a git repository ({exc}).") from None
    if not bare:
        top = Path(git(["rev-parse", "--show-toplevel"], cwd=path).strip())
        if os.path.realpath(top) != os.path.realpath(path):
            raise RepositoryError(f"{path} is inside the git repository {top}; give the repository's top directory.")
    return path


def resolve_commit(repo: Path, branch: str) -> str:
    """The commit sha `branch` points at in `repo`; RepositoryError when there is no such branch."""
    if not branch or branch.startswith("-"):
        raise RepositoryError(f"{branch!r} is not a valid branch name.")
    try:
        git(["check-ref-format", "--branch", branch], cwd=repo)
    except RepositoryError:
        raise RepositoryError(f"{branch!r} is not a valid branch name.") from None
    try:
        return git(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"refs/heads/{branch}^{{commit}}"], cwd=repo
        ).strip()
    except RepositoryError:
        raise RepositoryError(f'Branch "{branch}" does not exist in {display_url(str(repo))}.') from None


def _mirror(url: str) -> Path:
    """Clone `url` into the cache the first time, fetch it afterwards; the mirror's path."""
    cache = Path(settings.QUENCH_REPOSITORY_CACHE)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RepositoryError(f"Cannot create the repository cache {cache}: {exc.strerror}.") from None
    name = mirror_name(url)
    target = cache / f"{name}.git"
    shown = display_url(url)
    with _file_lock(cache / f"{name}.lock", wait=NETWORK_TIMEOUT_SECONDS + 30, what=shown):
        started = time.monotonic()
        if (target / "HEAD").is_file():
            # The URL is given on the command line (not read from the mirror's config), so
            # credentials are used for this call without ever being written to disk.
            try:
                git(
                    ["fetch", "--prune", "--quiet", "--", url, "+refs/*:refs/*"],
                    cwd=target,
                    timeout=NETWORK_TIMEOUT_SECONDS,
                )
            except RepositoryError as exc:
                raise RepositoryError(f"Could not update the mirror of {shown}: {exc}", output=exc.output) from None
            logger.info("Fetched %s", shown, extra={"repository": shown, "duration_ms": _ms_since(started)})
            return target
        # Clone beside the mirror and rename it into place, so only a complete clone ever
        # carries the mirror's name; a directory there without HEAD is debris, not a mirror.
        shutil.rmtree(target, ignore_errors=True)
        partial = cache / f".{name}.{uuid.uuid4().hex[:8]}.partial"
        try:
            git(["clone", "--mirror", "--quiet", "--", url, str(partial)], timeout=NETWORK_TIMEOUT_SECONDS)
            git(["remote", "set-url", "origin", _without_credentials(url)], cwd=partial)
            partial.rename(target)
        except RepositoryError as exc:
            raise RepositoryError(f"Could not mirror {shown}: {exc}", output=exc.output) from None
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        logger.info("Mirrored %s", shown, extra={"repository": shown, "duration_ms": _ms_since(started)})
        return target


def worktree_lock(repo: Path) -> contextlib.AbstractContextManager[None]:
    """Serialize `git worktree add/remove/prune` on one repository across threads and processes.

    Concurrent adds race on naming git's administrative directory (`.git/worktrees/repo1`:
    "failed to read ... commondir"), and a prune can drop a worktree another run is adding.
    The lock is held only for those commands, never while tests run.
    """
    # In the git directory (a bare mirror is one), where git keeps the worktrees' records too.
    git_dir = repo / ".git" if (repo / ".git").is_dir() else repo
    path = git_dir / "quench-worktrees.lock"
    return _file_lock(path, wait=LOCAL_TIMEOUT_SECONDS, what=f"the worktrees of {repo}", verb="changing")


@contextlib.contextmanager
def _file_lock(path: Path, *, wait: float, what: str, verb: str = "updating the mirror of") -> Iterator[None]:
    """An exclusive lock between processes (flock), waiting at most `wait` seconds for it."""
    deadline = time.monotonic() + wait
    with open(path, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RepositoryError(f"Timed out waiting for another process {verb} {what}.") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)

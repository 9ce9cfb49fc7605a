"""The sandbox: apply a patch to a fresh checkout of a service's branch and run its tests.

A run never touches the service's repository working tree. It goes:

1. `patch_problems` refuses unsafe patches before anything is created: paths that are
   absolute, leave the repository (`..`), touch `.git/`, symlinks and submodules, binary
   patches, an empty patch.
2. The branch's commit is checked out with `git worktree add --detach` into a new
   temporary directory (one per run, so concurrent runs on one repository never meet).
3. `git apply --check`, then `git apply` (never `--unsafe-paths`); afterwards every path
   the patch touched must still resolve (realpath) inside the worktree.
4. The command runs without a shell, in its own session and process group, with an
   environment built from nothing (no secret of Quench's can reach it), CPU, address
   space, file size and core limits, a wall-clock timeout that kills the whole group, and
   its combined output streamed into a bounded buffer.
5. The worktree and the temporary directory are removed, whatever happened.

What this is not: a security boundary against hostile code. The command runs as Quench's
user with its file-system access; the limits stop runaway tests, the scrubbed environment
keeps secrets out of the test run, and the patch checks stop a patch from writing outside
the checkout. Run Quench's workers as an unprivileged user (or in a container) for more.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from remediation.repositories import (
    RepositoryError,
    display_url,
    git,
    local_repository,
    resolve_commit,
    worktree_lock,
)

logger = logging.getLogger("remediation.sandbox")

PASSED = "passed"
FAILED = "failed"
TIMED_OUT = "timed_out"
INVALID_PATCH = "invalid_patch"
ERROR = "error"

# Largest file the command may write (RLIMIT_FSIZE): generous for test artefacts, small
# enough that a runaway writer cannot fill the disk.
FILE_SIZE_LIMIT_BYTES = 1024 * 1024 * 1024
# The system directories the command's PATH holds (after the directory of Quench's own
# Python), whatever PATH Quench itself was started with.
SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
# After the command exits, how long output still in the pipe is read.
_DRAIN_SECONDS = 2.0
_READ_CHUNK = 64 * 1024

# Modes a patch may not create: a symlink could point anywhere (and later writes follow
# it); a gitlink (submodule) makes git fetch another repository.
_REFUSED_MODES = {"120000": "symbolic links are not allowed", "160000": "submodules are not allowed"}
_HUNK = re.compile(r"^@@ -\d+(?:,(?P<old>\d+))? \+\d+(?:,(?P<new>\d+))? @@")
_DIFF_GIT = re.compile(r'^diff --git (?P<a>"(?:[^"\\]|\\.)*"|\S+) (?P<b>"(?:[^"\\]|\\.)*"|\S+)$')
_MODE = re.compile(r"^(?:new file mode|deleted file mode|new mode|old mode) (?P<mode>\d+)\s*$")
_INDEX_MODE = re.compile(r"^index [0-9a-fA-F]+\.\.[0-9a-fA-F]+ (?P<mode>\d+)\s*$")
# "rename old/new" are the older spellings of "rename from/to"; git apply still reads them.
_EXTENDED = re.compile(r"^(?P<kind>rename from|rename to|rename old|rename new|copy from|copy to) (?P<path>.*)$")
_C_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}

# Runs in the child before the command: sets the limits, then execs the command. A
# wrapper instead of `preexec_fn`, which is not safe in a process with threads (web
# servers, queue workers) and may deadlock the child between fork and exec. An exec that
# fails is reported on the `report` pipe (closed on a successful exec), so it is never
# confused with the command's own exit code.
_LAUNCHER = """\
import os, resource, sys
report = int(sys.argv[1])
cpu, memory, fsize = (int(value) for value in sys.argv[2:5])
def lower(limit, soft, hard):
    _, current = resource.getrlimit(limit)
    if current != resource.RLIM_INFINITY:
        soft, hard = min(soft, current), min(hard, current)
    resource.setrlimit(limit, (soft, hard))
try:
    lower(resource.RLIMIT_CORE, 0, 0)
    lower(resource.RLIMIT_CPU, cpu, cpu + 1)
    lower(resource.RLIMIT_AS, memory, memory)
    lower(resource.RLIMIT_FSIZE, fsize, fsize)
    os.set_inheritable(report, False)
    os.execv(sys.argv[5], sys.argv[6:])
except BaseException as exc:
    os.write(report, f"{type(exc).__name__}: {exc}".encode(errors="replace"))
    os._exit(127)
"""


@dataclass
class SandboxResult:
    """What a sandbox run ended in; the fields a FixAttempt stores.

    `exit_code` is the command's exit status, minus the signal number when a signal ended
    it (Python's convention), None when it never ran or was killed for the timeout.
    `duration_ms` covers the whole run (checkout, apply, command, clean-up).
    """

    status: str  # passed | failed | timed_out | invalid_patch | error
    message: str  # one line saying what happened
    exit_code: int | None = None
    output: str = ""
    output_truncated: bool = False
    duration_ms: int = 0
    base_commit: str = ""
    files_changed: list[str] = field(default_factory=list)


@dataclass
class _FilePatch:
    """One file section of a patch: its names as the headers give them, and its modes."""

    diff_paths: list[str] = field(default_factory=list)  # from `diff --git a/… b/…`
    header_paths: list[str] = field(default_factory=list)  # from ---/+++
    extended: list[tuple[str, str]] = field(default_factory=list)  # (rename to, path), ...
    modes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        for path in (*reversed(self.header_paths), *reversed(self.diff_paths)):
            if path:
                return path
        return next((path for _, path in self.extended), "")

    def paths(self) -> list[str]:
        return [*self.diff_paths, *self.header_paths, *(path for _, path in self.extended)]


def patch_problems(diff: str) -> list[str]:
    """Why `diff` may not be applied, one sentence each; empty when it may be tried.

    Static checks only, before anything is created; `git apply` and the realpath check
    after it are the second and third lines of defence.
    """
    if not diff.strip():
        return ["The patch is empty."]
    files, problems = _parse(diff)
    if not files and not problems:
        return ["The patch names no files (no diff --git or ---/+++ headers)."]
    for file in files:
        named = set()  # a rename's target is also in its "diff --git" line: say it once
        for kind, path in file.extended:
            if problem := path_problem(path):
                problems.append(f'{kind.capitalize()} "{path}": {problem}.')
                named.add(path)
        for path in file.diff_paths + file.header_paths:
            if path not in named and (problem := path_problem(path)):
                problems.append(f'"{path}": {problem}.')
        for mode in file.modes:
            if mode in _REFUSED_MODES:
                problems.append(f'"{file.name}": {_REFUSED_MODES[mode]} (mode {mode}).')
    return list(dict.fromkeys(problems))


def patch_paths(diff: str) -> list[str]:
    """Every repository path `diff` touches (old and new names), in order, without duplicates."""
    files, _ = _parse(diff)
    return list(dict.fromkeys(path for file in files for path in file.paths() if path))


def _parse(diff: str) -> tuple[list[_FilePatch], list[str]]:
    """The file sections of a unified (git or traditional) diff, and binary-patch problems.

    Hunk lines are counted from their @@ headers, so a removed line that reads
    "-- /etc/passwd" is content, not a "--- " header.
    """
    files: list[_FilePatch] = []
    problems: list[str] = []
    current: _FilePatch | None = None
    old_left = new_left = 0
    # Lines end at "\n" only, as git apply reads them (str.splitlines would also split at \f, \x1c, ...).
    for line in (raw.removesuffix("\r") for raw in diff.split("\n")):
        if old_left > 0 or new_left > 0:
            if line.startswith("\\"):
                continue
            if line == "" or line[0] == " ":
                old_left, new_left = old_left - 1, new_left - 1
                continue
            if line[0] == "-":
                old_left -= 1
                continue
            if line[0] == "+":
                new_left -= 1
                continue
            old_left = new_left = 0  # a short hunk; what follows is headers again
        if match := _DIFF_GIT.match(line):
            current = _FilePatch(diff_paths=[_strip_prefix(_unquote(match["a"])), _strip_prefix(_unquote(match["b"]))])
            files.append(current)
        elif line.startswith("diff --git "):
            # Names with spaces are not quoted by git; the ---/+++ lines will name them.
            current = _FilePatch()
            files.append(current)
        elif line.startswith(("--- ", "+++ ")):
            path = _unquote(line[4:].split("\t")[0])
            if current is None or (line.startswith("--- ") and current.header_paths):
                current = _FilePatch()  # a traditional diff: no "diff --git" line
                files.append(current)
            if path != "/dev/null":
                current.header_paths.append(_strip_prefix(path))
        elif match := _HUNK.match(line):
            old_left = int(match["old"]) if match["old"] is not None else 1
            new_left = int(match["new"]) if match["new"] is not None else 1
        elif current is not None and (match := _EXTENDED.match(line)):
            current.extended.append((match["kind"], _unquote(match["path"])))
        elif current is not None and (match := _MODE.match(line) or _INDEX_MODE.match(line)):
            current.modes.append(match["mode"])
        elif line.startswith("GIT binary patch") or (line.startswith("Binary files ") and line.endswith(" differ")):
            name = f'"{current.name}": ' if current is not None and current.name else ""
            problems.append(f"{name}binary patches are not allowed.")
    return files, problems


def _unquote(path: str) -> str:
    """A path as git writes it: C-style quoted (octal bytes, \\t, \\") when it has odd characters."""
    if len(path) < 2 or not (path.startswith('"') and path.endswith('"')):
        return path
    raw = bytearray()
    body, index = path[1:-1], 0
    while index < len(body):
        char = body[index]
        if char != "\\" or index + 1 == len(body):
            raw += char.encode()
            index += 1
        elif body[index + 1] in _C_ESCAPES:
            raw.append(_C_ESCAPES[body[index + 1]])
            index += 2
        elif re.match(r"[0-7]{3}", body[index + 1 : index + 4]):
            raw.append(int(body[index + 1 : index + 4], 8) & 0xFF)
            index += 4
        else:
            raw += body[index + 1].encode()
            index += 2
    return raw.decode("utf-8", errors="surrogateescape")


def _strip_prefix(path: str) -> str:
    return path[2:] if path.startswith(("a/", "b/")) else path


def path_problem(path: str) -> str | None:
    """Why a repository-relative path in a patch is unsafe (None when it is fine)."""
    if not path:
        return "an empty path"
    if any(ord(char) < 32 or ord(char) == 127 for char in path):
        return "control characters in a path are not allowed"
    if path.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:", path):
        return "absolute paths are not allowed"
    components = re.split(r"[\\/]", path)
    if ".." in components:
        return 'the path leaves the repository (a ".." component)'
    # ".git " and ".git." are the same directory on NTFS; refuse them with ".git" itself.
    if any(component.lower().rstrip(" .") == ".git" for component in components):
        return "the patch may not touch .git/"
    return None


def run_patch(
    *,
    repository: str,
    branch: str,
    diff: str,
    argv: list[str],
    timeout: int | None = None,
    cpu_seconds: int | None = None,
    memory_mb: int | None = None,
    output_limit: int | None = None,
) -> SandboxResult:
    """Apply `diff` to `branch` of `repository` in a throw-away checkout and run `argv` there.

    Limits default to the QUENCH_SANDBOX_* settings. Never raises for a bad patch, a
    missing branch or a failing command: the result's status and message say what happened.
    """
    started = time.monotonic()
    limits = _Limits(
        timeout=timeout or settings.QUENCH_SANDBOX_TIMEOUT_SECONDS,
        cpu_seconds=cpu_seconds or settings.QUENCH_SANDBOX_CPU_SECONDS,
        memory_mb=memory_mb or settings.QUENCH_SANDBOX_MEMORY_MB,
        output_limit=output_limit or settings.QUENCH_SANDBOX_OUTPUT_LIMIT,
    )
    try:
        result = _run(repository, branch, diff, list(argv), limits)
    except Exception as exc:
        logger.exception("Sandbox run failed unexpectedly", extra={"repository": display_url(repository)})
        result = SandboxResult(
            ERROR, f"The sandbox failed: {type(exc).__name__}: {exc}", files_changed=patch_paths(diff)
        )
    result.duration_ms = int((time.monotonic() - started) * 1000)
    result.message = " ".join(result.message.split())
    logger.info(
        "Sandbox run %s in %d ms: %s",
        result.status,
        result.duration_ms,
        result.message,
        extra={
            "status": result.status,
            "duration_ms": result.duration_ms,
            "repository": display_url(repository),
            "branch": branch,
            "base_commit": result.base_commit,
            "exit_code": result.exit_code,
        },
    )
    return result


@dataclass(frozen=True)
class _Limits:
    timeout: int
    cpu_seconds: int
    memory_mb: int
    output_limit: int

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"The sandbox's {name} must be a positive whole number, not {value!r}.")


def _run(repository: str, branch: str, diff: str, argv: list[str], limits: _Limits) -> SandboxResult:
    files_changed = patch_paths(diff)
    if problems := patch_problems(diff):
        return SandboxResult(INVALID_PATCH, "Patch refused: " + " ".join(problems), files_changed=files_changed)
    if not argv or not all(isinstance(arg, str) and arg for arg in argv):
        return SandboxResult(ERROR, "No command to run (argv must be a non-empty list of strings).")
    try:
        repo = local_repository(repository)
        base_commit = resolve_commit(repo, branch)
    except RepositoryError as exc:
        return SandboxResult(ERROR, str(exc), files_changed=files_changed)

    result = SandboxResult(ERROR, "", base_commit=base_commit, files_changed=files_changed)
    sandbox = Path(tempfile.mkdtemp(prefix="quench-sandbox-"))
    worktree = sandbox / "repo"
    added = False
    try:
        try:
            # No hooks: a post-checkout hook of the repository has no business in a sandbox.
            checkout = ["worktree", "add", "--detach", "--quiet", str(worktree), base_commit]
            with worktree_lock(repo):
                git(["-c", "core.hooksPath=/dev/null", *checkout], cwd=repo)
            added = True
        except RepositoryError as exc:
            result.message = f"Could not check out {base_commit[:12]}: {exc}"
            return result

        patch_file = sandbox / "fix.patch"  # outside the worktree: not part of what is tested
        patch_file.write_text(diff if diff.endswith("\n") else diff + "\n", encoding="utf-8")
        for check in (True, False):
            try:
                git(["apply", *(["--check"] if check else []), "--whitespace=nowarn", str(patch_file)], cwd=worktree)
            except RepositoryError as exc:
                result.status, result.output = INVALID_PATCH, exc.output or str(exc)
                result.message = f"The patch does not apply to {branch} at {base_commit[:12]}: {exc}"
                return result
        if escaped := _escaping_paths(worktree, files_changed):
            result.status = INVALID_PATCH
            outside = ", ".join(f'"{path}"' for path in escaped)
            result.message = f"Patch refused: once applied, these paths resolve outside the checkout: {outside}."
            return result

        return _run_command(argv, worktree, sandbox, limits, result)
    finally:
        _remove_sandbox(repo, sandbox, worktree, added)


def _escaping_paths(worktree: Path, paths: list[str]) -> list[str]:
    """The touched paths that resolve (symlinks followed) outside `worktree`."""
    root = os.path.realpath(worktree)
    escaped = []
    for path in paths:
        resolved = os.path.realpath(os.path.join(root, path))
        if os.path.commonpath([root, resolved]) != root:
            escaped.append(path)
    return escaped


def sandbox_environment(sandbox: Path) -> dict[str, str]:
    """The command's whole environment, built from scratch: nothing of Quench's own gets in.

    PATH starts with the directory of the Python running Quench (so `python` is the
    interpreter, and virtual environment, Quench runs in), then the system directories.
    Where that directory has no `python` (a distribution's python3), the sandbox's own
    `bin` with a `python` that runs it comes right after it.
    """
    python_dir = os.path.dirname(sys.executable)
    shims = str(sandbox / "bin")
    system = (directory for directory in SYSTEM_PATH if directory != python_dir and os.path.isdir(directory))
    return {
        "PATH": os.pathsep.join([python_dir, shims, *system]),
        "HOME": str(sandbox / "home"),
        "TMPDIR": str(sandbox / "tmp"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONUNBUFFERED": "1",
    }


def _prepare_sandbox_home(sandbox: Path) -> None:
    """HOME, TMPDIR and the `python`/`python3` shims the command's environment points at."""
    for name in ("home", "tmp", "bin"):
        os.mkdir(sandbox / name, 0o700)
    python_dir = os.path.dirname(sys.executable)
    for name in ("python", "python3"):
        if not os.access(os.path.join(python_dir, name), os.X_OK):
            shim = sandbox / "bin" / name
            # A script, not a symlink: through a symlink Python would not find its virtual environment.
            shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
            shim.chmod(0o755)


def _run_command(
    argv: list[str], worktree: Path, sandbox: Path, limits: _Limits, result: SandboxResult
) -> SandboxResult:
    env = sandbox_environment(sandbox)
    _prepare_sandbox_home(sandbox)
    executable = _find_executable(argv[0], worktree, env["PATH"])
    if executable is None:
        where = "in the checkout" if "/" in argv[0] else f"on the sandbox PATH ({env['PATH']})"
        result.message = f'Cannot run the command: "{argv[0]}" was not found {where}, or is not executable.'
        return result
    if not sys.executable:
        result.message = "Cannot start the sandbox: the running Python's path (sys.executable) is unknown."
        return result

    report_read, report_write = os.pipe()
    launcher = [
        sys.executable,
        "-I",  # ignore PYTHON* variables and user site-packages; the launcher needs neither
        "-S",
        "-c",
        _LAUNCHER,
        str(report_write),
        str(limits.cpu_seconds),
        str(limits.memory_mb * 1024 * 1024),
        str(FILE_SIZE_LIMIT_BYTES),
        executable,
        *argv,
    ]
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            launcher,
            cwd=worktree,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(report_write,),
            start_new_session=True,  # own session and process group: one killpg ends it all
        )
    except OSError as exc:
        os.close(report_read)
        os.close(report_write)
        result.message = f"Cannot start the sandbox: {exc}"
        return result
    os.close(report_write)
    output = _BoundedOutput(limits.output_limit)
    timed_out = False
    try:
        exec_error = _read_exec_report(report_read, deadline=started + limits.timeout)
        if exec_error:
            result.message = f'Cannot run the command "{argv[0]}": {exec_error}'
            return result
        timed_out = _stream_until_exit(process, output, deadline=started + limits.timeout)
    finally:
        os.close(report_read)
        # Whatever the command left running in its group (servers, background jobs) ends
        # with it. The group leader is not reaped yet, so its id cannot have been reused.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if not process.stdout.closed:
            _drain(process, output)
            process.stdout.close()

    elapsed = time.monotonic() - started
    result.output, result.output_truncated = output.text()
    if timed_out:
        result.status = TIMED_OUT
        result.message = f"The command did not finish within {limits.timeout} s and was killed."
        return result
    code = process.returncode
    result.exit_code = code
    if code == 0:
        result.status = PASSED
        result.message = f"The command exited with code 0 after {elapsed:.1f} s."
    elif code < 0:
        result.status = FAILED
        result.message = (
            f"The command was killed by {_signal_name(-code)}{_signal_hint(-code, limits)} after {elapsed:.1f} s."
        )
    else:
        result.status = FAILED
        hint = (
            f" (the output mentions MemoryError; the memory limit is {limits.memory_mb} MiB)"
            if output.saw_memory_error
            else ""
        )
        result.message = f"The command exited with code {code} after {elapsed:.1f} s{hint}."
    return result


def _find_executable(program: str, worktree: Path, path: str) -> str | None:
    """Where `program` is: relative to the checkout when it has a slash, else looked up on PATH."""
    if "/" in program:
        candidate = program if os.path.isabs(program) else os.path.join(worktree, program)
        return candidate if os.path.isfile(candidate) and os.access(candidate, os.X_OK) else None
    return shutil.which(program, path=path)


def _read_exec_report(fd: int, *, deadline: float) -> str:
    """What the launcher said about a failed exec; "" once the exec succeeded (the pipe closed)."""
    message = b""
    while (remaining := deadline - time.monotonic()) > 0:
        if not _readable(fd, remaining):
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        message += chunk
    return message.decode(errors="replace")


def _readable(fd: int, timeout: float) -> bool:
    # A selector (epoll), not select.select: a long-lived worker's descriptors may pass 1024.
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        return bool(selector.select(timeout))


def _stream_until_exit(process: subprocess.Popen, output: _BoundedOutput, *, deadline: float) -> bool:
    """Read the command's output until it exits; True when the deadline passed first."""
    fd = process.stdout.fileno()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        eof = False
        while not _has_exited(process):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            if eof:
                time.sleep(min(remaining, 0.05))
                continue
            if selector.select(timeout=min(remaining, 0.25)):
                chunk = os.read(fd, _READ_CHUNK)
                if chunk:
                    output.feed(chunk)
                else:
                    eof = True  # it closed its output but may still be running
    return False


def _has_exited(process: subprocess.Popen) -> bool:
    """Whether the command has exited, without reaping it (its id must stay reserved for killpg)."""
    if not hasattr(os, "waitid"):
        return process.poll() is not None
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): it has exited
        return True


def _drain(process: subprocess.Popen, output: _BoundedOutput) -> None:
    """Read what is left in the pipe; give up after a moment if something outside the group holds it open."""
    fd = process.stdout.fileno()
    deadline = time.monotonic() + _DRAIN_SECONDS
    while (remaining := deadline - time.monotonic()) > 0:
        if not _readable(fd, remaining):
            return
        chunk = os.read(fd, _READ_CHUNK)
        if not chunk:
            return
        output.feed(chunk)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _signal_hint(number: int, limits: _Limits) -> str:
    if number == signal.SIGXCPU:
        return f" (the CPU time limit of {limits.cpu_seconds} s)"
    if number == signal.SIGKILL:
        return f" (past the CPU time limit of {limits.cpu_seconds} s, or out of memory)"
    if number == signal.SIGXFSZ:
        return f" (the file size limit of {FILE_SIZE_LIMIT_BYTES // (1024 * 1024)} MiB)"
    if number in (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS):
        return f" (possibly the memory limit of {limits.memory_mb} MiB)"
    return ""


class _BoundedOutput:
    """The command's output in at most `limit` characters: its beginning and its end.

    Bytes are decoded as they arrive and only the first and last `limit // 2` characters are
    kept, so a test run that prints gigabytes costs no more memory than one that prints a page.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 0)
        self.head = ""
        self.tail: list[str] = []
        self.tail_chars = 0
        self.total_chars = 0
        self.saw_memory_error = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._carry = ""  # the end of the previous chunk, so "MemoryError" split over two chunks is seen

    def feed(self, chunk: bytes, final: bool = False) -> None:
        text = self._decoder.decode(chunk, final=final)
        if not text:
            return
        if not self.saw_memory_error:
            self.saw_memory_error = "MemoryError" in self._carry + text
            self._carry = text[-16:]
        self.total_chars += len(text)
        if len(self.head) < self.limit:
            room = self.limit - len(self.head)
            self.head, text = self.head + text[:room], text[room:]
        if text:
            self.tail.append(text)
            self.tail_chars += len(text)
            while self.tail and self.tail_chars - len(self.tail[0]) >= self.limit:
                self.tail_chars -= len(self.tail.pop(0))

    def text(self) -> tuple[str, bool]:
        """The output (NUL characters replaced: PostgreSQL text cannot hold them) and whether it was cut."""
        self.feed(b"", final=True)
        if self.total_chars <= self.limit:
            whole = self.head + "".join(self.tail)
            return whole.replace("\x00", "\ufffd"), False
        # When characters were dropped, the tail still holds at least `limit` of the last
        # ones, so both parts below are contiguous with the real beginning and end.
        kept = self.head + "".join(self.tail)
        marker = f"\n[... {self.total_chars:,} characters in all; the middle was cut ...]\n"
        budget = max(self.limit - len(marker), 0)
        head_part = kept[: budget - budget // 2]
        tail_part = kept[len(kept) - budget // 2 :] if budget // 2 else ""
        cut = self.total_chars - len(head_part) - len(tail_part)
        marker = f"\n[... {cut:,} characters cut from the middle ...]\n"
        return (head_part + marker + tail_part).replace("\x00", "\ufffd"), True


def _remove_sandbox(repo: Path, sandbox: Path, worktree: Path, added: bool) -> None:
    """Remove the worktree (and git's record of it) and the temporary directory; never raises."""
    try:
        with worktree_lock(repo):
            if added:
                try:
                    git(["worktree", "remove", "--force", str(worktree)], cwd=repo)
                except RepositoryError as exc:
                    logger.warning("Could not remove the sandbox worktree %s: %s", worktree, exc)
            if sys.version_info >= (3, 12):
                shutil.rmtree(sandbox, onexc=_make_writable_and_retry)
            else:
                shutil.rmtree(sandbox, onerror=_make_writable_and_retry)
            try:
                # A record whose directory is gone (the remove above failed, or an add was cut
                # short) is dropped; other runs' worktrees stay (adds hold the same lock).
                git(["worktree", "prune"], cwd=repo)
            except RepositoryError as exc:
                logger.warning("Could not prune sandbox worktrees of %s: %s", display_url(str(repo)), exc)
    except RepositoryError as exc:  # the lock itself timed out
        logger.warning("Could not clean up the sandbox %s: %s", sandbox, exc)
        shutil.rmtree(sandbox, ignore_errors=True)


def _make_writable_and_retry(_function, path, _error) -> None:
    """rmtree's error handler: a test may have left read-only directories; a second failure is logged."""
    try:
        os.chmod(os.path.dirname(path), 0o700)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("Could not remove %s from a sandbox: %s", path, exc)


def sweep_stale_sandboxes(*, older_than_seconds: float) -> int:
    """Remove `quench-sandbox-*` temporary directories left by workers killed mid-run; how many went.

    A live run's directory is younger than the queue's task timeout, so anything older
    belongs to a worker that died before its `finally` ran.
    """
    cutoff = time.time() - older_than_seconds
    removed = 0
    for path in Path(tempfile.gettempdir()).glob("quench-sandbox-*"):
        try:
            if not path.is_dir() or path.stat().st_mtime > cutoff:
                continue
        except OSError:
            continue
        rmtree = (
            {"onexc": _make_writable_and_retry}
            if sys.version_info >= (3, 12)
            else {"onerror": _make_writable_and_retry}
        )
        shutil.rmtree(path, **rmtree)
        removed += 1
    return removed

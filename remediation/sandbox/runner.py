"""The isolated runner: apply a patch to a fresh checkout of a service's branch and test it there.

A run never touches the service's repository working tree. It goes:

1. `patch_problems` refuses unsafe patches before anything is created (see `patches`).
2. Without working isolation (bubblewrap) the run is refused, unless
   QUENCH_SANDBOX_ALLOW_UNISOLATED says to run it as Quench's own user.
3. The branch's commit is checked out with `git worktree add --detach` into a new
   temporary directory (one per run, so concurrent runs on one repository never meet).
4. `git apply --check`, then `git apply` (never `--unsafe-paths`); afterwards every path
   the patch touched must still resolve (realpath) inside the worktree.
5. When asked, the type checker runs on the changed Python files (the checkout mounted
   read-only, exactly as patched); if it reports errors, it runs on the same files of the
   base commit (a second worktree), and only new errors fail the attempt (see `typecheck`).
6. The test command runs without a shell under bubblewrap (see `isolation`: no network,
   read-only system, only the checkout, HOME and a private /tmp writable, Quench's data
   and home hidden, its own PID namespace), with an environment built from nothing, CPU,
   address space, file size, core and process limits, a wall-clock timeout that kills
   the whole process group (and the PID namespace with it), and its combined output
   streamed into a bounded buffer.
7. The temporary directory and git's records of its worktrees are removed, whatever happened.

Each command is started by a small launcher (see `process`) that sets the limits (and, as
root, switches to the sandbox's user), forks the command and reports on a pipe how it
ended: a failed exec, an exit code or a signal, never confused with the command's own code.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
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
from remediation.sandbox import typecheck
from remediation.sandbox.isolation import (
    INSTALL_HINT,
    bwrap_argv,
    hidden_location,
    isolation_status,
    sandbox_identity,
)
from remediation.sandbox.patches import patch_paths, patch_problems
from remediation.sandbox.process import (
    Execution,
    Limits,
    find_executable,
    last_lines,
    launch,
    signal_hint,
    signal_name,
)

logger = logging.getLogger("remediation.sandbox")

PASSED = "passed"
FAILED = "failed"
TIMED_OUT = "timed_out"
INVALID_PATCH = "invalid_patch"
ERROR = "error"

# Which check a failed run failed (SandboxResult.failed_check).
TESTS = "tests"
TYPE_CHECK = "type_check"

# The system directories the command's PATH holds (after the directory of Quench's own
# Python), whatever PATH Quench itself was started with.
SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
# The type check's part of the output is kept short: its new errors, or the end of a failure.
_TYPE_CHECK_SECTION_CHARS = 4000


@dataclass
class SandboxResult:
    """What a sandbox run ended in; the fields a FixAttempt stores.

    `exit_code` is the test command's exit status, minus the signal number when a signal
    ended it (Python's convention), None when it never ran or was killed for the timeout.
    `duration_ms` covers the whole run (checkout, apply, type check, tests, clean-up).
    `isolated` says whether the commands ran under bubblewrap. `failed_check` says which
    check a run that did not pass failed: "tests" or "type_check" ("" when neither ran).
    `type_check` is the type check's outcome (passed, failed, skipped, error; "" when none
    was asked for) and `type_check_message` says why.
    """

    status: str  # passed | failed | timed_out | invalid_patch | error
    message: str  # one line saying what happened
    exit_code: int | None = None
    output: str = ""
    output_truncated: bool = False
    duration_ms: int = 0
    base_commit: str = ""
    files_changed: list[str] = field(default_factory=list)
    isolated: bool = False
    failed_check: str = ""
    type_check: str = ""
    type_check_message: str = ""


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
    type_check_argv: list[str] | None = None,
    type_check_mode: str = typecheck.AUTO,
) -> SandboxResult:
    """Apply `diff` to `branch` of `repository` in a throw-away checkout and run `argv` there.

    With `type_check_argv` (e.g. ["python", "-m", "mypy"]) the changed Python files are
    type-checked too, the files appended to it: always in "on" mode, in "auto" mode when
    the repository has type hints, never in "off" mode; a new error fails the run. Limits
    default to the QUENCH_SANDBOX_* settings (the type check gets a timeout of its own).
    Never raises for a bad patch, a missing branch or a failing command: the result's
    status and message say what happened.
    """
    started = time.monotonic()
    limits = Limits(
        timeout=timeout or settings.QUENCH_SANDBOX_TIMEOUT_SECONDS,
        cpu_seconds=cpu_seconds or settings.QUENCH_SANDBOX_CPU_SECONDS,
        memory_mb=memory_mb or settings.QUENCH_SANDBOX_MEMORY_MB,
        output_limit=output_limit or settings.QUENCH_SANDBOX_OUTPUT_LIMIT,
        processes=settings.QUENCH_SANDBOX_MAX_PROCESSES,
    )
    checker = None if type_check_argv is None else _Checker(list(type_check_argv), type_check_mode)
    try:
        result = _run(repository, branch, diff, list(argv), limits, checker)
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
            "isolated": result.isolated,
            "failed_check": result.failed_check,
            "type_check": result.type_check,
        },
    )
    return result


@dataclass(frozen=True)
class _Checker:
    argv: list[str]
    mode: str


@dataclass
class _CheckOutcome:
    status: str
    message: str
    section: str = ""  # appended to the run's output under its own header


def _valid_argv(argv: object) -> bool:
    return isinstance(argv, list) and bool(argv) and all(isinstance(arg, str) and arg for arg in argv)


def _run(
    repository: str, branch: str, diff: str, argv: list[str], limits: Limits, checker: _Checker | None
) -> SandboxResult:
    files_changed = patch_paths(diff)
    if problems := patch_problems(diff):
        return SandboxResult(INVALID_PATCH, "Patch refused: " + " ".join(problems), files_changed=files_changed)
    if not _valid_argv(argv):
        return SandboxResult(ERROR, "No command to run (argv must be a non-empty list of strings).")
    if checker is not None and checker.mode not in (typecheck.AUTO, typecheck.ON, typecheck.OFF):
        return SandboxResult(ERROR, f'Unknown type check mode "{checker.mode}" (auto, on or off).')
    if checker is not None and checker.argv and not _valid_argv(checker.argv):
        return SandboxResult(ERROR, "The type checker's command must be a list of non-empty strings.")
    isolation = isolation_status()
    if not isolation.available and not settings.QUENCH_SANDBOX_ALLOW_UNISOLATED:
        return SandboxResult(
            ERROR,
            f"Refused to run the tests without isolation: {isolation.problem}. To run them, {INSTALL_HINT}.",
            files_changed=files_changed,
        )
    try:
        repo = local_repository(repository)
        base_commit = resolve_commit(repo, branch)
    except RepositoryError as exc:
        return SandboxResult(ERROR, str(exc), files_changed=files_changed)

    result = SandboxResult(
        ERROR, "", base_commit=base_commit, files_changed=files_changed, isolated=isolation.available
    )
    box = _Sandbox(repo, isolation.bwrap if isolation.available else None, limits)
    try:
        try:
            box.add_worktree(box.worktree, base_commit)
        except RepositoryError as exc:
            result.message = f"Could not check out {base_commit[:12]}: {exc}"
            return result

        patch_file = box.root / "fix.patch"  # outside the worktree: not part of what is tested
        patch_file.write_text(diff if diff.endswith("\n") else diff + "\n", encoding="utf-8")
        for check in (True, False):
            try:
                git(
                    ["apply", *(["--check"] if check else []), "--whitespace=nowarn", str(patch_file)], cwd=box.worktree
                )
            except RepositoryError as exc:
                result.status, result.output = INVALID_PATCH, exc.output or str(exc)
                result.message = f"The patch does not apply to {branch} at {base_commit[:12]}: {exc}"
                return result
        if escaped := _escaping_paths(box.worktree, files_changed):
            result.status = INVALID_PATCH
            outside = ", ".join(f'"{path}"' for path in escaped)
            result.message = f"Patch refused: once applied, these paths resolve outside the checkout: {outside}."
            return result

        # Decided on the checkout as patched, before anything of the service's has run in it.
        check_files, skip_reason = _type_check_plan(checker, box.worktree, files_changed)
        box.prepare()
        outcome = None
        if checker is not None:
            outcome = (
                _CheckOutcome(typecheck.SKIPPED, skip_reason)
                if skip_reason
                else _type_check(box, checker.argv, check_files, base_commit)
            )
        _run_tests(box, argv, result)
        if outcome is not None:
            _add_type_check(result, outcome, typecheck.checker_name(checker.argv) if checker.argv else "")
        if not result.isolated:
            result.message += " (Not isolated: bubblewrap is unavailable and QUENCH_SANDBOX_ALLOW_UNISOLATED is set.)"
        return result
    finally:
        box.remove()


def _type_check_plan(checker: _Checker | None, worktree: Path, files_changed: list[str]) -> tuple[list[str], str]:
    """The changed files to type-check, or why the check is skipped."""
    if checker is None:
        return [], ""
    if checker.mode == typecheck.OFF:
        return [], "the type check is turned off for this service"
    if not checker.argv:
        return [], "no type checker is configured for this service"
    files = typecheck.python_files(worktree, files_changed)
    if not files:
        return [], "the patch changes no Python files"
    if checker.mode == typecheck.AUTO and not typecheck.has_type_hints(worktree, files):
        return [], "the changed files have no type hints and the repository configures no type checker"
    return files, ""


def _run_tests(box: _Sandbox, argv: list[str], result: SandboxResult) -> None:
    """Run the test command in the patched checkout and record how it ended in `result`."""
    limits = box.limits
    run = box.execute(argv, cwd=box.worktree, env=sandbox_environment(box.root), timeout=limits.timeout)
    result.output, result.output_truncated = run.output, run.truncated
    result.failed_check = TESTS
    if run.problem:
        result.status, result.message = ERROR, run.problem
        return
    if run.timed_out:
        result.status = TIMED_OUT
        result.message = f"The command did not finish within {limits.timeout} s and was killed."
        return
    code = result.exit_code = run.exit_code
    if code == 0:
        result.status, result.failed_check = PASSED, ""
        result.message = f"The command exited with code 0 after {run.elapsed:.1f} s."
    elif code < 0:
        result.status = FAILED
        result.message = (
            f"The command was killed by {signal_name(-code)}{signal_hint(-code, limits)} after {run.elapsed:.1f} s."
        )
    else:
        result.status = FAILED
        hint = (
            f" (the output mentions MemoryError; the memory limit is {limits.memory_mb} MiB)"
            if run.saw_memory_error
            else ""
        )
        result.message = f"The command exited with code {code} after {run.elapsed:.1f} s{hint}."


def _type_check(box: _Sandbox, argv: list[str], files: list[str], base_commit: str) -> _CheckOutcome:
    """Type-check `files` as patched and, when that finds errors, as they were; new errors fail."""
    name = typecheck.checker_name(argv)
    deadline = time.monotonic() + box.limits.timeout
    env = {**sandbox_environment(box.root), "MYPY_CACHE_DIR": str(box.root / "tmp" / "mypy-cache")}
    header = f"== type check ({name}) ==\n$ {shlex.join([*argv, *files])}\n"

    def check(cwd: Path, paths: list[str]) -> tuple[list[typecheck.TypeIssue] | None, _CheckOutcome | None]:
        remaining = max(1, int(deadline - time.monotonic()))
        run = box.execute([*argv, *paths], cwd=cwd, env=env, timeout=remaining, writable_cwd=False)
        if run.problem:
            return None, _CheckOutcome(typecheck.ERROR, f"the type checker ({name}) could not run: {run.problem}")
        if run.timed_out:
            limit = box.limits.timeout
            return None, _CheckOutcome(typecheck.ERROR, f"the type checker ({name}) did not finish within {limit} s")
        if run.exit_code == 0:
            return [], None
        issues = typecheck.parse_errors(run.output, cwd)
        if not issues:
            tail = last_lines(run.output, 20)
            why = f"the type checker ({name}) failed with exit code {run.exit_code} and reported no type errors"
            return None, _CheckOutcome(typecheck.ERROR, why, header + f"{why[0].upper()}{why[1:]}:\n{tail}\n")
        wanted = set(paths)
        return [issue for issue in issues if issue.path in wanted], None

    patched, failure = check(box.worktree, files)
    if failure is not None:
        failure.section = failure.section or header + f"{failure.message[0].upper()}{failure.message[1:]}.\n"
        return failure
    if not patched:
        message = f"{name} found no type errors in the changed files"
        return _CheckOutcome(typecheck.PASSED, message, header + f"No type errors in {', '.join(files)}.\n")

    try:
        box.add_worktree(box.base, base_commit)
    except RepositoryError as exc:
        message = f"the base commit could not be checked out to compare type errors: {exc}"
        return _CheckOutcome(typecheck.ERROR, message, header + message + "\n")
    base_files = typecheck.python_files(box.base, files)
    base, failure = check(box.base, base_files) if base_files else ([], None)
    if failure is not None:
        failure.message = f"{failure.message} (on the base commit)"
        failure.section = failure.section or header + f"{failure.message[0].upper()}{failure.message[1:]}.\n"
        return failure
    added = typecheck.new_errors(patched, base)
    before = len(patched) - len(added)
    already = f" ({before} already there before the patch)" if before else ""
    if not added:
        message = f"{name} found no new type errors in the changed files{already}"
        return _CheckOutcome(typecheck.PASSED, message, header + message[0].upper() + message[1:] + ".\n")
    count = f"{len(added)} new type error{'s' if len(added) != 1 else ''}"
    message = f"{name} found {count} in the changed files{already}"
    listing = _clip_lines([issue.text for issue in added], _TYPE_CHECK_SECTION_CHARS)
    return _CheckOutcome(typecheck.FAILED, message, header + f"{count[0].upper()}{count[1:]}{already}:\n{listing}\n")


def _add_type_check(result: SandboxResult, outcome: _CheckOutcome, name: str) -> None:
    """Fold the type check's outcome into the run's: its section of output, and a failure if tests passed."""
    result.type_check, result.type_check_message = outcome.status, outcome.message
    if outcome.section:
        result.output = (result.output.rstrip("\n") + "\n\n" if result.output else "") + outcome.section
    if outcome.status == typecheck.SKIPPED:
        return
    if result.status == PASSED and outcome.status in (typecheck.FAILED, typecheck.ERROR):
        result.status = FAILED if outcome.status == typecheck.FAILED else ERROR
        result.failed_check = TYPE_CHECK
        result.message = f"The tests passed, but {outcome.message}. {result.message}"
    else:
        result.message += f" Type check ({name}): {outcome.status}."


class _Sandbox:
    """One run's temporary directory: the patched checkout (`repo`), perhaps the base one
    (`base`), HOME, TMPDIR, the `python` shims (`bin`), and how commands run in it."""

    def __init__(self, repo: Path, bwrap: str | None, limits: Limits) -> None:
        self.repo = repo
        self.bwrap = bwrap
        self.limits = limits
        # As root under bubblewrap the command runs as the sandbox's user (None: as Quench's).
        self.identity = sandbox_identity() if bwrap else None
        self.root = Path(tempfile.mkdtemp(prefix="quench-sandbox-"))
        self.worktree = self.root / "repo"
        self.base = self.root / "base"

    def add_worktree(self, path: Path, commit: str) -> None:
        # No hooks: a post-checkout hook of the repository has no business in a sandbox.
        checkout = ["worktree", "add", "--detach", "--quiet", str(path), commit]
        with worktree_lock(self.repo):
            git(["-c", "core.hooksPath=/dev/null", *checkout], cwd=self.repo)
        if path != self.worktree and self.identity:
            _hand_over(path, *self.identity)  # readable by the sandbox's user (mounted read-only)

    def prepare(self) -> None:
        """HOME, TMPDIR and shims; as root, the checkout and those handed to the sandbox's user."""
        _prepare_sandbox_home(self.root)
        if self.identity:
            # Traversable, not listable, not writable: the command reaches only what is bound for it.
            os.chmod(self.root, 0o711)  # noqa: S103
            for path in (self.worktree, self.root / "home", self.root / "tmp"):
                _hand_over(path, *self.identity)

    def execute(
        self, argv: list[str], *, cwd: Path, env: dict[str, str], timeout: int, writable_cwd: bool = True
    ) -> Execution:
        """Run `argv` in `cwd` with the limits, isolated when bubblewrap is available."""
        executable = find_executable(argv[0], cwd, env["PATH"])
        if executable is None:
            where = "in the checkout" if "/" in argv[0] else f"on the sandbox PATH ({env['PATH']})"
            return Execution(f'Cannot run the command: "{argv[0]}" was not found {where}, or is not executable.')
        if not sys.executable:
            return Execution("Cannot start the sandbox: the running Python's path (sys.executable) is unknown.")
        prefix: list[str] = []
        if self.bwrap:
            inside = os.path.realpath(executable).startswith(os.path.realpath(self.root) + os.sep)
            if not inside and (hidden := hidden_location(executable)):
                return Execution(
                    f'Cannot run the command: "{executable}" is hidden in the sandbox (under {hidden}); '
                    "add its directory to QUENCH_SANDBOX_READ_ONLY_PATHS."
                )
            home, tmp, shims = self.root / "home", self.root / "tmp", self.root / "bin"
            prefix = bwrap_argv(
                self.bwrap,
                cwd=cwd,
                writable=[home, tmp, *([cwd] if writable_cwd else [])],
                read_only=[shims, *([] if writable_cwd else [cwd])],
                identity=self.identity,
            )
        uid = self.identity[0] if self.identity else -1
        processes = self.limits.processes if self.bwrap else 0  # see QUENCH_SANDBOX_MAX_PROCESSES
        return launch(
            prefix,
            executable,
            argv,
            cwd=cwd,
            env=env,
            limits=self.limits,
            timeout=timeout,
            uid=uid,
            processes=processes,
        )

    def remove(self) -> None:
        _remove_sandbox(self.repo, self.root)


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
    for name in ("home", "tmp"):
        os.mkdir(sandbox / name, 0o700)
    os.mkdir(sandbox / "bin", 0o755)  # read-only for the command, which may be another user
    python_dir = os.path.dirname(sys.executable)
    for name in ("python", "python3"):
        if not os.access(os.path.join(python_dir, name), os.X_OK):
            shim = sandbox / "bin" / name
            # A script, not a symlink: through a symlink Python would not find its virtual environment.
            shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
            shim.chmod(0o755)


def _hand_over(path: Path, uid: int, gid: int) -> None:
    """Make `path` and everything under it the sandbox user's (links themselves, never followed)."""
    os.lchown(path, uid, gid)
    for directory, subdirectories, files in os.walk(path):
        for name in (*subdirectories, *files):
            os.lchown(os.path.join(directory, name), uid, gid)


def _clip_lines(lines: list[str], limit: int) -> str:
    """`lines` joined, cut at a line boundary before `limit` characters, saying how many were left out."""
    kept, size = [], 0
    for line in lines:
        if size + len(line) + 1 > limit and kept:
            kept.append(f"[... {len(lines) - len(kept)} more ...]")
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept)


def _remove_sandbox(repo: Path, sandbox: Path) -> None:
    """Remove the temporary directory, then git's records of its worktrees; never raises.

    The directory goes first (rmtree never follows links) and `git worktree prune` then
    drops the records whose directory is gone; other runs' worktrees stay (adds hold the
    same lock). No `git worktree remove`: git would refuse a checkout the sandbox's user owns.
    """
    if sys.version_info >= (3, 12):
        shutil.rmtree(sandbox, onexc=_make_writable_and_retry)
    else:
        shutil.rmtree(sandbox, onerror=_make_writable_and_retry)
    try:
        with worktree_lock(repo):
            git(["worktree", "prune"], cwd=repo)
    except RepositoryError as exc:  # the prune failed, or the lock timed out
        logger.warning("Could not prune sandbox worktrees of %s: %s", display_url(str(repo)), exc)


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

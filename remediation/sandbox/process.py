"""One command in the sandbox: limits, a wall-clock timeout, bounded output, how it ended.

`launch` starts the command through a small launcher (optionally behind a bubblewrap
prefix), streams its combined output into a bounded buffer, kills its whole process group
at the end (or at the timeout), and reads the launcher's report of how it ended.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# Largest file the command may write (RLIMIT_FSIZE): generous for test artefacts, small
# enough that a runaway writer cannot fill the disk.
FILE_SIZE_LIMIT_BYTES = 1024 * 1024 * 1024
# After the command exits, how long output still in the pipe (and the launcher's report) is read.
_DRAIN_SECONDS = 2.0
_READ_CHUNK = 64 * 1024

# The launcher: runs in the sandbox before the command, as a wrapper instead of
# `preexec_fn` (not safe in a process with threads: web servers, queue workers). It sets
# the limits, switches user when told to, forks the command and waits for it, and writes
# one line per event on the `report` pipe: "started", "setup-error …", "exec-error …",
# "exit N", "signal N". The command itself never inherits the pipe.
_LAUNCHER = """\
import os, resource, sys
report = int(sys.argv[1])
cpu, memory, fsize, processes, uid = (int(value) for value in sys.argv[2:7])
def say(line):
    os.write(report, (" ".join(line.split()) + "\\n").encode(errors="replace"))
def lower(limit, soft, hard):
    _, current = resource.getrlimit(limit)
    if current != resource.RLIM_INFINITY:
        soft, hard = min(soft, current), min(hard, current)
    resource.setrlimit(limit, (soft, hard))
try:
    say("started")
    lower(resource.RLIMIT_CORE, 0, 0)
    lower(resource.RLIMIT_CPU, cpu, cpu + 1)
    lower(resource.RLIMIT_AS, memory, memory)
    lower(resource.RLIMIT_FSIZE, fsize, fsize)
    if processes:
        lower(resource.RLIMIT_NPROC, processes, processes)
    if uid >= 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    pid = os.fork()
except BaseException as exc:
    say(f"setup-error {type(exc).__name__}: {exc}")
    os._exit(127)
if pid == 0:
    try:
        os.set_inheritable(report, False)
        os.environ.pop("PWD", None)  # set by bubblewrap; the environment is exactly the runner's
        os.execv(sys.argv[7], sys.argv[8:])
    except BaseException as exc:
        say(f"exec-error {type(exc).__name__}: {exc}")
    os._exit(127)
_, status = os.waitpid(pid, 0)
if os.WIFSIGNALED(status):
    say(f"signal {os.WTERMSIG(status)}")
    os._exit(128 + os.WTERMSIG(status))
say(f"exit {os.waitstatus_to_exitcode(status)}")
os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""


@dataclass(frozen=True)
class Limits:
    """A run's limits (the QUENCH_SANDBOX_* settings): seconds of wall clock and of CPU, MiB of
    address space, characters of output kept, and processes (applied to isolated runs only)."""

    timeout: int
    cpu_seconds: int
    memory_mb: int
    output_limit: int
    processes: int

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"The sandbox's {name} must be a positive whole number, not {value!r}.")


@dataclass
class Execution:
    """How one command in the sandbox ended. `problem` is set when it could not run at all."""

    problem: str = ""
    exit_code: int | None = None
    timed_out: bool = False
    output: str = ""
    truncated: bool = False
    elapsed: float = 0.0
    saw_memory_error: bool = False


def launch(
    prefix: list[str],
    executable: str,
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    limits: Limits,
    timeout: int,
    uid: int,
    processes: int,
) -> Execution:
    """Run `executable` (as `argv`) in `cwd` behind `prefix` (bubblewrap's arguments, or none).

    `uid` >= 0 makes the launcher switch to that user; `processes` > 0 sets RLIMIT_NPROC.
    Never raises for the command's sake: `Execution.problem` says why it could not run.
    """
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
        str(processes),
        str(uid),
        executable,
        *argv,
    ]
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            [*prefix, *launcher],
            cwd=cwd,
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
        return Execution(f"Cannot start the sandbox: {exc}")
    os.close(report_write)
    output = BoundedOutput(limits.output_limit)
    try:
        timed_out = _stream_until_exit(process, output, deadline=started + timeout)
    finally:
        # Whatever the command left running in its group (servers, background jobs) ends
        # with it. The group leader is not reaped yet, so its id cannot have been reused.
        # Under bubblewrap, that kills the PID namespace's init, and with it every process
        # in the namespace, including those that left the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if not process.stdout.closed:
            _drain(process, output)
            process.stdout.close()
        report = _read_report(report_read)
        os.close(report_read)

    run = Execution(elapsed=time.monotonic() - started)
    run.output, run.truncated = output.text()
    run.saw_memory_error = output.saw_memory_error
    events = dict(line.split(" ", 1) if " " in line else (line, "") for line in report.splitlines())
    if "setup-error" in events:
        run.problem = f"Cannot start the command: {events['setup-error']}"
    elif "exec-error" in events:
        run.problem = f'Cannot run the command "{argv[0]}": {events["exec-error"]}'
    elif timed_out:
        run.timed_out = True
    elif "started" not in events:
        said = last_lines(run.output, 3) or f"exit code {process.returncode}"
        run.problem = f"The sandbox did not start: {said}"
    elif "signal" in events:
        run.exit_code = -int(events["signal"])
    elif "exit" in events:
        run.exit_code = int(events["exit"])
    else:  # the launcher itself was killed (out of memory, say)
        run.exit_code = process.returncode
    return run


def _read_report(fd: int) -> str:
    """The launcher's lines: all of them once every holder of the pipe is gone, or what came in time."""
    report = b""
    deadline = time.monotonic() + _DRAIN_SECONDS
    while (remaining := deadline - time.monotonic()) > 0:
        if not _readable(fd, remaining):
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        report += chunk
    return report.decode(errors="replace")


def find_executable(program: str, worktree: Path, path: str) -> str | None:
    """Where `program` is: relative to the checkout when it has a slash, else looked up on PATH."""
    if "/" in program:
        candidate = program if os.path.isabs(program) else os.path.join(worktree, program)
        return candidate if os.path.isfile(candidate) and os.access(candidate, os.X_OK) else None
    return shutil.which(program, path=path)


def _readable(fd: int, timeout: float) -> bool:
    # A selector (epoll), not select.select: a long-lived worker's descriptors may pass 1024.
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        return bool(selector.select(timeout))


def _stream_until_exit(process: subprocess.Popen, output: BoundedOutput, *, deadline: float) -> bool:
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


def _drain(process: subprocess.Popen, output: BoundedOutput) -> None:
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


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def signal_hint(number: int, limits: Limits) -> str:
    if number == signal.SIGXCPU:
        return f" (the CPU time limit of {limits.cpu_seconds} s)"
    if number == signal.SIGKILL:
        return f" (past the CPU time limit of {limits.cpu_seconds} s, or out of memory)"
    if number == signal.SIGXFSZ:
        return f" (the file size limit of {FILE_SIZE_LIMIT_BYTES // (1024 * 1024)} MiB)"
    if number in (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS):
        return f" (possibly the memory limit of {limits.memory_mb} MiB)"
    return ""


def last_lines(text: str, count: int) -> str:
    return "\n".join(line for line in text.strip().splitlines()[-count:])


class BoundedOutput:
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

"""Helpers of the sandbox tests: tiny real git repositories, and finding processes from outside."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    completed = subprocess.run(
        ["git", "-c", "user.name=Quench Test", "-c", "user.email=test@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return completed.stdout


def make_repository(path: Path, files: dict[str, str]) -> Path:
    """A git repository at `path` with `files` committed on branch main."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for name, content in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(content)
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "Initial commit")
    return path


def commit_file(repo: Path, path: str, content: str, message: str) -> str:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(content)
    git(repo, "add", path)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def alive(pid: int) -> bool:
    """Whether `pid` is a running (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def processes_with(token: str) -> list[int]:
    """The running (not zombie) processes whose command line holds `token`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if token in (entry / "cmdline").read_bytes().decode(errors="replace") and alive(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found

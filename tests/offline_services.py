"""Tiny buggy services (tests/fixtures/offline) as real git repositories that really crash.

`make_repo` copies a fixture into a temporary git repository; `crash` runs its `run.py` with the
current interpreter and returns the real traceback; `context` builds the `DiagnosisContext` from
it the way the diagnosis service does (frames with repository paths, the culprit files).
"""

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

from incidents.sources.traceback import parse_python_traceback
from remediation.llm.base import DiagnosisContext, SourceFile

FIXTURES = Path(__file__).parent / "fixtures" / "offline"
TEST_COMMAND = "python -m pytest -q"


def env() -> dict:
    env = {key: value for key, value in os.environ.items() if key not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=check, env=env())


def make_repo(tmp_path: Path, fixture: str, extra: dict[str, str] | None = None) -> Path:
    repo = tmp_path / fixture
    shutil.copytree(FIXTURES / fixture, repo)
    for path, content in (extra or {}).items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(content)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=Quench Test", "-c", "user.email=test@example.com", "commit", "-q", "-m", "initial")
    return repo


def run(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "run.py", *args], cwd=repo, capture_output=True, text=True, timeout=60, env=env()
    )


def run_tests(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:django", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        env=env(),
    )


def context(repo: Path, traceback_text: str, **fields) -> DiagnosisContext:
    """What the diagnosis service hands a provider: frames with repository paths and the culprit files."""
    exception_type, exception_value, frames = parse_python_traceback(traceback_text)
    root = str(repo.resolve()) + "/"
    rows, files = [], {}
    for frame in frames:
        row = dataclasses.asdict(frame)
        filename = str(Path(frame.filename).resolve()) if frame.filename.startswith("/") else frame.filename
        if filename.startswith(root):
            row["path"] = filename[len(root) :]
            source = files.setdefault(row["path"], SourceFile(row["path"], (repo / row["path"]).read_text()))
            source.lines_of_interest.append(frame.lineno)
        rows.append(row)
    return DiagnosisContext(
        incident_id=42,
        title=f"{exception_type}: {exception_value}",
        service="shop",
        environment="production",
        severity="error",
        kind="error",
        exception_type=exception_type,
        exception_value=exception_value,
        traceback=traceback_text,
        frames=rows,
        event_count=fields.pop("event_count", 3),
        source_files=list(files.values()),
        test_command=TEST_COMMAND,
        has_repository=True,
        **fields,
    )


def crash(repo: Path, *args: str) -> str:
    result = run(repo, *args)
    assert result.returncode != 0, result.stdout
    assert "Traceback (most recent call last)" in result.stderr
    return result.stderr


def apply(repo: Path, diff: str) -> None:
    (repo.parent / "fix.patch").write_text(diff)
    check = git(repo, "apply", "--check", str(repo.parent / "fix.patch"), check=False)
    assert check.returncode == 0, check.stderr
    git(repo, "apply", str(repo.parent / "fix.patch"))

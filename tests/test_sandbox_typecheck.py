"""The sandbox's type check: a fix may not add type errors to the files it changes.

Real mypy (pinned in requirements/base.txt) on tiny real repositories, run by the real
sandbox; plus the pure parts (which errors are new, what counts as type hints).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

from remediation.diffs import FileChange, unified_diff
from remediation.models import DEFAULT_TYPE_CHECK_COMMAND
from remediation.sandbox import run_patch
from remediation.sandbox.typecheck import new_errors, parse_errors, source_has_annotations
from tests.sandbox_repos import git, make_repository

PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
MYPY = DEFAULT_TYPE_CHECK_COMMAND.split()

TYPED_CALC = "def add(a: int, b: int) -> int:\n    return a - b\n"
TYPED_FIXED = "def add(a: int, b: int) -> int:\n    return a + b\n"
# Already in the repository before any patch: not the patch's fault.
OLD_ERROR = "\n\ndef label(value: int) -> str:\n    return value\n"
TEST_CALC = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


@pytest.fixture(autouse=True)
def sandbox_parent(tmp_path, monkeypatch) -> Path:
    parent = tmp_path / "sandboxes"
    parent.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(parent))
    return parent


def run(repo: Path, diff: str, **options):
    return run_patch(repository=str(repo), branch="main", diff=diff, argv=PYTEST, type_check_argv=MYPY, **options)


def assert_clean(repo: Path, sandbox_parent: Path) -> None:
    assert list(sandbox_parent.iterdir()) == []
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_a_patch_that_adds_a_type_error_fails_although_the_tests_pass(tmp_path, sandbox_parent):
    repo = make_repository(tmp_path / "typed", {"calc.py": TYPED_CALC, "test_calc.py": TEST_CALC})
    # Fixes the bug, and adds a function whose annotation is wrong.
    patched = TYPED_FIXED + "\n\ndef describe(total: int) -> str:\n    return total * 2\n"
    diff = unified_diff([FileChange("calc.py", TYPED_CALC, patched)])

    result = run(repo, diff)

    assert "1 passed" in result.output  # the tests did pass
    assert result.status == "failed", result.output
    assert result.failed_check == "type_check"
    assert result.type_check == "failed"
    assert result.exit_code == 0
    assert "The tests passed, but mypy found 1 new type error in the changed files" in result.message
    section = result.output.split("== type check (mypy) ==\n", 1)[1]
    assert section.startswith("$ python -m mypy ")
    assert section.splitlines()[0].endswith(" calc.py")
    assert "1 new type error:" in section
    assert 'calc.py:6: error: Incompatible return value type (got "int", expected "str")' in section
    assert result.isolated is True
    assert_clean(repo, sandbox_parent)


def test_errors_the_repository_already_had_do_not_fail_a_good_patch(tmp_path, sandbox_parent):
    repo = make_repository(tmp_path / "typed", {"calc.py": TYPED_CALC + OLD_ERROR, "test_calc.py": TEST_CALC})
    # The fix adds lines above the old error, so its line number moves: it is still the same error.
    patched = '"""Arithmetic."""\n\n\n' + TYPED_FIXED + OLD_ERROR
    diff = unified_diff([FileChange("calc.py", TYPED_CALC + OLD_ERROR, patched)])

    result = run(repo, diff)

    assert result.status == "passed", result.output
    assert result.failed_check == ""
    assert result.type_check == "passed"
    assert "no new type errors in the changed files (1 already there before the patch)" in result.type_check_message
    assert "Type check (mypy): passed." in result.message
    assert "== type check (mypy) ==" in result.output
    assert_clean(repo, sandbox_parent)


def test_a_repository_without_type_hints_skips_the_check(tmp_path, sandbox_parent):
    calc = "def add(a, b):\n    return a - b\n"
    repo = make_repository(tmp_path / "untyped", {"calc.py": calc, "test_calc.py": TEST_CALC})
    # Would be a type error (str + int) if anything were annotated; mypy does not look in unannotated code.
    diff = unified_diff([FileChange("calc.py", calc, "def add(a, b):\n    return a + b\n")])

    result = run(repo, diff)

    assert result.status == "passed", result.output
    assert result.type_check == "skipped"
    assert "no type hints" in result.type_check_message
    assert "== type check" not in result.output

    # "off" never checks, even typed code; "on" always does.
    typed = make_repository(tmp_path / "typed", {"calc.py": TYPED_CALC, "test_calc.py": TEST_CALC})
    fix = unified_diff([FileChange("calc.py", TYPED_CALC, TYPED_FIXED)])
    result = run(typed, fix, type_check_mode="off")
    assert result.type_check == "skipped"
    assert "turned off" in result.type_check_message
    result = run(repo, diff, type_check_mode="on")
    assert result.type_check == "passed", result.output
    assert_clean(repo, sandbox_parent)


def test_a_configured_type_checker_counts_as_type_hints(tmp_path, sandbox_parent):
    calc = "def add(a, b):\n    return a - b\n"
    files = {"calc.py": calc, "test_calc.py": TEST_CALC, "pyproject.toml": "[tool.mypy]\nstrict = false\n"}
    repo = make_repository(tmp_path / "configured", files)
    diff = unified_diff([FileChange("calc.py", calc, "def add(a, b):\n    return a + b\n")])

    result = run(repo, diff)

    assert result.status == "passed", result.output
    assert result.type_check == "passed"


def test_a_type_checker_that_cannot_run_is_an_error_not_a_pass(tmp_path, sandbox_parent):
    repo = make_repository(tmp_path / "typed", {"calc.py": TYPED_CALC, "test_calc.py": TEST_CALC})
    diff = unified_diff([FileChange("calc.py", TYPED_CALC, TYPED_FIXED)])

    result = run_patch(
        repository=str(repo),
        branch="main",
        diff=diff,
        argv=PYTEST,
        type_check_argv=["python", "-m", "no_such_type_checker"],
    )

    assert result.status == "error"
    assert result.failed_check == "type_check"
    assert result.type_check == "error"
    assert "The tests passed, but the type checker (no_such_type_checker) failed" in result.message
    assert "No module named no_such_type_checker" in result.output
    assert_clean(repo, sandbox_parent)


def test_failing_tests_are_reported_as_the_failed_check(tmp_path, sandbox_parent):
    repo = make_repository(tmp_path / "typed", {"calc.py": TYPED_CALC, "test_calc.py": TEST_CALC})
    diff = unified_diff([FileChange("calc.py", TYPED_CALC, "def add(a: int, b: int) -> int:\n    return a * b\n")])

    result = run(repo, diff)

    assert result.status == "failed"
    assert result.failed_check == "tests"
    assert result.type_check == "passed"
    assert "Type check (mypy): passed." in result.message


# --- the pure parts ----------------------------------------------------------------------------


def test_only_new_errors_count_whatever_their_line_numbers(tmp_path):
    base = parse_errors(
        'calc.py:4: error: Incompatible return value type (got "int", expected "str")  [return-value]\n'
        'calc.py:9: error: Name "x" already defined on line 2  [no-redef]\n'
        "Found 2 errors in 1 file (checked 1 source file)\n",
        tmp_path,
    )
    patched = parse_errors(
        'calc.py:7: error: Incompatible return value type (got "int", expected "str")  [return-value]\n'
        'calc.py:12: error: Name "x" already defined on line 5  [no-redef]\n'
        'calc.py:20: error: Incompatible return value type (got "int", expected "str")  [return-value]\n'
        f'  {tmp_path}/pkg/mod.py:3:5 - error: "y" is not defined (reportUndefinedVariable)\n',
        tmp_path,
    )

    added = new_errors(patched, base)

    assert [(error.path, error.line) for error in added] == [("calc.py", 20), ("pkg/mod.py", 3)]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f(a, b):\n    return a\n", False),
        ("x = 1\nclass A:\n    def m(self):\n        pass\n", False),
        ("def f(a: int):\n    return a\n", True),
        ("def f(a) -> int:\n    return a\n", True),
        ("async def f(*, key: str):\n    pass\n", True),
        ("def f(*args: int):\n    pass\n", True),
        ("count: int = 0\n", True),
        ("def f(:\n", True),  # does not parse: the checker will say what is wrong
    ],
)
def test_what_counts_as_type_hints(source, expected):
    assert source_has_annotations(source) is expected

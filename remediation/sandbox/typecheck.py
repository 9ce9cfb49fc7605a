"""The type check of a fix: whether to run it, and which of the checker's errors the patch added.

A fix must not add type errors to the files it changes (DESIGN: "its type checker finds
nothing new in the changed files"). The checker (a Service setting: mypy by default, or
pyright) runs on the changed Python files of the patched checkout; when it reports
errors, it runs again on the same files of the base commit, and only the errors the base
did not have fail the attempt. Errors are compared without their line numbers (a patch
moves lines), as a multiset of (file, message).

In "auto" mode the check runs when the repository has type hints: a type checker
configured at its root, or annotations in the changed files. Everything here is plain
Python on text and files; running the checker is the runner's business.
"""

from __future__ import annotations

import ast
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

AUTO, ON, OFF = "auto", "on", "off"

# Outcomes of a type check.
PASSED = "passed"
FAILED = "failed"
SKIPPED = "skipped"
ERROR = "error"

# mypy: "pkg/mod.py:12: error: ..." (also with ":col" and ":endline:endcol").
_MYPY_ERROR = re.compile(r"^(?P<path>[^\s:][^:]*):(?P<line>\d+)(?::\d+){0,3}: error: (?P<message>.*)$")
# pyright: "  /abs/pkg/mod.py:12:5 - error: ..."
_PYRIGHT_ERROR = re.compile(r"^\s*(?P<path>\S.*?):(?P<line>\d+):(?P<column>\d+) - error: (?P<message>.*)$")
_LINE_REFERENCE = re.compile(r"\bline \d+\b")
_CONFIG_MARKERS = {
    "mypy.ini": None,
    ".mypy.ini": None,
    "pyrightconfig.json": None,
    "pyproject.toml": ("[tool.mypy", "[tool.pyright"),
    "setup.cfg": ("[mypy",),
}
# A changed file larger than this is not parsed for annotations (it is still type-checked in "on" mode).
_MAX_PARSE_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class TypeIssue:
    """One error the checker reported: where (repository-relative path, line) and what."""

    path: str
    line: int
    message: str
    text: str  # the checker's line, as printed

    @property
    def key(self) -> tuple[str, str]:
        """What makes two errors "the same" before and after a patch: file and message, not line."""
        return self.path, _LINE_REFERENCE.sub("line N", self.message.strip())


def checker_name(argv: list[str]) -> str:
    """What to call the checker in the output: "mypy" for `python -m mypy ...`, else the program's name."""
    if "-m" in argv[:-1]:
        return argv[argv.index("-m") + 1]
    return os.path.basename(argv[0]) if argv else "type checker"


def python_files(worktree: Path, paths: list[str]) -> list[str]:
    """The changed paths that are Python sources present in the checkout (regular files, not links)."""
    found = []
    for path in paths:
        if not path.endswith((".py", ".pyi")):
            continue
        full = worktree / path
        if full.is_file() and not full.is_symlink():
            found.append(path)
    return list(dict.fromkeys(found))


def has_type_hints(worktree: Path, files: list[str]) -> bool:
    """Whether the repository configures a type checker at its root, or one of `files` has annotations."""
    for name, markers in _CONFIG_MARKERS.items():
        config = worktree / name
        if not config.is_file() or config.is_symlink():
            continue
        if markers is None:
            return True
        text = config.read_text(encoding="utf-8", errors="replace")
        if any(marker in text for marker in markers):
            return True
    for path in files:
        full = worktree / path
        if full.stat().st_size > _MAX_PARSE_BYTES:
            continue
        if source_has_annotations(full.read_text(encoding="utf-8", errors="replace")):
            return True
    return False


def source_has_annotations(source: str) -> bool:
    """Whether Python `source` annotates a parameter, a return value or a variable.

    A file that does not parse counts as annotated: the checker will say what is wrong with it.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return True
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args
            every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg]
            if node.returns is not None or any(arg is not None and arg.annotation is not None for arg in every):
                return True
    return False


def parse_errors(output: str, cwd: Path) -> list[TypeIssue]:
    """The errors in a checker's output (mypy's or pyright's format), with paths relative to `cwd`."""
    root = os.path.realpath(cwd)
    errors = []
    for line in output.splitlines():
        match = _MYPY_ERROR.match(line) or _PYRIGHT_ERROR.match(line)
        if match is None:
            continue
        path = match["path"].strip()
        if os.path.isabs(path):
            real = os.path.realpath(path)
            path = os.path.relpath(real, root) if real.startswith(root + os.sep) else path
        path = os.path.normpath(path)
        errors.append(TypeIssue(path=path, line=int(match["line"]), message=match["message"], text=line.strip()))
    return errors


def new_errors(patched: list[TypeIssue], base: list[TypeIssue]) -> list[TypeIssue]:
    """The errors of the patched files that the base did not have (each counted as often as it occurs)."""
    remaining = Counter(error.key for error in base)
    added = []
    for error in patched:
        if remaining[error.key] > 0:
            remaining[error.key] -= 1
        else:
            added.append(error)
    return added

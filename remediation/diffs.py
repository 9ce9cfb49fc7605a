"""Unified diffs: made from file edits, and read back to see which files a patch touches.

Providers describe a change as new file contents; this module turns that into the
`git apply`-able unified diff that is stored, shown and tested.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

_HEADER = re.compile(r"^(?:---|\+\+\+) (?:[ab]/)?(?P<path>\S+)")


@dataclass(frozen=True)
class FileChange:
    """One file's content before and after (`old` is None for a new file)."""

    path: str  # repository-relative, POSIX separators
    old: str | None
    new: str


def unified_diff(changes: list[FileChange]) -> str:
    """One git-style unified diff for all `changes` (files without a real change are left out)."""
    parts: list[str] = []
    for change in changes:
        if change.old == change.new:
            continue
        body = difflib.unified_diff(
            (change.old or "").splitlines(keepends=True),
            change.new.splitlines(keepends=True),
            fromfile="/dev/null" if change.old is None else f"a/{change.path}",
            tofile=f"b/{change.path}",
            n=3,
        )
        header = f"diff --git a/{change.path} b/{change.path}\n"
        if change.old is None:
            header += "new file mode 100644\n"
        parts.append(header + "".join(_marked(line) for line in body))
    return "".join(parts)


def _marked(line: str) -> str:
    """A file's last line without a newline gets git's marker, or the diff would not apply.

    difflib compares the raw lines, so "x" and "x\n" differ as they should, and yields
    that last line unterminated.
    """
    return line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"


def changed_paths(diff: str) -> list[str]:
    """The repository paths a unified diff names in its ---/+++ headers, in order, without /dev/null."""
    paths: list[str] = []
    for line in diff.splitlines():
        match = _HEADER.match(line)
        if match and match.group("path") != "/dev/null" and match.group("path") not in paths:
            paths.append(match.group("path"))
    return paths

"""The sandbox's rules for a patch: which paths and kinds of change it may not make.

`patch_problems` refuses a patch before anything is created: paths that are absolute,
leave the repository (`..`), touch `.git/`, symlinks and submodules, binary patches, an
empty patch. Static checks only; `git apply` (never `--unsafe-paths`) and the realpath
check after it (`remediation.sandbox.runner`) are the second and third lines of defence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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

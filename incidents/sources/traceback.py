"""Python traceback text → exception type, message and frames; and back.

`parse_python_traceback` reads what `traceback.print_exc()` writes, as it arrives in
logs and JSON events: chained exceptions (the exception that was finally raised is
the one reported), 3.11+ caret lines, `[Previous line repeated ...]`, SyntaxError
tails, multi-line messages, frames without source lines or line numbers, and exception
groups (roughly: the group itself and its own frames; sub-exceptions are skipped).
It never raises: text it cannot read gives ("", "", []).

Frames keep Python's order, outermost first. A frame's module is derived from its
filename: the import path after site-packages/dist-packages/lib/pythonX.Y, or for
application files the path after a well-known root (src, app, code, ...). `in_app` is
False for installed packages, the standard library and pseudo-files (<frozen ...>,
<string>, <stdin>).
"""

from __future__ import annotations

import re

from incidents.sources.base import Frame

MAX_TEXT = 2_000_000  # beyond this the tail is kept: the final exception is at the end

_HEADER = re.compile(r"^\s*(?:Exception Group )?Traceback \(most recent call last\):\s*$")
_STACK_HEADER = re.compile(r"^\s*Stack \(most recent call last\):\s*$")  # logging's stack_info
# The lines Python prints between the tracebacks of a chain (`raise ... from`, and implicit).
CAUSE_LINE = "The above exception was the direct cause of the following exception:"
CONTEXT_LINE = "During handling of the above exception, another exception occurred:"
_CHAIN = re.compile(rf"^\s*(?:{re.escape(CONTEXT_LINE)}|{re.escape(CAUSE_LINE)})\s*$")
_FILE = re.compile(r'^\s*File "(?P<file>[^"\n]*)"(?:, line (?P<lineno>\d+|None|\?))?(?:, in (?P<func>.*))?\s*$')
_CARETS = re.compile(r"^\s*[\^~]+\s*$")
_REPEATED = re.compile(r"^\s*\[Previous line repeated \d+ more times?\]\s*$")
_EXCEPTION = re.compile(r"^(?P<type>[A-Za-z_][\w.<>]*)(?::(?: (?P<value>.*)|\s*$)|\s*$)")
# Exception-group drawing: "  | text", "  + Exception Group ...", "  +-+---- 1 ----".
_GROUP_CONTENT = re.compile(r"^(?P<indent> *)\| ?(?P<rest>.*)$")
_GROUP_HEADER = re.compile(r"^(?P<indent> *)\+ (?P<rest>Exception Group Traceback.*)$")
_GROUP_RULE = re.compile(r"^ *\+[-+]*+(?: *(?:\d+|\.\.\.) *-*+)?\s*$")  # possessive: no backtracking

_SITE_PACKAGES = re.compile(r"/(?:site|dist)-packages/(?P<module>.+)$")
_STDLIB = re.compile(r"/lib/(?:python\d+(?:\.\d+)*|pypy\d*(?:\.\d+)*)/(?P<module>.+)$", re.IGNORECASE)
_FROZEN = re.compile(r"^<frozen (?P<module>[\w.]+)>$")
# Directories that hold an application's code; the module path starts after the last one.
_APP_ROOTS = frozenset({"src", "app", "code", "srv", "workspace", "current", "site", "project", "www", "opt", "home"})
_RELEASE_DIR = re.compile(r"^(?:\d{6,}|[0-9a-f]{12,40})$")  # Capistrano-style release folders


def parse_python_traceback(text: object) -> tuple[str, str, list[Frame]]:
    """(exception_type, exception_value, frames) of the last exception in a traceback text."""
    try:
        return _parse(text)
    except Exception:  # noqa: BLE001 — garbage in must never break ingestion
        return "", "", []


def _parse(text: object) -> tuple[str, str, list[Frame]]:
    if not isinstance(text, str) or "File " not in text and "Traceback" not in text:
        return "", "", []
    if len(text) > MAX_TEXT:
        text = text[-MAX_TEXT:]
    blocks: list[dict] = []
    current: dict | None = None
    state = "outside"  # outside → frames → message
    last_frame_open = False  # the line after a File line may be its source line
    for line in _flatten_groups(text.replace("\r\n", "\n").replace("\r", "\n").split("\n")):
        if _HEADER.match(line) or _STACK_HEADER.match(line):
            current = {"frames": [], "message": []}
            blocks.append(current)
            state, last_frame_open = "frames", False
            continue
        if _CHAIN.match(line):
            state, last_frame_open = "outside", False
            continue
        file_match = _FILE.match(line)
        if file_match and state != "message":
            if current is None or state == "outside":
                # A SyntaxError printed without a header still names its file.
                current = {"frames": [], "message": []}
                blocks.append(current)
            current["frames"].append(_frame(file_match))
            state, last_frame_open = "frames", True
            continue
        if state == "frames":
            if not line.strip() or _CARETS.match(line) or _REPEATED.match(line):
                continue
            if line[:1].isspace():
                if last_frame_open and current["frames"]:
                    frames = current["frames"]
                    frames[-1] = _with_context(frames[-1], line.strip())
                last_frame_open = False
                continue
            if _EXCEPTION.match(line):
                current["message"].append(line)
                state, last_frame_open = "message", False
            continue
        if state == "message":
            current["message"].append(line)
    for block in reversed(blocks):
        if block["message"] or block["frames"]:
            exc_type, exc_value = _exception(block["message"])
            return exc_type, exc_value, block["frames"]
    return "", "", []


def _flatten_groups(lines: list[str]):
    """Lines with exception-group drawing removed; sub-exceptions of a group are skipped."""
    group_depth = 0  # depth of the group being read; deeper lines belong to sub-exceptions
    for line in lines:
        header = _GROUP_HEADER.match(line)
        content = None if header else _GROUP_CONTENT.match(line)
        if header or content:
            match = header or content
            depth = max(len(match.group("indent")) // 2, 1)
            if header:
                if group_depth == 0 or depth <= group_depth:
                    group_depth = depth
                    yield match.group("rest")
                continue
            if group_depth and depth > group_depth:
                continue
            yield match.group("rest")
            continue
        if _GROUP_RULE.match(line):
            continue
        if group_depth and line.strip():
            group_depth = 0  # back at the top level (e.g. a chained exception after a group)
        yield line


def _frame(match: re.Match) -> Frame:
    filename = match.group("file")
    lineno_text = match.group("lineno")
    module, in_app = module_for_filename(filename)
    return Frame(
        module=module,
        function=(match.group("func") or "").strip(),
        filename=filename,
        lineno=int(lineno_text) if lineno_text and lineno_text.isdigit() else None,
        in_app=in_app,
    )


def _with_context(frame: Frame, context_line: str) -> Frame:
    return Frame(
        module=frame.module,
        function=frame.function,
        filename=frame.filename,
        lineno=frame.lineno,
        in_app=frame.in_app,
        context_line=context_line,
    )


def _exception(lines: list[str]) -> tuple[str, str]:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    if not lines:
        return "", ""
    match = _EXCEPTION.match(lines[0])
    if not match:
        return "", ""
    first = match.group("value") or ""
    value = "\n".join([first, *lines[1:]]).strip()
    return match.group("type"), value


def module_for_filename(filename: str) -> tuple[str, bool]:
    """(dotted module, in_app) guessed from a frame's filename."""
    if not filename:
        return "", True
    frozen = _FROZEN.match(filename)
    if frozen:
        return frozen.group("module"), False
    if filename.startswith("<"):
        return "", False  # <string>, <stdin>, <module>: generated code, not a file of the app
    path = filename.replace("\\", "/")
    site = _SITE_PACKAGES.search(path)
    if site:
        return _dotted(site.group("module").split("/")), False
    stdlib = _STDLIB.search(path)
    if stdlib:
        return _dotted(stdlib.group("module").split("/")), False
    parts = [part for part in path.split("/") if part and part not in (".", "..")]
    if parts and parts[0].endswith(":"):
        parts = parts[1:]  # Windows drive
    if path.startswith("/") or filename[1:3] == ":\\" or filename[1:3] == ":/":
        # Cut after the last code root or release folder, so that the module does not
        # change with the deploy directory; unknown layouts keep their last three parts.
        roots = [
            index for index, part in enumerate(parts[:-1]) if part.lower() in _APP_ROOTS or _RELEASE_DIR.match(part)
        ]
        parts = parts[roots[-1] + 1 :] if roots else parts[-3:]
    return _dotted(parts), True


def _dotted(parts: list[str]) -> str:
    if not parts:
        return ""
    last = parts[-1]
    for suffix in (".py", ".pyc", ".pyx", ".pyw"):
        if last.endswith(suffix):
            last = last[: -len(suffix)]
            break
    parts = [*parts[:-1], last]
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(part for part in parts if part)


def format_python_traceback(exception_type: str, exception_value: str, frames: list[Frame]) -> str:
    """Python's own traceback text for structured frames (Sentry, structlog), outermost first."""
    lines = ["Traceback (most recent call last):"]
    for frame in frames:
        location = f'  File "{frame.filename or frame.module or "?"}"'
        if frame.lineno is not None:
            location += f", line {frame.lineno}"
        if frame.function:
            location += f", in {frame.function}"
        lines.append(location)
        if frame.context_line:
            lines.append(f"    {frame.context_line.strip()}")
    if exception_type:
        lines.append(f"{exception_type}: {exception_value}" if exception_value else exception_type)
    elif exception_value:
        lines.append(exception_value)
    return "\n".join(lines)

"""The replay test: the failing input, rebuilt from the incident, through the outermost frame that can be rebuilt.

A fix is right only when the input that crashed the service, replayed through its entry
point (the request handler or the job, not only the culprit function), ends in a result or
a deliberate error. This module writes the test that checks it; the sandbox runs it with
the service's own tests, for the offline analyzer's patches and the LLM's alike.

The input is rebuilt by `inputs` (the chain of frames it can be traced through). The entry
is the outermost carried frame whose parameters can all be written as Python; frame locals
the source sent as literals win. When the failing value comes from state (a lookup that
found nothing), the event's recorded request (method and path) through the outermost frame
is the replay, provided the code on the way reads nothing else of the request; when a
derived input is replayed too, the recorded request is only checked where it still reaches
the culprit (its data may live in a database the test does not have).

What the replay must end in (`Replay.expect`): "serve" — a result (not None where the
entry's annotation excludes it, not a 5xx) or a deliberate error; "refuse" — the input has
no safe value (no documented default, money or goods), so it must be refused with a
deliberate error that names the bad value: a 4xx answer, or, where no layer answers with
responses, a domain error (a ValueError or the service's own error class) with a message.
Anything else fails with a line the critic reads: `QUENCH REPLAY [moved]`, `[still-crashes]`,
`[none-returned]`, `[served-invalid-input]`, `[server-error]`, `[escaped]`, `[not-reached]`.
"""

from __future__ import annotations

import ast
import keyword
import re
import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath

from remediation.explanations import short_type
from remediation.llm.offline.contracts import Sources, response_template, returns_responses
from remediation.llm.offline.inputs import (
    REQUEST_FIELDS,
    Frame,
    Link,
    call_source,
    chain,
    request_complete,
    takes_request,
)
from remediation.llm.offline.sites import MISSING_TIMEOUT, Target

SERVE = "serve"
REFUSE = "refuse"
TEST_PREFIX = "test_quench_replay_"

# --------------------------------------------------------------------------------------
# The replay test
# --------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One replay: a call of an entry point and what it must end in."""

    link: Link
    call: str  # test source
    recorded: bool = False  # the event's recorded request (state-dependent), not a derived input
    optional: bool = False  # skipped where it does not reach the culprit (a derived input is checked too)


@dataclass
class Replay:
    """What the replay test checks, worked out before any fix (the same for every fix of the incident)."""

    entries: list[Entry]
    links: list[Link]
    expect: str  # SERVE or REFUSE
    must_name: tuple[str, ...]  # what a refusal must mention
    culprit_path: str
    culprit_function: str
    culprit_code: str
    exception: str
    exception_value: str
    why: str  # one sentence: why this expectation

    @property
    def entry(self) -> Entry:
        return self.entries[0]


def plan_replay(
    sources: Sources,
    frames: list[Frame],
    target: Target,
    *,
    event: dict,
    expect: str,
    why: str,
    must_name: tuple[str, ...],
    exception: str,
    exception_value: str,
    skip_outer: int = 0,
) -> Replay | str:
    """Which calls the replay test makes, or why the failing input cannot be rebuilt."""
    if target.crash_class == MISSING_TIMEOUT:
        return "reproducing a timeout needs the slow dependency itself"
    links = chain(sources, frames, target)
    if not links:
        return "the culprit function is not in the repository files read"
    culprit = links[-1]
    problems: list[str] = []

    def written(link: Link) -> str | None:
        module = module_for_path(link.path)
        if module is None:
            problems.append(f"{link.path} is not importable as a module")
            return None
        text = call_source(sources, link, "entry_" + _alias(link), event)
        if text.startswith(("entry_", "asyncio.run(")):
            return text
        problems.append(text)
        return None

    entries: list[Entry] = []
    with_locals = [
        link for link in links if link.locals and all(p.name.value in link.locals for p in link.function.parameters)
    ]
    carried = [link for link in links if link.carries or (link is culprit and culprit.value is not None)]
    candidates = with_locals or carried
    for link in candidates[skip_outer:]:
        text = written(link)
        if text is not None:
            entries.append(Entry(link, text))
            break
    has_request = any(event.get(name) for name in REQUEST_FIELDS)
    if has_request:
        outer = entries[0].link if entries else None
        for link in links:
            if outer is not None and links.index(link) >= links.index(outer):
                break
            if not takes_request(sources, link) or not request_complete(link):
                continue
            bare = Link(link.path, link.line, link.function, {}, None, "", locals=link.locals)
            text = written(bare)
            if text is not None:
                entries.append(Entry(bare, text, recorded=True, optional=bool(entries)))
                break
    if not entries:
        if culprit.value is None and not problems:
            problems.append(
                f"the bad value in {culprit.function.qualname}() comes from the service's state, not from its "
                "parameters, and the event carries no request to replay"
            )
        return problems[0] if problems else "no frame of the traceback can be rebuilt"
    return Replay(
        entries=entries,
        links=links,
        expect=expect,
        must_name=must_name,
        culprit_path=culprit.path,
        culprit_function=culprit.function.qualname,
        culprit_code=target.site.expression,
        exception=exception,
        exception_value=exception_value,
        why=why,
    )


def _alias(link: Link) -> str:
    module = module_for_path(link.path)
    return (module[0] if module else link.path).split(".")[-1]


def responds(sources: Sources, link: Link) -> bool:
    """Whether the entry point answers with responses (so an exception escaping it is a 5xx)."""
    code = link.function.code
    template = response_template(code)
    if template is not None and returns_responses(link.function, template[2]):
        return True
    returns = link.function.returns
    return "Response" in returns


def replay_test_file(
    replay: Replay, sources: Sources, *, test_command: str = "", incident: str = ""
) -> tuple[str, str] | str:
    """(test path, content) of the replay test, or why none can be written."""
    exception = short_type(replay.exception) or "the exception"
    directory = test_directory(test_command)
    function_slug = re.sub(r"\W", "_", replay.culprit_function).lower()
    test_path = f"{directory}/{TEST_PREFIX}{function_slug}.py"
    depth = len(PurePosixPath(directory).parts)
    roots = {module_for_path(entry.link.path)[1] for entry in replay.entries}
    root = next(iter(roots)) if len(roots) == 1 else ""
    root_expr = f"Path(__file__).resolve().parents[{depth}]" + (f' / "{root}"' if root else "")
    imports = {
        f'entry_{_alias(e.link)} = importlib.import_module("{module_for_path(e.link.path)[0]}")' for e in replay.entries
    }
    crash = f"{exception}: {replay.exception_value}" if replay.exception_value else exception
    first = replay.entry.link
    start = next((i for i, link in enumerate(replay.links) if link.function.node is first.function.node), 0)
    where = " → ".join(f"{link.function.qualname}()" for link in replay.links[start:])
    expectation = (
        "refused with a clear error that names " + " or ".join(repr(name) for name in replay.must_name)
        if replay.expect == REFUSE
        else "handled: a result (not None where the entry point's annotation excludes it) or a deliberate error"
    )
    doc = (
        f"Replay test written by Quench for {crash!r} in {replay.culprit_function}() ({replay.culprit_path})"
        + (f", incident {incident}" if incident else "")
        + ".\n\n"
        + f"The failing input, rebuilt from the incident, goes through {where}: it must be {expectation}. "
        + f"{replay.why} A crash anywhere on the way, a 5xx answer, None where a value is promised, or "
        + "serving an input that must be refused fails the test."
    )
    chain_functions = tuple((link.path, link.function.name) for link in replay.links)
    methods = []
    for entry in replay.entries:
        name = entry.link.function.name
        if entry.recorded:
            methods.append(
                f"    def test_the_recorded_request_through_{name}(self):\n"
                f'        """The request as the event recorded it, where it still reaches {replay.culprit_function}() here."""\n'
                f"        _check(self, lambda: {entry.call}, {entry.link.path!r}, {name!r}, "
                f"responds={responds(sources, entry.link)}, optional={entry.optional})\n"
            )
        else:
            methods.append(
                f"    def test_the_failing_input_through_{name}(self):\n"
                f'        """The input that crashed {replay.culprit_function}(), replayed through {name}()."""\n'
                f"        _check(self, lambda: {entry.call}, {entry.link.path!r}, {name!r}, "
                f"responds={responds(sources, entry.link)}, optional=False)\n"
            )
    class_name = "".join(part.capitalize() for part in function_slug.split("_") if part)
    header = [
        f'"""{_docstring_safe(_wrap_text(doc))}"""',
        "",
        *(["import asyncio"] if any("asyncio.run(" in e.call for e in replay.entries) else []),
        "import importlib",
        "import sys",
        "import traceback",
        "import unittest",
        "from pathlib import Path",
        "",
        f"_IMPORT_ROOT = str({root_expr})",
        "if _IMPORT_ROOT not in sys.path:",
        "    sys.path.insert(0, _IMPORT_ROOT)",
        "",
        *sorted(imports),
        "",
        f"EXPECT = {replay.expect!r}  # {SERVE!r}: handled without a crash; {REFUSE!r}: refused with a clear error",
        f"MUST_NAME = {replay.must_name!r}  # what a refusal must mention",
        f"CULPRIT = ({replay.culprit_path!r}, {replay.culprit_function.split('.')[-1]!r})",
        f"CHAIN = {chain_functions!r}  # the traceback's frames, outermost first",
        f"ORIGINAL = {exception!r}",
    ]
    content = (
        "\n".join(header)
        + "\n\n\n"
        + f"class QuenchReplay{class_name}Test(unittest.TestCase):\n"
        + "\n".join(methods)
        + "\n\n"
        + _CHECKER
    )
    ast.parse(content)
    return test_path, content


def _wrap_text(text: str, width: int = 100) -> str:
    out = []
    for paragraph in text.split("\n\n"):
        line = ""
        for word in paragraph.split():
            if line and len(line) + 1 + len(word) > width:
                out.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        out.append(line)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# The checker every replay test carries (standard library only: the service's tests may not use pytest).
_CHECKER = '''\
_CRASHES = (KeyError, IndexError, AttributeError, TypeError, ZeroDivisionError, NameError, AssertionError,
            RecursionError, UnboundLocalError, StopIteration)


def _status(value):
    """The HTTP status a response or a framework error carries, if any."""
    for name in ("status_code", "status", "code"):
        status = getattr(value, name, None)
        if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
            return status
    return None


def _text(value):
    body = getattr(value, "body", None)
    if body is None:
        body = getattr(value, "content", None) or getattr(value, "data", None)
    return f"{value!r} {body!r} {value}"


def _deliberate(error, responds):
    """A framework's 4xx, or (where nothing answers with responses) a domain error with a message."""
    status = _status(error)
    if status is not None:
        return 400 <= status < 500
    if responds or not str(error).strip():
        return False
    builtin = type(error).__module__ == "builtins"
    if builtin and isinstance(error, _CRASHES):
        return False
    return isinstance(error, ValueError) or type(error) is LookupError or not builtin


def _where(error):
    """The innermost frame of the service's own code in the error's traceback: (path, line, function, code)."""
    found = None
    for frame in traceback.extract_tb(error.__traceback__):
        filename = Path(frame.filename).resolve()
        try:
            relative = filename.relative_to(Path(_IMPORT_ROOT).resolve()).as_posix()
        except ValueError:
            continue
        if "/test_" not in "/" + relative:
            found = (relative, frame.lineno, frame.name, (frame.line or "").strip())
    return found


def _names(text):
    return any(name.lower() in text.lower() for name in MUST_NAME) if MUST_NAME else True


def _allows_none(function):
    annotation = getattr(function, "__annotations__", {}).get("return", "")
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return not text or any(word in text for word in ("None", "Optional", "Any", "object"))


def _check(test, call, path, name, *, responds, optional):
    reached = set()

    def profile(frame, event, arg):
        if event == "call":
            for chain_path, chain_function in CHAIN:
                if frame.f_code.co_name == chain_function and frame.f_code.co_filename.replace("\\\\", "/").endswith(chain_path):
                    reached.add(chain_function)

    previous = sys.getprofile()
    sys.setprofile(profile)
    result = error = None
    try:
        result = call()
    except Exception as exc:  # noqa: BLE001 - judging the outcome is the point
        error = exc
    finally:
        sys.setprofile(previous)
    culprit_reached = CULPRIT[1] in reached
    if optional and not culprit_reached:
        test.skipTest(f"the recorded request no longer reaches {CULPRIT[1]}() here (its data lives elsewhere)")
    if error is not None:
        if _deliberate(error, responds):
            if (EXPECT == "refuse" or not culprit_reached) and not _names(str(error)):
                test.fail(f"QUENCH REPLAY [unclear-error]: {name}() refused the input with {type(error).__name__}: "
                          f"{error}, which does not name {' or '.join(map(repr, MUST_NAME))}")
            return
        where = _where(error)
        place = f" in {where[2]}() at {where[0]}:{where[1]}" if where else ""
        described = f"{type(error).__name__}: {error}"
        if where and (where[0], where[2]) == CULPRIT and type(error).__name__ == ORIGINAL:
            test.fail(f"QUENCH REPLAY [still-crashes]: {name}() still raises {described}{place}")
        functions = [function for _, function in CHAIN]
        if where and where[2] in functions and CULPRIT[1] in functions:
            distance = functions.index(CULPRIT[1]) - functions.index(where[2])
            if distance > 0:
                test.fail(f"QUENCH REPLAY [moved]: {described}{place}, {distance} frame(s) above the culprit "
                          f"{CULPRIT[1]}(): the crash moved instead of going away")
        if responds and (type(error).__module__ != "builtins" or isinstance(error, ValueError)) and str(error).strip():
            test.fail(f"QUENCH REPLAY [escaped]: {described}{place} escaped {name}(), which answers with "
                      f"responses, so the client gets a 500: report it in the layer that answers (a 4xx)")
        test.fail(f"QUENCH REPLAY [moved]: {name}() raises {described}{place}")
    status = _status(result)
    if status is not None and status >= 500:
        test.fail(f"QUENCH REPLAY [server-error]: {name}() answered {status}: {_text(result)}")
    if EXPECT == "refuse":
        if status is not None and 400 <= status < 500:
            if not _names(_text(result)):
                test.fail(f"QUENCH REPLAY [unclear-error]: {name}() answered {status} without naming "
                          f"{' or '.join(map(repr, MUST_NAME))}: {_text(result)}")
            return
        test.fail(f"QUENCH REPLAY [served-invalid-input]: {name}() returned {result!r} for an input that must be "
                  f"refused ({' or '.join(map(repr, MUST_NAME))} has no safe value): a silently wrong value")
    if result is None and not _allows_none(getattr(_module_of(path), name, None)):
        test.fail(f"QUENCH REPLAY [none-returned]: {name}() returned None, but its annotation promises a value")
    if not culprit_reached and not (status is not None and 400 <= status < 500 and _names(_text(result))):
        test.fail(f"QUENCH REPLAY [not-reached]: the replay through {name}() never reached {CULPRIT[1]}(); "
                  "the rebuilt input does not take the failing path")


def _module_of(path):
    for module in list(sys.modules.values()):
        filename = (getattr(module, "__file__", None) or "").replace("\\\\", "/")
        if filename.endswith(path):
            return module
    return None
'''


# --------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------


def module_for_path(path: str) -> tuple[str, str] | None:
    """(dotted module, import root relative to the repository) for a repository-relative .py path."""
    parts = list(PurePosixPath(path).parts)
    if not parts or not parts[-1].endswith(".py"):
        return None
    root = ""
    if parts[0] == "src" and len(parts) > 1:
        root, parts = "src", parts[1:]
    parts[-1] = parts[-1][: -len(".py")]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if not parts or not all(part.isidentifier() and not keyword.iskeyword(part) for part in parts):
        return None
    return ".".join(parts), root


def test_directory(test_command: str) -> str:
    """Where a new test goes: the directory the test command names, else `tests`."""
    try:
        argv = shlex.split(test_command or "")
    except ValueError:
        argv = []
    for arg in argv[1:]:
        if arg.startswith("-") or "=" in arg or arg in ("pytest", "unittest", "py.test"):
            continue
        candidate = PurePosixPath(arg.split("::", 1)[0])
        if candidate.is_absolute() or ".." in candidate.parts:
            continue
        if candidate.suffix == ".py":
            candidate = candidate.parent
        if str(candidate) not in ("", ".") and "test" in str(candidate):
            return str(candidate)
    return "tests"


def _docstring_safe(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', "'''")


def runs_code_on_import(source: str) -> bool:
    """Whether importing the module calls one of its own functions at top level (a script)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return True
    defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Name) and func.id in defined:
                return True
    return False

"""Writing the regression test: the culprit function called with the input that crashed it.

Where the failing input can be reconstructed from the code (a parameter that lacks the
key, is empty, is zero or is None), a fix carries a `RegressionCall` from which
`regression_test_file` writes a test that fails before the fix and passes after it.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re
import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import libcst as cst
from libcst.metadata import ExpressionContext

from remediation.explanations import short_type
from remediation.llm.offline.sites import (
    INDEX_OUT_OF_RANGE,
    MISSING_KEY,
    MISSING_TIMEOUT,
    ZERO_DIVISION,
    Code,
    Target,
    default_for,
    error_class,
    is_len_of_pure,
    literal,
    single_index,
)

if TYPE_CHECKING:
    from remediation.llm.offline.rewrites import Fix


@dataclass(frozen=True)
class RegressionCall:
    """A call of the culprit function with the input that crashed it."""

    function: str
    is_async: bool
    positional: tuple[str, ...]  # source of positional-only arguments
    keywords: tuple[tuple[str, str], ...]  # (parameter, argument source)
    expected_error: str  # "" when the call must not raise; else the error class, e.g. "ValueError"

    def call_source(self, module_alias: str = "") -> str:
        """The call as test code: `target.charge(order={'amount': 1})` (wrapped in asyncio.run when async)."""
        args = [*self.positional, *(f"{name}={value}" for name, value in self.keywords)]
        prefix = f"{module_alias}." if module_alias else ""
        call = f"{prefix}{self.function}({', '.join(args)})"
        return f"asyncio.run({call})" if self.is_async else call


# --------------------------------------------------------------------------------------
# Regression input
# --------------------------------------------------------------------------------------

_UNKNOWN = object()
_UNSET = object()
_ITEM = ("item",)


class _Shape:
    """What a parameter must look like for the function to reach the culprit line."""

    def __init__(self):
        self.keys: dict[object, _Shape] = {}
        self.item: _Shape | None = None
        self.leaf: object = _UNKNOWN
        self.fixed: object = _UNSET
        self.is_dict = False

    def at(self, path: tuple) -> _Shape:
        shape = self
        for step in path:
            if step == _ITEM:
                shape.item = shape.item or _Shape()
                shape = shape.item
            else:
                shape.is_dict = True
                shape = shape.keys.setdefault(step[1], _Shape())
        return shape

    @property
    def known(self) -> bool:
        return self.fixed is not _UNSET or self.is_dict or self.item is not None or self.leaf is not _UNKNOWN

    def value(self) -> object:
        if self.fixed is not _UNSET:
            return self.fixed
        if self.is_dict:
            return {key: shape.value() for key, shape in self.keys.items()}
        if self.item is not None:
            return [self.item.value()]
        return 1 if self.leaf is _UNKNOWN else self.leaf


def _usage_value(code: Code, node: cst.CSTNode) -> object:
    """A plain value that suits how `node` is used (1 for arithmetic, "x" for string methods ...)."""
    default = default_for(code, node)
    return {"0": 1, '""': "x", "''": "x", "[]": [], "{}": {}, "()": []}.get(default, _UNKNOWN)


def _access_path(code: Code, node: cst.CSTNode) -> tuple[str, tuple] | None:
    """(root name, steps) for `name`, `name["a"]["b"]`; None for anything else."""
    steps: list = []
    while isinstance(node, cst.Subscript):
        key = single_index(node)
        is_literal, value = literal(key) if key is not None else (False, None)
        if not is_literal or not isinstance(value, (str, int)) or isinstance(value, bool):
            return None
        steps.append(("key", value))
        node = node.value
    if not isinstance(node, cst.Name):
        return None
    return node.value, tuple(reversed(steps))


def _collect_shapes(code: Code, function: cst.FunctionDef, parameters: list[str]) -> dict[str, _Shape]:
    shapes = {name: _Shape() for name in parameters}
    loop_items: dict[str, tuple[str, tuple]] = {}  # for X in param[...]: X → (param, path + item)
    for node in code.descendants(function.body, cst.For):
        if isinstance(node.target, cst.Name):
            path = _access_path(code, node.iter)
            if path and path[0] in shapes:
                loop_items[node.target.value] = (path[0], (*path[1], _ITEM))
    for name_node in code.descendants(function.body, cst.Name):
        root = name_node.value
        if root not in shapes and root not in loop_items:
            continue
        if code.contexts.get(name_node) != ExpressionContext.LOAD:
            continue
        current, steps = name_node, []
        while True:
            parent = code.parent(current)
            if isinstance(parent, cst.Subscript) and parent.value is current:
                key = single_index(parent)
                is_literal, value = literal(key) if key is not None else (False, None)
                if is_literal and isinstance(value, str):
                    steps.append(("key", value))
                    current = parent
                    continue
            break
        if root in loop_items:
            root, prefix = loop_items[root]
        else:
            prefix = ()
        parent = code.parent(current)
        if isinstance(parent, cst.For) and parent.iter is current and isinstance(parent.target, cst.Name):
            shapes[root].at((*prefix, *steps, _ITEM))
            continue
        shape = shapes[root].at((*prefix, *steps))
        if shape.leaf is _UNKNOWN:
            usage = _usage_value(code, current)
            if usage is not _UNKNOWN:
                shape.leaf = usage
    return shapes


def regression_call(code: Code, target: Target, *, raises: bool) -> RegressionCall | str:
    """The culprit function called with the input that crashed it, or why it cannot be written."""
    kind = target.crash_class
    if kind == MISSING_TIMEOUT:
        return "reproducing a timeout needs the slow dependency itself"
    function, qualname, is_method, nested = code.function_of(target.node)
    if function is None:
        return "the culprit line is at module level; there is no function to call"
    if is_method:
        return f"{qualname} is a method; the offline analyzer does not construct {qualname.split('.')[0]} instances"
    if nested or "." in qualname:
        return f"{qualname} is defined inside another function and cannot be imported"
    if function.decorators:
        decorator = code.text(function.decorators[0].decorator)
        return f"{qualname} is decorated with @{decorator}; calling it directly may not reach the culprit line"
    params = function.params
    ordered = [*params.posonly_params, *params.params, *params.kwonly_params]
    names = [param.name.value for param in ordered]
    shapes = _collect_shapes(code, function, names)

    root, problem = _failing_input(code, target, shapes)
    if problem:
        return problem
    positional: list[str] = []
    keywords: list[tuple[str, str]] = []
    posonly = {param.name.value for param in params.posonly_params}
    for param in ordered:
        name = param.name.value
        shape = shapes[name]
        if param.default is not None and name != root and shape.fixed is _UNSET:
            if name in posonly:  # later positional-only arguments must keep their place
                is_literal, default = literal(param.default)
                if not is_literal:
                    return f"the positional-only parameter {name!r} has a default the test cannot spell"
                positional.append(repr(default))
            continue
        if not shape.known:
            if shape.leaf is _UNKNOWN and not _used(code, function, name):
                shape.fixed = None
            else:
                return f"cannot guess a value for the parameter {name!r} of {qualname}()"
        text = repr(shape.value())
        if name in posonly:
            positional.append(text)
        else:
            keywords.append((name, text))
    expected = ""
    if raises:
        error = error_class(code)
        expected = error if error == "ValueError" else f"target.{error}"
    return RegressionCall(
        qualname, function.asynchronous is not None, tuple(positional), tuple(keywords), expected_error=expected
    )


def _used(code: Code, function: cst.FunctionDef, name: str) -> bool:
    return any(node.value == name for node in code.descendants(function.body, cst.Name))


def _failing_input(code: Code, target: Target, shapes: dict[str, _Shape]) -> tuple[str, str]:
    """Set the shape of the parameter that carried the bad value: (its name, "") or ("", why not)."""
    kind = target.crash_class

    def located(node: cst.CSTNode) -> tuple[str, tuple] | None:
        path = _access_path(code, node)
        if path is None:
            return None
        root, steps = path
        if root in shapes:
            return root, steps
        for loop in code.descendants(code.function_of(target.node)[0].body, cst.For):
            if isinstance(loop.target, cst.Name) and loop.target.value == root and code.within(target.node, loop):
                outer = _access_path(code, loop.iter)
                if outer and outer[0] in shapes:
                    return outer[0], (*outer[1], _ITEM, *steps)
        return None

    if kind == MISSING_KEY:
        where = located(target.node.value)
        if where is None:
            return "", f"{code.text(target.node.value)} does not come from a parameter of the function"
        root, steps = where
        if target.key_value[0] and isinstance(target.key_value[1], (str, int)):
            shape = shapes[root].at(steps)
            shape.is_dict = True
            shape.keys.pop(target.key_value[1], None)
            if isinstance(target.key, cst.Name) and target.key.value in shapes:
                shapes[target.key.value].fixed = target.key_value[1]
            return root, ""
        return "", f"the missing key {code.text(target.key)} is not known from the exception"
    if kind == INDEX_OUT_OF_RANGE:
        where = located(target.subject)
        if where is None:
            return "", f"{code.text(target.subject)} does not come from a parameter of the function"
        empty: object = [] if "string index" not in target.message else ""
        if "tuple index" in target.message:
            empty = ()
        shapes[where[0]].at(where[1]).fixed = empty
        return where[0], ""
    if kind == ZERO_DIVISION:
        den = target.subject
        if is_len_of_pure(den):
            where = located(den.args[0].value)
            zero: object = []
        else:
            where = located(den)
            zero = 0
        if where is None:
            return "", f"the denominator {code.text(den)} does not come from a parameter of the function"
        shapes[where[0]].at(where[1]).fixed = zero
        return where[0], ""
    where = located(target.subject)
    if where is None:
        return "", f"{code.text(target.subject)} does not come from a parameter of the function"
    shapes[where[0]].at(where[1]).fixed = None
    return where[0], ""


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


def regression_test_file(
    fix: Fix, path: str, exception_type: str, exception_value: str, *, test_command: str = ""
) -> tuple[str, str] | str:
    """(test path, content) of a test that fails before `fix` and passes after it, or why there is none."""
    if fix.regression is None:
        return fix.no_test_reason or "no failing input could be reconstructed"
    module = module_for_path(path)
    if module is None:
        return f"{path} is not importable as a module (its path is not made of identifiers)"
    module_name, import_root = module
    exception = short_type(exception_type)
    if not isinstance(getattr(builtins, exception, None), type):
        return f"{exception} is not a built-in exception the test could name"
    if runs_code_on_import(fix.new_source):
        return f"importing {module_name} runs its own code at top level, so a test cannot import it safely"
    call = fix.regression
    directory = test_directory(test_command)
    function = re.sub(r"\W", "_", call.function).lower()
    test_path = f"{directory}/test_quench_regression_{function}.py"
    depth = len(PurePosixPath(directory).parts)
    root_expr = f"Path(__file__).resolve().parents[{depth}]" + (f' / "{import_root}"' if import_root else "")
    imports = ["import importlib", "import sys", "import unittest"]
    if call.is_async:
        imports.insert(0, "import asyncio")
    call_source = call.call_source("target")
    location = f"{path}:{fix.site.line}"
    crash = f"{exception}: {exception_value}" if exception_value else exception
    if call.expected_error:
        body = (
            f"    def test_{function}_raises_a_clear_error(self):\n"
            f'        """The input that crashed it now gets {call.expected_error.split(".")[-1]}, '
            f'not {exception}."""\n'
            f"        with self.assertRaises({call.expected_error}):\n"
            f"            {call_source}\n"
        )
    else:
        body = (
            f"    def test_{function}_does_not_raise_{exception.lower()}(self):\n"
            f'        """The input that crashed it is handled now."""\n'
            f"        try:\n"
            f"            {call_source}\n"
            f"        except {exception} as exc:\n"
            f'            self.fail(f"{call.function}() still raises {exception}: {{exc!r}}")\n'
        )
    docstring = f"Regression test written by Quench for {crash!r} at {location} ({fix.strategy.name})."
    class_name = "".join(part.capitalize() for part in function.split("_") if part)
    content = (
        f'"""{_docstring_safe(docstring)}"""\n\n'
        + "\n".join(imports)
        + "\nfrom pathlib import Path\n\n"
        + f"_IMPORT_ROOT = str({root_expr})\n"
        + "if _IMPORT_ROOT not in sys.path:\n"
        + "    sys.path.insert(0, _IMPORT_ROOT)\n\n"
        + f'target = importlib.import_module("{module_name}")\n\n\n'
        + f"class QuenchRegression{class_name}Test(unittest.TestCase):\n"
        + body
    )
    ast.parse(content)
    return test_path, content


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

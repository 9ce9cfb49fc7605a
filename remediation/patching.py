"""Minimal code fixes for the crash classes Python services die of most, written with libcst.

The offline analyzer knows where a crash happened (a file and a line) and what was raised.
This module finds the construct on that line that raised it (the `CrashSite`: the
subscript whose key was missing, the division by zero, the attribute read on None, the
call without a timeout) and rewrites just that construct or the statement around it.
Everything goes through libcst's concrete syntax tree, so every untouched byte of the
file (comments, blank lines, quoting, layout) round-trips unchanged; source text is never
edited with regular expressions.

Each crash class has an ordered list of strategies (`STRATEGIES`); a fix attempt uses
the first one the history has not tried yet:

- missing_key (KeyError): `x[k]` → `x.get(k, default)`; then a guard that returns early
  (or skips the loop item); then a guard that raises a clear domain error.
- index_out_of_range (IndexError): `seq[i]` → `(seq[i] if seq else default)`; then an
  early-return guard; then a raising guard.
- zero_division (ZeroDivisionError): `a / b` → `(a / b if b else 0)`; then an early-return
  guard; then a raising guard.
- none_value (AttributeError/TypeError on None): `obj.attr...` → `(obj.attr... if obj is not
  None else default)`; then an early-return guard; then a raising guard.
- missing_timeout (a timeout exception): add `timeout=10` (or `connect_timeout=` for
  psycopg) to the call; then a more generous `timeout=30`.

The guards need to evaluate the missing/zero/None value twice, so it must be a plain
value (a name, an attribute, a literal-keyed subscript); a value that comes from a call
(`find_customer(id).email`) is first kept in a local (`customer = find_customer(id)`).
A default is chosen by how the value is used next (0 for arithmetic, "" for string
methods and formatting, [] for iteration, {} for further keys; None otherwise), following
an assigned name to its next use; `.get()` without a usable default is not offered when
the value is used further on the same line.

Where the failing input can be reconstructed from the code (a parameter that lacks the
key, is empty, is zero or is None), a fix also carries a `RegressionCall` from which
`regression_test_file` writes a test that fails before the fix and passes after it.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import libcst as cst
from libcst.metadata import (
    ExpressionContext,
    ExpressionContextProvider,
    MetadataWrapper,
    ParentNodeProvider,
    PositionProvider,
)

from remediation.explanations import is_timeout, short_type

MISSING_KEY = "missing_key"
INDEX_OUT_OF_RANGE = "index_out_of_range"
ZERO_DIVISION = "zero_division"
NONE_VALUE = "none_value"
MISSING_TIMEOUT = "missing_timeout"

# How a strategy changes the code.
VALUE = "value"  # the failing expression yields a default instead of raising
RETURN = "return"  # a guard before the statement returns early (or skips the loop item)
RAISE = "raise"  # a guard before the statement raises a clear domain error
TIMEOUT = "timeout"  # the call gets an explicit timeout

DEFAULT_TIMEOUT_SECONDS = 10
GENEROUS_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Strategy:
    """One way of fixing one crash class."""

    name: str
    crash_class: str
    mode: str  # VALUE, RETURN, RAISE or TIMEOUT
    description: str


STRATEGIES: dict[str, tuple[Strategy, ...]] = {
    MISSING_KEY: (
        Strategy("key_default", MISSING_KEY, VALUE, "read the key with .get() and a default that fits how it is used"),
        Strategy(
            "key_guard_return", MISSING_KEY, RETURN, "check for the key first and return early when it is missing"
        ),
        Strategy("key_guard_raise", MISSING_KEY, RAISE, "check for the key first and raise a clear error naming it"),
    ),
    INDEX_OUT_OF_RANGE: (
        Strategy(
            "index_default", INDEX_OUT_OF_RANGE, VALUE, "yield a default instead of indexing a too-short sequence"
        ),
        Strategy("index_guard_return", INDEX_OUT_OF_RANGE, RETURN, "return early when the sequence is too short"),
        Strategy("index_guard_raise", INDEX_OUT_OF_RANGE, RAISE, "raise a clear error when the sequence is too short"),
    ),
    ZERO_DIVISION: (
        Strategy("zero_default", ZERO_DIVISION, VALUE, "guard the denominator in place: the result is 0 when it is 0"),
        Strategy("zero_guard_return", ZERO_DIVISION, RETURN, "return early when the denominator is zero"),
        Strategy("zero_guard_raise", ZERO_DIVISION, RAISE, "raise a clear error when the denominator is zero"),
    ),
    NONE_VALUE: (
        Strategy("none_default", NONE_VALUE, VALUE, "guard the None value in place: the expression yields a default"),
        Strategy("none_guard_return", NONE_VALUE, RETURN, "return early when the value is None"),
        Strategy("none_guard_raise", NONE_VALUE, RAISE, "raise a clear error when the value is None"),
    ),
    MISSING_TIMEOUT: (
        Strategy("timeout_keyword", MISSING_TIMEOUT, TIMEOUT, f"pass timeout={DEFAULT_TIMEOUT_SECONDS} to the call"),
        Strategy(
            "timeout_generous", MISSING_TIMEOUT, TIMEOUT, f"pass a more generous timeout={GENEROUS_TIMEOUT_SECONDS}"
        ),
    ),
}

CRASH_CLASS_LABELS = {
    MISSING_KEY: "missing key",
    INDEX_OUT_OF_RANGE: "index out of range",
    ZERO_DIVISION: "division by zero",
    NONE_VALUE: "None used as a value",
    MISSING_TIMEOUT: "call without a timeout",
}


def strategy_named(name: str) -> Strategy | None:
    return next((s for group in STRATEGIES.values() for s in group if s.name == name), None)


def crash_class(exception_type: str, exception_value: str = "") -> str | None:
    """The crash class an exception belongs to, or None when there is no code strategy for it."""
    name = short_type(exception_type)
    value = exception_value or ""
    if is_timeout(exception_type, value):
        return MISSING_TIMEOUT
    if name == "KeyError":
        return MISSING_KEY
    if name == "IndexError":
        return INDEX_OUT_OF_RANGE
    if name in ("ZeroDivisionError", "DivisionByZero"):
        return ZERO_DIVISION
    if name in ("AttributeError", "TypeError") and "NoneType" in value:
        return NONE_VALUE
    return None


@dataclass(frozen=True)
class CrashSite:
    """The construct on the culprit line that raised, in words a person reads."""

    crash_class: str
    line: int  # where the construct starts (1-based)
    function: str  # qualified name of the enclosing function, "" at module level
    expression: str  # the failing construct's source, e.g. order["currency"]
    subject: str  # the value that was missing / empty / zero / None, or the call's callee
    detail: str  # the key, the index, the denominator, the attribute, the timeout keyword
    description: str  # e.g. 'reads order["currency"] but order has no "currency" key'
    has_timeout: bool = False  # missing_timeout: the call already passes a timeout


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


@dataclass(frozen=True)
class Fix:
    """One strategy applied to one crash site: the new file content and what changed."""

    strategy: Strategy
    site: CrashSite
    new_source: str
    change: str  # one sentence: what was replaced by what
    regression: RegressionCall | None = None
    no_test_reason: str = ""
    raises: str = ""  # RAISE strategies: the error class the guard raises


@dataclass(frozen=True)
class Plan:
    """The crash site on a line and every strategy that applies to it, in order."""

    site: CrashSite
    fixes: list[Fix] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # strategy name → why it does not apply


# --------------------------------------------------------------------------------------
# The parsed file
# --------------------------------------------------------------------------------------


class _Code:
    """A parsed module with positions, parents and load/store contexts of its nodes."""

    def __init__(self, source: str):
        self.source = source
        self.module = cst.parse_module(source)
        wrapper = MetadataWrapper(self.module, unsafe_skip_copy=True)
        self.positions = wrapper.resolve(PositionProvider)
        self.parents = wrapper.resolve(ParentNodeProvider)
        self.contexts = wrapper.resolve(ExpressionContextProvider)
        self._ordered = sorted(
            self.positions.items(), key=lambda item: (item[1].start.line, item[1].start.column, -item[1].end.line)
        )

    def text(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    def bare(self, node: cst.CSTNode) -> str:
        """The node's source without its own surrounding parentheses."""
        if getattr(node, "lpar", None):
            node = node.with_changes(lpar=[], rpar=[])
        return self.module.code_for_node(node)

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.parents.get(node)

    def on_line(self, line: int, kinds: type | tuple[type, ...]) -> list[cst.CSTNode]:
        """Nodes of `kinds` that start on `line`; else the ones spanning it, narrowest first."""
        starting = [node for node, pos in self._ordered if isinstance(node, kinds) and pos.start.line == line]
        if starting:
            return starting
        spanning = [
            node for node, pos in self._ordered if isinstance(node, kinds) and pos.start.line <= line <= pos.end.line
        ]
        return sorted(spanning, key=lambda node: self.positions[node].end.line - self.positions[node].start.line)

    def line_of(self, node: cst.CSTNode) -> int:
        return self.positions[node].start.line

    def within(self, node: cst.CSTNode, ancestor: cst.CSTNode) -> bool:
        while node is not None:
            if node is ancestor:
                return True
            node = self.parents.get(node)
        return False

    def descendants(self, root: cst.CSTNode, kinds: type | tuple[type, ...]) -> list[cst.CSTNode]:
        start, end = self.positions[root].start, self.positions[root].end
        found = []
        for node, pos in self._ordered:
            if (pos.start.line, pos.start.column) < (start.line, start.column):
                continue
            if (pos.start.line, pos.start.column) > (end.line, end.column):
                break
            if isinstance(node, kinds) and self.within(node, root):
                found.append(node)
        return found

    def statement_of(self, node: cst.CSTNode) -> cst.CSTNode | None:
        """The statement (a child of a block) that holds `node`."""
        current = node
        while current is not None:
            parent = self.parents.get(current)
            if isinstance(parent, (cst.IndentedBlock, cst.Module)):
                return current
            current = parent
        return None

    def function_of(self, node: cst.CSTNode) -> tuple[cst.FunctionDef | None, str, bool, bool]:
        """(enclosing function, qualified name, is a method, is nested in another function)."""
        names: list[str] = []
        function = None
        is_method = nested = False
        current = self.parents.get(node)
        while current is not None:
            if isinstance(current, cst.FunctionDef):
                if function is None:
                    function = current
                else:
                    nested = True
                names.append(current.name.value)
            elif isinstance(current, cst.ClassDef):
                if function is not None and len(names) == 1:
                    is_method = True
                names.append(current.name.value)
            current = self.parents.get(current)
        return function, ".".join(reversed(names)), is_method, nested


# --------------------------------------------------------------------------------------
# Small expression helpers
# --------------------------------------------------------------------------------------

_PURE_BUILTINS = {"len", "abs", "float", "int", "round", "sum", "min", "max", "bool", "str"}
_ITERATING_BUILTINS = {"len", "sum", "sorted", "list", "tuple", "set", "frozenset", "any", "all", "min", "max"}
_ITERATING_BUILTINS |= {"enumerate", "reversed", "zip", "dict", "iter", "map", "filter"}
_NUMERIC_BUILTINS = {"int", "float", "round", "abs", "divmod", "pow", "range"}
_STR_METHODS = {"lower", "upper", "strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith"}
_STR_METHODS |= {"replace", "format", "encode", "title", "casefold", "splitlines", "partition", "zfill", "isdigit"}
_DICT_METHODS = {"get", "items", "keys", "values", "setdefault", "pop", "update"}
_LIST_METHODS = {"append", "extend", "insert", "index", "count", "sort", "remove"}
_ARITHMETIC = (
    cst.Add,
    cst.Subtract,
    cst.Multiply,
    cst.Divide,
    cst.FloorDivide,
    cst.Modulo,
    cst.Power,
)
_ORDERING = (cst.LessThan, cst.LessThanEqual, cst.GreaterThan, cst.GreaterThanEqual)


def _dotted(node: cst.CSTNode) -> str:
    """`a.b.c` for a Name/Attribute chain; calls in the chain keep their `()`; "" otherwise."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr.value}" if base else ""
    if isinstance(node, cst.Call):
        base = _dotted(node.func)
        return f"{base}()" if base else ""
    return ""


def _literal(node: cst.CSTNode) -> tuple[bool, object]:
    """(True, value) for a literal node (string, number, True/False/None, tuple of those)."""
    literal = (
        isinstance(node, (cst.SimpleString, cst.Integer, cst.Float, cst.ConcatenatedString, cst.UnaryOperation))
        or (isinstance(node, cst.Name) and node.value in ("True", "False", "None"))
        or (isinstance(node, cst.Tuple) and all(_literal(element.value)[0] for element in node.elements))
    )
    if not literal:
        return False, None
    try:
        return True, ast.literal_eval(cst.Module(body=[]).code_for_node(node))
    except (ValueError, SyntaxError, TypeError):
        return False, None


def _parse_value(text: str) -> tuple[bool, object]:
    """(True, value) when an exception message is the repr of a literal (KeyError: 'currency')."""
    try:
        return True, ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None


def _is_pure(node: cst.CSTNode) -> bool:
    """Cheap and side-effect free, so evaluating it twice (guard + use) is safe."""
    if isinstance(node, cst.Name) or _literal(node)[0]:
        return True
    if isinstance(node, cst.Attribute):
        return _is_pure(node.value)
    if isinstance(node, cst.Subscript):
        return (
            _is_pure(node.value)
            and len(node.slice) == 1
            and isinstance(node.slice[0].slice, cst.Index)
            and _is_pure(node.slice[0].slice.value)
        )
    if isinstance(node, cst.BinaryOperation):
        return _is_pure(node.left) and _is_pure(node.right)
    if isinstance(node, cst.UnaryOperation):
        return _is_pure(node.expression)
    if isinstance(node, cst.Call):
        return (
            isinstance(node.func, cst.Name)
            and node.func.value in _PURE_BUILTINS
            and all(not arg.star and _is_pure(arg.value) for arg in node.args)
        )
    return False


def _is_atom(node: cst.CSTNode) -> bool:
    """Needs no parentheses as an operand."""
    return bool(getattr(node, "lpar", None)) or isinstance(
        node,
        (
            cst.Name,
            cst.Attribute,
            cst.Call,
            cst.Subscript,
            cst.SimpleString,
            cst.Integer,
            cst.Float,
            cst.List,
            cst.Dict,
            cst.Tuple,
            cst.FormattedString,
        ),
    )


def _root_name(node: cst.CSTNode) -> str:
    while isinstance(node, (cst.Attribute, cst.Subscript)):
        node = node.value
    return node.value if isinstance(node, cst.Name) else ""


def _single_index(subscript: cst.Subscript) -> cst.BaseExpression | None:
    if len(subscript.slice) == 1 and isinstance(subscript.slice[0].slice, cst.Index):
        return subscript.slice[0].slice.value
    return None


def _chain_top(code: _Code, node: cst.CSTNode) -> cst.CSTNode:
    """Climb `x.a`, `x[k]` and `x(...)` links: the whole expression that needs `node` to be there."""
    current = node
    while True:
        parent = code.parent(current)
        if _continues(code, current):
            current = parent
        else:
            return current


def _in_annotation(code: _Code, node: cst.CSTNode) -> bool:
    current = code.parent(node)
    while current is not None and not isinstance(current, cst.BaseStatement):
        if isinstance(current, cst.Annotation):
            return True
        current = code.parent(current)
    return False


def _default_for(code: _Code, node: cst.CSTNode) -> str | None:
    """The source of a harmless default for `node`, judged by how its value is used; None when unclear."""
    default = _usage_default(code, node)
    if default == '""':
        current = code.parent(node)
        while current is not None and not isinstance(current, cst.BaseStatement):
            if isinstance(current, cst.FormattedString) and '"' in current.start:
                return "''"  # the same quote inside an f-string is a syntax error before Python 3.12
            current = code.parent(current)
    return default


def _usage_default(code: _Code, node: cst.CSTNode) -> str | None:
    parent = code.parent(node)
    if (
        isinstance(parent, cst.Assign)
        and parent.value is node
        and len(parent.targets) == 1
        and isinstance(parent.targets[0].target, cst.Name)
    ):
        # `currency = order["currency"]`: what fits is decided where `currency` is used next.
        later = _next_use(code, parent, parent.targets[0].target.value)
        return _usage_default(code, later) if later is not None else None
    if isinstance(parent, cst.BinaryOperation) and isinstance(parent.operator, _ARITHMETIC):
        other = parent.right if parent.left is node else parent.left
        if isinstance(other, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)):
            return '""'
        return "0"
    if isinstance(parent, cst.AugAssign) and parent.value is node:
        return "0"
    if isinstance(parent, cst.UnaryOperation) and isinstance(parent.operator, (cst.Minus, cst.Plus)):
        return "0"
    if isinstance(parent, cst.Comparison):
        for target in parent.comparisons:
            if isinstance(target.operator, _ORDERING):
                other = target.comparator if target.comparator is not node else parent.left
                if isinstance(other, (cst.SimpleString, cst.FormattedString)):
                    return '""'
                return "0"
    if isinstance(parent, cst.ComparisonTarget) and isinstance(parent.operator, (cst.In, cst.NotIn)):
        return "[]"
    if isinstance(parent, cst.ComparisonTarget) and isinstance(parent.operator, _ORDERING):
        return "0"
    if isinstance(parent, (cst.For, cst.CompFor)) and parent.iter is node:
        return "[]"
    if isinstance(parent, cst.FormattedStringExpression):
        return '""'
    if isinstance(parent, cst.Arg):
        call = code.parent(parent)
        if isinstance(call, cst.Call):
            name = _dotted(call.func)
            if name in _ITERATING_BUILTINS or name.endswith(".join"):
                return "[]"
            if name in _NUMERIC_BUILTINS:
                return "0"
            if name == "str":
                return '""'
        return None
    if isinstance(parent, cst.Attribute) and parent.value is node:
        attr = parent.attr.value
        if attr in _STR_METHODS:
            return '""'
        if attr in _DICT_METHODS:
            return "{}"
        if attr in _LIST_METHODS:
            return "[]"
        return None
    if isinstance(parent, cst.Subscript) and parent.value is node:
        index = _single_index(parent)
        if index is not None and isinstance(index, (cst.SimpleString, cst.ConcatenatedString)):
            return "{}"
        return None
    return None


def _next_use(code: _Code, assignment: cst.CSTNode, name: str) -> cst.Name | None:
    """The first read of `name` after `assignment`, in the same function."""
    statement = code.statement_of(assignment)
    function, _, _, _ = code.function_of(assignment)
    if statement is None or function is None:
        return None
    end = code.positions[statement].end
    for node in code.descendants(function.body, cst.Name):
        position = code.positions[node].start
        if (
            node.value == name
            and (position.line, position.column) > (end.line, end.column)
            and code.contexts.get(node) == ExpressionContext.LOAD
        ):
            return node
    return None


def _continues(code: _Code, node: cst.CSTNode) -> bool:
    """Whether `node`'s value is used further by an attribute, subscript or call (so None would crash again)."""
    parent = code.parent(node)
    return (
        (isinstance(parent, cst.Attribute) and parent.value is node)
        or (isinstance(parent, cst.Subscript) and parent.value is node)
        or (isinstance(parent, cst.Call) and parent.func is node)
    )


def _paren(text: str, node: cst.CSTNode) -> str:
    return text if _is_atom(node) else f"({text})"


# --------------------------------------------------------------------------------------
# Finding the crash site
# --------------------------------------------------------------------------------------


@dataclass
class _Target:
    """Where a crash happened, as nodes of the parsed file."""

    crash_class: str
    node: cst.CSTNode  # the construct that raised (subscript, binary operation, attribute, call ...)
    subject: cst.CSTNode | None  # the value that was missing/empty/zero/None (what a guard checks)
    site: CrashSite
    key: cst.CSTNode | None = None  # missing_key: the key; index: the index
    key_value: tuple[bool, object] = (False, None)
    form: str = ""  # refinements: "augassign", "pop", "iterate", "len", "operand", "store", "environ", "divmod"
    timeout_keyword: str = ""
    timeout_arg: cst.Arg | None = None  # missing_timeout: an existing `timeout=None` argument to replace
    operand_default: str = "0"
    message: str = ""  # the exception's message


def _function_label(function: str) -> str:
    return f"{function}()" if function else "module level"


def _find_missing_key(code: _Code, line: int, value: str) -> _Target | None:
    parsed, wanted = _parse_value(value)
    exact, unknown = [], []
    for node in code.on_line(line, cst.Subscript):
        key = _single_index(node)
        if key is None or _in_annotation(code, node):
            continue
        if code.contexts.get(node) in (ExpressionContext.STORE, ExpressionContext.DEL) and not (
            isinstance(code.parent(node), cst.AugAssign)
        ):
            continue
        is_literal, key_value = _literal(key)
        if is_literal and parsed:
            if key_value == wanted and type(key_value) is type(wanted):
                exact.append((node, key, (True, key_value)))
        elif is_literal:
            unknown.append((node, key, (True, key_value)))
        else:
            unknown.append((node, key, (parsed, wanted) if parsed else (False, None)))
    if not exact and not unknown:
        return None
    node, key, key_value = (exact or unknown)[0]
    _, qualname, _, _ = code.function_of(node)
    obj = code.text(node.value)
    key_text = code.bare(key)
    form = "augassign" if isinstance(code.parent(node), cst.AugAssign) else ""
    if _dotted(node.value) in ("os.environ", "environ"):
        form = "environ"
        description = f"reads the environment variable {key_text} ({code.text(node)}), which is not set"
    else:
        shown = repr(key_value[1]) if key_value[0] else key_text
        description = f"reads {code.text(node)} but {obj} has no {shown} key"
    site = CrashSite(MISSING_KEY, code.line_of(node), qualname, code.text(node), obj, key_text, description)
    return _Target(MISSING_KEY, node, node.value, site, key=key, key_value=key_value, form=form)


def _find_index(code: _Code, line: int, value: str) -> _Target | None:
    if "pop" in value:
        for call in code.on_line(line, cst.Call):
            if isinstance(call.func, cst.Attribute) and call.func.attr.value == "pop" and not call.args:
                _, qualname, _, _ = code.function_of(call)
                seq = code.text(call.func.value)
                site = CrashSite(
                    INDEX_OUT_OF_RANGE,
                    code.line_of(call),
                    qualname,
                    code.text(call),
                    seq,
                    "pop()",
                    f"calls {code.text(call)} but {seq} is empty",
                )
                return _Target(INDEX_OUT_OF_RANGE, call, call.func.value, site, form="pop")
    candidates = []
    for node in code.on_line(line, cst.Subscript):
        index = _single_index(node)
        if index is None or _in_annotation(code, node):
            continue
        if code.contexts.get(node) in (ExpressionContext.STORE, ExpressionContext.DEL):
            continue
        is_literal, index_value = _literal(index)
        if is_literal and not isinstance(index_value, int):
            continue  # a string key raises KeyError, not IndexError
        candidates.append((0 if is_literal else 1, node, index, (is_literal, index_value)))
    if not candidates:
        return None
    candidates.sort(key=lambda item: item[0])
    _, node, index, index_value = candidates[0]
    _, qualname, _, _ = code.function_of(node)
    seq = code.text(node.value)
    if index_value[0] and index_value[1] in (0, -1):
        why = f"{seq} is empty"
    elif index_value[0]:
        needed = index_value[1] + 1 if index_value[1] >= 0 else -index_value[1]
        why = f"{seq} has fewer than {needed} items"
    else:
        why = f"{code.bare(index)} is outside {seq}"
    site = CrashSite(
        INDEX_OUT_OF_RANGE,
        code.line_of(node),
        qualname,
        code.text(node),
        seq,
        code.bare(index),
        f"reads {code.text(node)} but {why}",
    )
    return _Target(INDEX_OUT_OF_RANGE, node, node.value, site, key=index, key_value=index_value)


def _find_zero_division(code: _Code, line: int, value: str) -> _Target | None:
    wants_modulo = "modulo" in value
    candidates = []
    for node in code.on_line(line, (cst.BinaryOperation, cst.AugAssign, cst.Call)):
        if isinstance(node, cst.BinaryOperation) and isinstance(
            node.operator, (cst.Divide, cst.FloorDivide, cst.Modulo)
        ):
            if isinstance(node.operator, cst.Modulo) and isinstance(
                node.left, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)
            ):
                continue  # "%s" % value is formatting
            denominator, form = node.right, ""
        elif isinstance(node, cst.AugAssign) and isinstance(
            node.operator, (cst.DivideAssign, cst.FloorDivideAssign, cst.ModuloAssign)
        ):
            denominator, form = node.value, "augassign"
        elif isinstance(node, cst.Call) and _dotted(node.func) == "divmod" and len(node.args) == 2:
            denominator, form = node.args[1].value, "divmod"
        else:
            continue
        is_literal, literal = _literal(denominator)
        if is_literal and literal:
            continue  # a non-zero literal cannot be the zero
        is_modulo = isinstance(getattr(node, "operator", None), (cst.Modulo, cst.ModuloAssign)) or form == "divmod"
        rank = (0 if wants_modulo == is_modulo else 1, 0 if not is_literal else 1)
        candidates.append((rank, node, denominator, form))
    if not candidates:
        return None
    candidates.sort(key=lambda item: item[0])
    _, node, denominator, form = candidates[0]
    _, qualname, _, _ = code.function_of(node)
    den = code.bare(denominator)
    expression = code.text(node)
    description = f"divides by {den} in {expression}, and {den} was 0"
    if isinstance(denominator, cst.Call) and _dotted(denominator.func) == "len" and len(denominator.args) == 1:
        description = f"divides by {den} in {expression}, and {code.bare(denominator.args[0].value)} was empty"
    site = CrashSite(ZERO_DIVISION, code.line_of(node), qualname, expression, den, den, description)
    return _Target(ZERO_DIVISION, node, denominator, site, form=form)


_NO_ATTRIBUTE = re.compile(r"'NoneType' object has no attribute '(?P<attr>\w+)'")
_OPERAND = re.compile(r"unsupported operand type\(s\) for (?P<op>\S+?): '(?P<left>\w+)' and '(?P<right>\w+)'")
_TYPE_DEFAULTS = {"int": "0", "float": "0", "Decimal": "0", "str": '""', "list": "[]", "tuple": "()", "dict": "{}"}
_OPERATORS = {
    "+": (cst.Add, cst.AddAssign),
    "-": (cst.Subtract, cst.SubtractAssign),
    "*": (cst.Multiply, cst.MultiplyAssign),
    "/": (cst.Divide, cst.DivideAssign),
    "//": (cst.FloorDivide, cst.FloorDivideAssign),
    "%": (cst.Modulo, cst.ModuloAssign),
    "**": (cst.Power, cst.PowerAssign),
}


def _find_none(code: _Code, line: int, value: str) -> _Target | None:
    def target(node, subject, detail, description, form="") -> _Target:
        _, qualname, _, _ = code.function_of(node)
        site = CrashSite(
            NONE_VALUE, code.line_of(node), qualname, code.text(node), code.text(subject), detail, description
        )
        return _Target(NONE_VALUE, node, subject, site, form=form)

    attribute = _NO_ATTRIBUTE.search(value)
    if attribute:
        name = attribute.group("attr")
        for node in code.on_line(line, cst.Attribute):
            if node.attr.value == name and not _in_annotation(code, node):
                form = "store" if code.contexts.get(node) in (ExpressionContext.STORE, ExpressionContext.DEL) else ""
                subject = code.text(node.value)
                return target(node, node.value, name, f"uses {code.text(node)} but {subject} is None", form)
        return None
    if "not subscriptable" in value or "does not support item" in value:
        for node in code.on_line(line, cst.Subscript):
            if _in_annotation(code, node):
                continue
            form = "store" if code.contexts.get(node) in (ExpressionContext.STORE, ExpressionContext.DEL) else ""
            subject = code.text(node.value)
            return target(node, node.value, code.text(node), f"reads {code.text(node)} but {subject} is None", form)
        return None
    if "has no len()" in value:
        for node in code.on_line(line, cst.Call):
            if _dotted(node.func) == "len" and len(node.args) == 1:
                subject = node.args[0].value
                return target(
                    node, subject, "len()", f"calls {code.text(node)} but {code.text(subject)} is None", "iterate"
                )
        return None
    if "not iterable" in value or "non-iterable" in value:
        for node in code.on_line(line, (cst.For, cst.CompFor, cst.Call, cst.ComparisonTarget, cst.Assign)):
            subject = None
            form = "iterate"
            if isinstance(node, (cst.For, cst.CompFor)):
                subject = node.iter
            elif isinstance(node, cst.Call) and _dotted(node.func) in _ITERATING_BUILTINS and node.args:
                subject = node.args[0].value
            elif isinstance(node, cst.ComparisonTarget) and isinstance(node.operator, (cst.In, cst.NotIn)):
                subject = node.comparator
            elif isinstance(node, cst.Assign) and isinstance(node.targets[0].target, (cst.Tuple, cst.List)):
                subject, form = node.value, "unpack"
            if subject is not None:
                return target(subject, subject, "iteration", f"iterates over {code.text(subject)} but it is None", form)
        return None
    if "not callable" in value:
        for node in code.on_line(line, cst.Call):
            return target(node, node.func, "call", f"calls {code.text(node.func)} but it is None")
        return None
    operand = _OPERAND.search(value)
    if operand:
        operator_types = _OPERATORS.get(operand.group("op").rstrip("="))
        if operator_types is None:
            return None
        none_left = operand.group("left") == "NoneType"
        other_type = operand.group("right") if none_left else operand.group("left")
        for node in code.on_line(line, (cst.BinaryOperation, cst.AugAssign)):
            if not isinstance(node.operator, operator_types):
                continue
            if isinstance(node, cst.BinaryOperation):
                subject = node.left if none_left else node.right
            else:
                subject = node.target if none_left else node.value
            found = target(
                node,
                subject,
                operand.group("op"),
                f"computes {code.text(node)} but {code.text(subject)} is None",
                "operand" if isinstance(node, cst.BinaryOperation) or not none_left else "store",
            )
            found.operand_default = _TYPE_DEFAULTS.get(other_type, "0")
            return found
    return None


# Known calls that accept a timeout: (keyword, positional index of that parameter or None).
_HTTP_VERBS = {"get", "post", "put", "patch", "delete", "head", "options", "request", "stream"}
_CONSTRUCTOR_TIMEOUTS = {"SMTP": 3, "SMTP_SSL": 3, "HTTPConnection": 2, "HTTPSConnection": 2, "FTP": 4}


def _known_timeout_parameter(callee: str) -> tuple[str, int | None] | None:
    parts = callee.split(".")
    last, owner = parts[-1], (parts[-2] if len(parts) > 1 else "")
    if owner in ("requests", "httpx") and last in _HTTP_VERBS:
        return "timeout", None
    if owner and re.search(r"session|client|http", owner, re.I) and last in _HTTP_VERBS:
        return "timeout", None
    if last == "urlopen":
        return "timeout", 2
    if last == "create_connection" and owner in ("", "socket"):
        return "timeout", 1
    if last == "connect" and ("psycopg" in parts or "psycopg2" in parts or owner in ("Connection", "AsyncConnection")):
        return "connect_timeout", None
    if last in _CONSTRUCTOR_TIMEOUTS:
        return "timeout", _CONSTRUCTOR_TIMEOUTS[last]
    return None


def timeout_functions(sources: Iterable[str]) -> dict[str, tuple[str, int | None]]:
    """Functions defined in `sources` that take a timeout: name → (parameter, positional index)."""
    found: dict[str, tuple[str, int | None]] = {}
    for source in sources:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            positional = [arg.arg for arg in [*node.args.posonlyargs, *node.args.args]]
            if positional and positional[0] in ("self", "cls"):
                positional = positional[1:]
            names = positional + [arg.arg for arg in node.args.kwonlyargs]
            for name in names:
                if name == "timeout" or name.endswith("_timeout"):
                    found.setdefault(node.name, (name, positional.index(name) if name in positional else None))
                    break
    return found


def _find_timeout(code: _Code, line: int, local: Mapping[str, tuple[str, int | None]]) -> _Target | None:
    for call in code.on_line(line, cst.Call):
        callee = _dotted(call.func)
        if not callee:
            continue
        parameter = _known_timeout_parameter(callee) or local.get(callee.split(".")[-1])
        if parameter is None:
            continue
        keyword_name, position = parameter
        _, qualname, _, _ = code.function_of(call)
        existing = next((arg for arg in call.args if arg.keyword and arg.keyword.value == keyword_name), None)
        positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
        has_timeout = False
        replace = None
        if existing is not None:
            if isinstance(existing.value, cst.Name) and existing.value.value == "None":
                replace = existing
            else:
                has_timeout = True
        elif position is not None and len(positional) > position:
            has_timeout = True
        elif any(arg.star == "**" for arg in call.args):
            has_timeout = True  # it may arrive through **kwargs: not ours to guess
        elif keyword_name == "connect_timeout" and positional and "connect_timeout" in code.text(positional[0]):
            has_timeout = True
        if existing is not None and replace is None:
            description = f"calls {callee}(...) with {code.text(existing).strip()}, and it still timed out"
        elif has_timeout and position is not None and len(positional) > position:
            description = f"calls {callee}(...) with a positional timeout, and it still timed out"
        elif has_timeout:
            description = f"calls {callee}(...) and it timed out (a timeout may arrive through its arguments)"
        else:
            description = f"calls {callee}(...) without a timeout, so it waits as long as the other side does"
        site = CrashSite(
            MISSING_TIMEOUT,
            code.line_of(call),
            qualname,
            code.text(call),
            callee,
            keyword_name,
            description,
            has_timeout=has_timeout,
        )
        return _Target(MISSING_TIMEOUT, call, None, site, timeout_keyword=keyword_name, timeout_arg=replace)
    return None


def _find_target(
    code: _Code, line: int, kind: str, value: str, local: Mapping[str, tuple[str, int | None]]
) -> _Target | None:
    if kind == MISSING_KEY:
        return _find_missing_key(code, line, value)
    if kind == INDEX_OUT_OF_RANGE:
        return _find_index(code, line, value)
    if kind == ZERO_DIVISION:
        return _find_zero_division(code, line, value)
    if kind == NONE_VALUE:
        return _find_none(code, line, value)
    if kind == MISSING_TIMEOUT:
        return _find_timeout(code, line, local)
    return None


# --------------------------------------------------------------------------------------
# Rewrites
# --------------------------------------------------------------------------------------


def _replace(code: _Code, old: cst.CSTNode, new_source: str, *, keep_parens: bool = True) -> str:
    new = cst.parse_expression(new_source, config=code.module.config_for_parsing)
    if keep_parens and getattr(old, "lpar", None):
        new = new.with_changes(lpar=old.lpar, rpar=old.rpar)
    return code.module.deep_replace(old, new).code


def _wrap(text: str, node: cst.CSTNode) -> str:
    """`text` in parentheses unless `node` already carries its own."""
    return text if getattr(node, "lpar", None) else f"({text})"


def _placement_problem(code: _Code, node: cst.CSTNode) -> str | None:
    """Why no statement can be put before the one holding `node` without changing its meaning (None when it can)."""
    statement = code.statement_of(node)
    if statement is None:
        return "the culprit line is not inside a statement"
    if isinstance(statement, (cst.FunctionDef, cst.ClassDef, cst.While)):
        return f"the failing expression is in a {type(statement).__name__} header, where a guard cannot go"
    current = code.parent(node)
    while current is not None and current is not statement:
        if isinstance(current, cst.SimpleStatementSuite):
            return "the failing expression is in a one-line block body; a guard before it would change the branch"
        if isinstance(current, cst.If) and isinstance(code.parent(current), cst.If):
            return "the failing expression is in an elif condition"
        if isinstance(current, cst.Else):
            return "the failing expression is in an else branch"
        if isinstance(current, (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp, cst.Lambda)):
            return "the failing value is per item of a comprehension or lambda; a statement guard cannot name it"
        if isinstance(current, (cst.IfExp, cst.BooleanOperation)):
            return "the failing expression is evaluated only on one branch of a condition in its statement"
        current = code.parent(current)
    return None


def _guard_problem(code: _Code, target: _Target) -> str | None:
    """Why a guard statement cannot be put before the culprit statement (None when it can)."""
    problem = _placement_problem(code, target.node)
    if problem:
        return problem
    statement = code.statement_of(target.node)
    subject = target.subject if target.crash_class != MISSING_KEY else target.node.value
    checked = [subject] + ([target.key] if target.key is not None else [])
    for node in checked:
        if node is not None and not _is_pure(node):
            return f"{code.text(node)} has side effects or is costly; a guard would evaluate it twice"
    for named in code.descendants(statement, cst.NamedExpr):
        if isinstance(named.target, cst.Name) and named.target.value in {_root_name(n) for n in checked if n}:
            return f"{named.target.value} is assigned inside the same statement"
    return None


def _is_len_of_pure(node: cst.CSTNode) -> bool:
    return (
        isinstance(node, cst.Call)
        and _dotted(node.func) == "len"
        and len(node.args) == 1
        and not node.args[0].star
        and _is_pure(node.args[0].value)
    )


def _loop_between(code: _Code, statement: cst.CSTNode, function: cst.FunctionDef | None) -> bool:
    """Whether `statement` sits in the body of a loop inside its function (so `continue` skips the item)."""
    previous, current = statement, code.parent(statement)
    while current is not None and current is not function:
        if isinstance(current, (cst.For, cst.While)) and previous is current.body:
            return True
        if isinstance(current, (cst.FunctionDef, cst.ClassDef)):
            return False
        previous, current = current, code.parent(current)
    return False


def _bad_condition(code: _Code, target: _Target) -> str:
    """The condition under which the culprit statement would crash."""
    kind = target.crash_class
    if kind == MISSING_KEY:
        return f"{code.text(target.key)} not in {_paren(code.text(target.node.value), target.node.value)}"
    if kind == INDEX_OUT_OF_RANGE:
        seq = _paren(code.text(target.subject), target.subject)
        is_literal, index = target.key_value
        if target.form == "pop" or (is_literal and index in (0, -1)):
            return f"not {seq}"
        if is_literal and index >= 0:
            return f"len({seq}) <= {index}"
        if is_literal:
            return f"len({seq}) < {-index}"
        return f"not {_good_index(code, target)}"
    if kind == ZERO_DIVISION:
        den = target.subject
        if _is_len_of_pure(den):
            return f"not {_paren(code.text(den.args[0].value), den.args[0].value)}"
        return f"{_paren(code.text(den), den)} == 0"
    return f"{_paren(code.text(target.subject), target.subject)} is None"


def _good_index(code: _Code, target: _Target) -> str:
    seq = _paren(code.text(target.subject), target.subject)
    is_literal, index = target.key_value
    if is_literal and index in (0, -1):
        return seq
    if is_literal and index >= 0:
        return f"len({seq}) > {index}"
    if is_literal:
        return f"len({seq}) >= {-index}"
    index_text = _paren(code.text(target.key), target.key)
    return f"-len({seq}) <= {index_text} < len({seq})"


def _error_class(code: _Code) -> str:
    """The module's own error class when it defines a simple one (a clear domain error), else ValueError."""
    for statement in code.module.body:
        if not isinstance(statement, cst.ClassDef) or not statement.bases:
            continue
        name = statement.name.value
        if not name.endswith(("Error", "Exception")):
            continue
        defines_init = any(
            isinstance(item, cst.FunctionDef) and item.name.value == "__init__"
            for item in getattr(statement.body, "body", ())
        )
        if not defines_init:
            return name
    return "ValueError"


def _error_message(code: _Code, target: _Target) -> str:
    where = _function_label(target.site.function)
    kind = target.crash_class
    if kind == MISSING_KEY:
        shown = repr(target.key_value[1]) if target.key_value[0] else code.bare(target.key)
        return f"{where}: {code.text(target.node.value)} has no {shown} key"
    if kind == INDEX_OUT_OF_RANGE:
        return f"{where}: {target.site.description.split(' but ', 1)[-1]}"
    if kind == ZERO_DIVISION:
        return f"{where}: cannot compute {target.site.expression} because {target.site.description.split(', and ')[-1]}"
    return f"{where}: {code.text(target.subject)} is None"


def _insert_guard(code: _Code, target: _Target, body_source: str, condition: str) -> str:
    statement = code.statement_of(target.node)
    block = code.parent(statement)
    indent = code.module.default_indent
    guard = cst.parse_statement(f"if {condition}:\n{indent}{body_source}\n", config=code.module.config_for_parsing)
    guard = guard.with_changes(leading_lines=statement.leading_lines)
    moved = statement.with_changes(leading_lines=())
    body = list(block.body)
    index = next(i for i, item in enumerate(body) if item is statement)
    body[index : index + 1] = [guard, moved]
    return code.module.deep_replace(block, block.with_changes(body=body)).code


def _value_rewrite(code: _Code, target: _Target) -> tuple[str, str] | str:
    """(new source, change) for the in-place default strategy, or why it does not apply."""
    kind, node = target.crash_class, target.node
    if target.form in ("store", "unpack", "environ"):
        return "the failing expression is an assignment target or an unpacking; it cannot yield a default"
    if kind == MISSING_KEY:
        obj, key = _paren(code.text(node.value), node.value), code.bare(target.key)
        if target.form == "augassign":
            statement = code.parent(node)
            operator = statement.operator
            op = code.text(operator).strip().rstrip("=")
            value = statement.value
            default = "0"
            if isinstance(value, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)):
                default = '""'
            elif isinstance(value, (cst.List, cst.ListComp)):
                default = "[]"
            new = cst.parse_statement(
                f"{code.text(node)} = {obj}.get({key}, {default}) {op} {_paren(code.text(value), value)}\n",
                config=code.module.config_for_parsing,
            ).body[0]
            source = code.module.deep_replace(statement, new).code
            return source, f"{code.text(statement)} now starts from {obj}.get({key}, {default}) when the key is missing"
        default = _default_for(code, node)
        if default is None and _continues(code, node):
            return f"the value of {code.text(node)} is used further on this line; a None default would crash there"
        replacement = f"{obj}.get({key}, {default})" if default is not None else f"{obj}.get({key})"
        return _replace(code, node, replacement), f"{code.text(node)} became {replacement}"
    if kind == INDEX_OUT_OF_RANGE:
        seq = target.subject
        if target.form == "pop":
            default = _default_for(code, node) or "None"
            replacement = f"({code.text(node)} if {code.text(seq)} else {default})"
            if not _is_pure(seq):
                return f"{code.text(seq)} is not a plain value; testing it would evaluate it twice"
            return _replace(code, node, replacement), f"{code.text(node)} became {replacement}"
        if not _is_pure(seq):
            if target.key_value == (True, 0):
                default = _default_for(code, node)
                if default is None and _continues(code, node):
                    return f"the first item of {code.text(seq)} is used further on this line"
                replacement = f"next(iter({code.bare(seq)}), {default or 'None'})"
                return _replace(code, node, replacement), f"{code.text(node)} became {replacement}"
            return f"{code.text(seq)} is not a plain value; testing its length would evaluate it twice"
        top = _chain_top(code, node)
        default = _default_for(code, top) or "None"
        replacement = _wrap(f"{code.bare(top)} if {_good_index(code, target)} else {default}", top)
        return _replace(code, top, replacement), f"{code.text(top)} became {replacement}"
    if kind == ZERO_DIVISION:
        if target.form == "augassign":
            return "an augmented division cannot yield a default in place"
        den = target.subject
        if not (_is_pure(den) or _is_len_of_pure(den) and _is_pure(den.args[0].value)):
            return f"the denominator {code.text(den)} is not a plain value; testing it would evaluate it twice"
        default = "(0, 0)" if target.form == "divmod" else "0"
        condition = code.bare(den.args[0].value) if _is_len_of_pure(den) else code.bare(den)
        replacement = _wrap(f"{code.bare(node)} if {condition} else {default}", node)
        return _replace(code, node, replacement), f"{code.text(node)} became {replacement}"
    # NONE_VALUE
    subject = target.subject
    if not _is_pure(subject):
        return f"{code.text(subject)} is not a plain value; testing it for None would evaluate it twice"
    if target.form == "iterate":
        parent = code.parent(subject)
        inner = f"{code.bare(subject)} or ()"
        replacement = inner if isinstance(parent, cst.Arg) else f"({inner})"
        return _replace(code, subject, replacement, keep_parens=False), f"{code.text(subject)} became {replacement}"
    if target.form == "operand":
        replacement = f"({code.bare(subject)} or {target.operand_default})"
        return _replace(code, subject, replacement, keep_parens=False), f"{code.text(subject)} became {replacement}"
    top = _chain_top(code, subject)
    if top is subject:
        return f"{code.text(subject)} is used whole; there is no expression to guard in place"
    default = _default_for(code, top) or "None"
    replacement = _wrap(f"{code.bare(top)} if {code.bare(subject)} is not None else {default}", top)
    return _replace(code, top, replacement), f"{code.text(top)} became {replacement}"


def _guard_rewrite(code: _Code, target: _Target, mode: str) -> tuple[str, str] | str:
    problem = _guard_problem(code, target)
    if problem:
        return problem
    statement = code.statement_of(target.node)
    function, _, _, _ = code.function_of(statement)
    condition = _bad_condition(code, target)
    if mode == RETURN:
        if function is None:
            return "the culprit line is at module level; there is nothing to return from"
        if _loop_between(code, statement, function):
            body, effect = "continue", "skips the item"
        else:
            is_async_generator = function.asynchronous is not None and bool(code.descendants(function, (cst.Yield,)))
            body = "return" if is_async_generator else "return None"
            effect = "returns None"
    else:
        error = _error_class(code)
        body = f"raise {error}({_error_message(code, target)!r})"
        effect = f"raises {error}"
    return _insert_guard(
        code, target, body, condition
    ), f"a guard `if {condition}: {body}` {effect} before the statement that failed"


_FINDER_PREFIXES = ("get_", "find_", "fetch_", "load_", "lookup_", "read_", "query_", "resolve_", "current_")
_GENERIC_RESULTS = {"fetchone": "row", "match": "match", "search": "match", "json": "payload", "first": "", "get": ""}


def _local_name(code: _Code, subject: cst.CSTNode, function: cst.FunctionDef | None) -> str:
    """A name for `subject`'s value that says what it is (`find_customer(id)` → `customer`) and is free."""
    base = ""
    if _is_len_of_pure(subject) or (isinstance(subject, cst.Call) and _dotted(subject.func) == "len"):
        base = "count"
    elif isinstance(subject, cst.Call):
        callee = _dotted(subject.func).replace("()", "").split(".")
        last = callee[-1] if callee else ""
        if last in _GENERIC_RESULTS:
            base = _GENERIC_RESULTS[last] or (callee[0] if len(callee) > 1 else "")
        else:
            base = f"{last}_result"  # a name that does not say what the value is, made to not clash
            for prefix in _FINDER_PREFIXES:
                if last.startswith(prefix) and len(last) > len(prefix):
                    base = last[len(prefix) :]
                    break
    elif isinstance(subject, cst.Attribute):
        base = subject.attr.value
    base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", base).lower().strip("_")
    if not base.isidentifier() or keyword.iskeyword(base) or hasattr(builtins, base):
        base = "value"
    if function is not None:
        taken = {node.value for node in code.descendants(function, cst.Name)}
    else:
        taken = {node.value for node, _ in code._ordered if isinstance(node, cst.Name)}
    name, number = base, 1
    while name in taken:
        number += 1
        name = f"{base}_{number}"
    return name


def _hoist(
    code: _Code, target: _Target, local: Mapping[str, tuple[str, int | None]]
) -> tuple[_Code, _Target, str] | None:
    """The code with the impure subject assigned to a local before its statement, and the crash re-found there.

    `find_customer(customer_id).email` cannot be tested for None without calling
    find_customer twice; `customer = find_customer(customer_id)` first makes every strategy
    possible on `customer.email`.
    """
    if _placement_problem(code, target.node):
        return None
    statement = code.statement_of(target.node)
    block = code.parent(statement)
    function, _, _, _ = code.function_of(statement)
    name = _local_name(code, target.subject, function)
    assignment = cst.parse_statement(
        f"{name} = {code.bare(target.subject)}\n", config=code.module.config_for_parsing
    ).with_changes(leading_lines=statement.leading_lines)
    replaced = statement.deep_replace(target.subject, cst.Name(name)).with_changes(leading_lines=())
    body = list(block.body)
    index = next(i for i, item in enumerate(body) if item is statement)
    body[index : index + 1] = [assignment, replaced]
    source = code.module.deep_replace(block, block.with_changes(body=body)).code
    line = target.site.line + (1 if code.line_of(statement) <= target.site.line else 0)
    try:
        hoisted = _Code(source)
        again = _find_target(hoisted, line, target.crash_class, target.message, local)
    except Exception:  # noqa: BLE001 — a hoist that does not round-trip is simply not offered
        return None
    if again is None or again.subject is None or not _is_pure(again.subject):
        return None
    again.message = target.message
    return hoisted, again, f"{code.bare(target.subject)} is kept in {name} first; "


def _timeout_rewrite(code: _Code, target: _Target, seconds: int) -> tuple[str, str] | str:
    if target.site.has_timeout:
        return "the call already passes a timeout; the dependency itself is slow"
    call = target.node
    value = cst.Integer(str(seconds))
    if target.timeout_arg is not None:
        new_call = call.deep_replace(target.timeout_arg, target.timeout_arg.with_changes(value=value))
    else:
        argument = cst.Arg(
            value=value,
            keyword=cst.Name(target.timeout_keyword),
            equal=cst.AssignEqual(
                whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
            ),
        )
        args = list(call.args)
        if not args:
            args = [argument]
        elif isinstance(args[-1].comma, cst.Comma):  # a trailing comma: keep one argument per line
            last = args[-1]
            separator = (
                args[-2].comma
                if len(args) > 1 and isinstance(args[-2].comma, cst.Comma)
                else cst.Comma(whitespace_after=call.whitespace_before_args)
            )
            args[-1] = last.with_changes(comma=separator)
            args.append(argument.with_changes(comma=last.comma))
        else:
            args[-1] = args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            args.append(argument)
        new_call = call.with_changes(args=args)
    source = code.module.deep_replace(call, new_call).code
    return source, f"{target.site.subject}(...) now passes {target.timeout_keyword}={seconds}"


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


def _usage_value(code: _Code, node: cst.CSTNode) -> object:
    """A plain value that suits how `node` is used (1 for arithmetic, "x" for string methods ...)."""
    default = _default_for(code, node)
    return {"0": 1, '""': "x", "''": "x", "[]": [], "{}": {}, "()": []}.get(default, _UNKNOWN)


def _access_path(code: _Code, node: cst.CSTNode) -> tuple[str, tuple] | None:
    """(root name, steps) for `name`, `name["a"]["b"]`; None for anything else."""
    steps: list = []
    while isinstance(node, cst.Subscript):
        key = _single_index(node)
        is_literal, value = _literal(key) if key is not None else (False, None)
        if not is_literal or not isinstance(value, (str, int)) or isinstance(value, bool):
            return None
        steps.append(("key", value))
        node = node.value
    if not isinstance(node, cst.Name):
        return None
    return node.value, tuple(reversed(steps))


def _collect_shapes(code: _Code, function: cst.FunctionDef, parameters: list[str]) -> dict[str, _Shape]:
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
                key = _single_index(parent)
                is_literal, value = _literal(key) if key is not None else (False, None)
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


def _regression_call(code: _Code, target: _Target, mode: str) -> RegressionCall | str:
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
                is_literal, default = _literal(param.default)
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
    if mode == RAISE:
        error = _error_class(code)
        expected = error if error == "ValueError" else f"target.{error}"
    return RegressionCall(
        qualname, function.asynchronous is not None, tuple(positional), tuple(keywords), expected_error=expected
    )


def _used(code: _Code, function: cst.FunctionDef, name: str) -> bool:
    return any(node.value == name for node in code.descendants(function.body, cst.Name))


def _failing_input(code: _Code, target: _Target, shapes: dict[str, _Shape]) -> tuple[str, str]:
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
        if _is_len_of_pure(den):
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


# --------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------


def find_site(
    source: str,
    line: int,
    exception_type: str,
    exception_value: str = "",
    *,
    local_timeouts: Mapping[str, tuple[str, int | None]] | None = None,
) -> CrashSite | None:
    """The construct on `line` that raised, or None (no crash class, unparsable file, nothing matching)."""
    target = _target(source, line, exception_type, exception_value, local_timeouts)
    return target[1].site if target else None


def _target(source, line, exception_type, exception_value, local_timeouts) -> tuple[_Code, _Target] | None:
    kind = crash_class(exception_type, exception_value)
    if kind is None or not line or line < 1:
        return None
    try:
        code = _Code(source)
    except (cst.ParserSyntaxError, RecursionError, ValueError):
        return None
    local = dict(local_timeouts or {})
    local.update(timeout_functions([source]))
    try:
        target = _find_target(code, line, kind, exception_value or "", local)
    except Exception:  # noqa: BLE001 — code the finders do not understand has no crash site, it is not an error
        target = None
    if target is None:
        return None
    target.message = exception_value or ""
    return code, target


def plan(
    source: str,
    line: int,
    exception_type: str,
    exception_value: str = "",
    *,
    local_timeouts: Mapping[str, tuple[str, int | None]] | None = None,
) -> Plan | None:
    """Every strategy that applies to the crash on `line`, in order, each with its new source."""
    found = _target(source, line, exception_type, exception_value, local_timeouts)
    if found is None:
        return None
    code, target = found
    site, note = target.site, ""
    if (
        target.crash_class in (NONE_VALUE, ZERO_DIVISION)
        and target.subject is not None
        and not _is_pure(target.subject)
        and target.form not in ("store", "unpack")
    ):
        local = {**timeout_functions([source]), **(local_timeouts or {})}
        hoisted = _hoist(code, target, local)
        if hoisted is not None:
            code, target, note = hoisted
    fixes: list[Fix] = []
    skipped: dict[str, str] = {}
    for strategy in STRATEGIES[target.crash_class]:
        if target.form == "environ":
            skipped[strategy.name] = "a missing environment variable is configuration; a code default would hide it"
            continue
        try:
            if strategy.mode == VALUE:
                result = _value_rewrite(code, target)
            elif strategy.mode == TIMEOUT:
                seconds = DEFAULT_TIMEOUT_SECONDS if strategy.name == "timeout_keyword" else GENEROUS_TIMEOUT_SECONDS
                result = _timeout_rewrite(code, target, seconds)
            else:
                result = _guard_rewrite(code, target, strategy.mode)
        except Exception as exc:  # noqa: BLE001 — odd code must cost one strategy, never the diagnosis
            result = f"the rewrite failed on this code ({type(exc).__name__}: {exc})"
        if isinstance(result, str):
            skipped[strategy.name] = result
            continue
        new_source, change = result
        change = note + change
        try:
            ast.parse(new_source)
        except SyntaxError as exc:  # pragma: no cover - a rewrite bug must not become a patch
            skipped[strategy.name] = f"the rewrite did not parse: {exc}"
            continue
        regression = _regression_call(code, target, strategy.mode)
        raises = _error_class(code) if strategy.mode == RAISE else ""
        if isinstance(regression, str):
            fixes.append(Fix(strategy, site, new_source, change, None, regression, raises))
        else:
            fixes.append(Fix(strategy, site, new_source, change, regression, "", raises))
    return Plan(site, fixes, skipped)


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

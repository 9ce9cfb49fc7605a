"""Finding the crash site: the construct on the culprit line that raised, read with libcst.

The offline analyzer knows where a crash happened (a file and a line) and what was raised.
This module finds the construct on that line that raised it (the `CrashSite`: the
subscript whose key was missing, the division by zero, the attribute read on None, the
call without a timeout) and answers questions about the code around it (is an expression
pure, what default suits how a value is used, which error class the module defines).
Everything goes through libcst's concrete syntax tree, so the rewrites built on it
(`rewrites`) leave every untouched byte of a file unchanged.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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

CRASH_CLASS_LABELS = {
    MISSING_KEY: "missing key",
    INDEX_OUT_OF_RANGE: "index out of range",
    ZERO_DIVISION: "division by zero",
    NONE_VALUE: "None used as a value",
    MISSING_TIMEOUT: "call without a timeout",
}


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


# --------------------------------------------------------------------------------------
# The parsed file
# --------------------------------------------------------------------------------------


class Code:
    """A parsed module with positions, parents and load/store contexts of its nodes.

    `Code.of(source)` shares one parse per source text: parsing a large file with its metadata
    takes a good part of a second, and one diagnosis reads the same files from several places
    (nodes are immutable, so sharing is safe, and node identity holds across those places).
    """

    @staticmethod
    @functools.lru_cache(maxsize=32)
    def of(source: str) -> Code:
        return Code(source)

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


def dotted(node: cst.CSTNode) -> str:
    """`a.b.c` for a Name/Attribute chain; calls in the chain keep their `()`; "" otherwise."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr.value}" if base else ""
    if isinstance(node, cst.Call):
        base = dotted(node.func)
        return f"{base}()" if base else ""
    return ""


def literal(node: cst.CSTNode) -> tuple[bool, object]:
    """(True, value) for a literal node (string, number, True/False/None, tuple of those)."""
    is_literal = (
        isinstance(node, (cst.SimpleString, cst.Integer, cst.Float, cst.ConcatenatedString, cst.UnaryOperation))
        or (isinstance(node, cst.Name) and node.value in ("True", "False", "None"))
        or (isinstance(node, cst.Tuple) and all(literal(element.value)[0] for element in node.elements))
    )
    if not is_literal:
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


def is_pure(node: cst.CSTNode) -> bool:
    """Cheap and side-effect free, so evaluating it twice (guard + use) is safe."""
    if isinstance(node, cst.Name) or literal(node)[0]:
        return True
    if isinstance(node, cst.Attribute):
        return is_pure(node.value)
    if isinstance(node, cst.Subscript):
        return (
            is_pure(node.value)
            and len(node.slice) == 1
            and isinstance(node.slice[0].slice, cst.Index)
            and is_pure(node.slice[0].slice.value)
        )
    if isinstance(node, cst.BinaryOperation):
        return is_pure(node.left) and is_pure(node.right)
    if isinstance(node, cst.UnaryOperation):
        return is_pure(node.expression)
    if isinstance(node, cst.Call):
        return (
            isinstance(node.func, cst.Name)
            and node.func.value in _PURE_BUILTINS
            and all(not arg.star and is_pure(arg.value) for arg in node.args)
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


def root_name(node: cst.CSTNode) -> str:
    while isinstance(node, (cst.Attribute, cst.Subscript)):
        node = node.value
    return node.value if isinstance(node, cst.Name) else ""


def single_index(subscript: cst.Subscript) -> cst.BaseExpression | None:
    if len(subscript.slice) == 1 and isinstance(subscript.slice[0].slice, cst.Index):
        return subscript.slice[0].slice.value
    return None


def chain_top(code: Code, node: cst.CSTNode) -> cst.CSTNode:
    """Climb `x.a`, `x[k]` and `x(...)` links: the whole expression that needs `node` to be there."""
    current = node
    while True:
        parent = code.parent(current)
        if continues(code, current):
            current = parent
        else:
            return current


def _in_annotation(code: Code, node: cst.CSTNode) -> bool:
    current = code.parent(node)
    while current is not None and not isinstance(current, cst.BaseStatement):
        if isinstance(current, cst.Annotation):
            return True
        current = code.parent(current)
    return False


def default_for(code: Code, node: cst.CSTNode) -> str | None:
    """The source of a harmless default for `node`, judged by how its value is used; None when unclear."""
    default = _usage_default(code, node)
    if default == '""':
        current = code.parent(node)
        while current is not None and not isinstance(current, cst.BaseStatement):
            if isinstance(current, cst.FormattedString) and '"' in current.start:
                return "''"  # the same quote inside an f-string is a syntax error before Python 3.12
            current = code.parent(current)
    return default


def _usage_default(code: Code, node: cst.CSTNode) -> str | None:
    parent = code.parent(node)
    if (
        isinstance(parent, cst.Assign)
        and parent.value is node
        and len(parent.targets) == 1
        and isinstance(parent.targets[0].target, cst.Name)
    ):
        # `currency = order["currency"]`: what fits is decided where `currency` is used next.
        later = next_use(code, parent, parent.targets[0].target.value)
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
            name = dotted(call.func)
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
        index = single_index(parent)
        if index is not None and isinstance(index, (cst.SimpleString, cst.ConcatenatedString)):
            return "{}"
        return None
    return None


def next_use(code: Code, assignment: cst.CSTNode, name: str) -> cst.Name | None:
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


def continues(code: Code, node: cst.CSTNode) -> bool:
    """Whether `node`'s value is used further by an attribute, subscript or call (so None would crash again)."""
    parent = code.parent(node)
    return (
        (isinstance(parent, cst.Attribute) and parent.value is node)
        or (isinstance(parent, cst.Subscript) and parent.value is node)
        or (isinstance(parent, cst.Call) and parent.func is node)
    )


def paren(text: str, node: cst.CSTNode) -> str:
    return text if _is_atom(node) else f"({text})"


# --------------------------------------------------------------------------------------
# Finding the crash site
# --------------------------------------------------------------------------------------


@dataclass
class Target:
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


def function_label(function: str) -> str:
    return f"{function}()" if function else "module level"


def _find_missing_key(code: Code, line: int, value: str) -> Target | None:
    parsed, wanted = _parse_value(value)
    exact, unknown = [], []
    for node in code.on_line(line, cst.Subscript):
        key = single_index(node)
        if key is None or _in_annotation(code, node):
            continue
        if code.contexts.get(node) in (ExpressionContext.STORE, ExpressionContext.DEL) and not (
            isinstance(code.parent(node), cst.AugAssign)
        ):
            continue
        is_literal, key_value = literal(key)
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
    if dotted(node.value) in ("os.environ", "environ"):
        form = "environ"
        description = f"reads the environment variable {key_text} ({code.text(node)}), which is not set"
    else:
        shown = repr(key_value[1]) if key_value[0] else key_text
        description = f"reads {code.text(node)} but {obj} has no {shown} key"
    site = CrashSite(MISSING_KEY, code.line_of(node), qualname, code.text(node), obj, key_text, description)
    return Target(MISSING_KEY, node, node.value, site, key=key, key_value=key_value, form=form)


def _find_index(code: Code, line: int, value: str) -> Target | None:
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
                return Target(INDEX_OUT_OF_RANGE, call, call.func.value, site, form="pop")
    candidates = []
    for node in code.on_line(line, cst.Subscript):
        index = single_index(node)
        if index is None or _in_annotation(code, node):
            continue
        if code.contexts.get(node) in (ExpressionContext.STORE, ExpressionContext.DEL):
            continue
        is_literal, index_value = literal(index)
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
    return Target(INDEX_OUT_OF_RANGE, node, node.value, site, key=index, key_value=index_value)


def _find_zero_division(code: Code, line: int, value: str) -> Target | None:
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
        elif isinstance(node, cst.Call) and dotted(node.func) == "divmod" and len(node.args) == 2:
            denominator, form = node.args[1].value, "divmod"
        else:
            continue
        is_literal, value = literal(denominator)
        if is_literal and value:
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
    if isinstance(denominator, cst.Call) and dotted(denominator.func) == "len" and len(denominator.args) == 1:
        description = f"divides by {den} in {expression}, and {code.bare(denominator.args[0].value)} was empty"
    site = CrashSite(ZERO_DIVISION, code.line_of(node), qualname, expression, den, den, description)
    return Target(ZERO_DIVISION, node, denominator, site, form=form)


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


def _find_none(code: Code, line: int, value: str) -> Target | None:
    def target(node, subject, detail, description, form="") -> Target:
        _, qualname, _, _ = code.function_of(node)
        site = CrashSite(
            NONE_VALUE, code.line_of(node), qualname, code.text(node), code.text(subject), detail, description
        )
        return Target(NONE_VALUE, node, subject, site, form=form)

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
            if dotted(node.func) == "len" and len(node.args) == 1:
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
            elif isinstance(node, cst.Call) and dotted(node.func) in _ITERATING_BUILTINS and node.args:
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


def _find_timeout(code: Code, line: int, local: Mapping[str, tuple[str, int | None]]) -> Target | None:
    for call in code.on_line(line, cst.Call):
        callee = dotted(call.func)
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
        return Target(MISSING_TIMEOUT, call, None, site, timeout_keyword=keyword_name, timeout_arg=replace)
    return None


def find_target(
    code: Code, line: int, kind: str, value: str, local: Mapping[str, tuple[str, int | None]]
) -> Target | None:
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


def is_len_of_pure(node: cst.CSTNode) -> bool:
    return (
        isinstance(node, cst.Call)
        and dotted(node.func) == "len"
        and len(node.args) == 1
        and not node.args[0].star
        and is_pure(node.args[0].value)
    )


def error_class(code: Code) -> str:
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


def find_site(
    source: str,
    line: int,
    exception_type: str,
    exception_value: str = "",
    *,
    local_timeouts: Mapping[str, tuple[str, int | None]] | None = None,
) -> CrashSite | None:
    """The construct on `line` that raised, or None (no crash class, unparsable file, nothing matching)."""
    target = locate(source, line, exception_type, exception_value, local_timeouts)
    return target[1].site if target else None


def locate(source, line, exception_type, exception_value, local_timeouts) -> tuple[Code, Target] | None:
    kind = crash_class(exception_type, exception_value)
    if kind is None or not line or line < 1:
        return None
    try:
        code = Code.of(source)
    except (cst.ParserSyntaxError, RecursionError, ValueError):
        return None
    local = dict(local_timeouts or {})
    local.update(timeout_functions([source]))
    try:
        target = find_target(code, line, kind, exception_value or "", local)
    except Exception:  # noqa: BLE001 — code the finders do not understand has no crash site, it is not an error
        target = None
    if target is None:
        return None
    target.message = exception_value or ""
    return code, target

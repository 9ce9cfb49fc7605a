"""What the code around a crash promises: annotations, documented defaults, callers, error reporting.

A fix is right only when it keeps the promises the code already makes (DESIGN.md, "What a
fix must be"). This module reads them from the repository files the traceback points
into, with libcst, and answers the questions the rules ask:

- `none_allowed(function)`: may the function return None? Its return annotation says so
  (`X | None`, `Optional[X]`), or its docstring does ("..., or None", "None when ...").
- `result_use(code, call)`: what a caller does with a call's result — checks it for None,
  carries it as data, returns it, or uses it in a way None would crash (`.attr`,
  `asdict()`, arithmetic, `round()`).
- `documented_default(...)`: a default the code documents for a missing key or attribute —
  the same key read elsewhere as `.get(key, default)`, a `DEFAULT_<NAME>` constant the
  module defines or imports, a dataclass field default, or a docstring saying
  "`name` ... defaults to X". Nothing else counts: an invented default is not documented.
- `business_reason(...)`: whether a value is a business value that must never be invented
  (money: a price, an amount, a total, a currency; or anything on a path that charges,
  pays, refunds, invoices, quotes, ships, reserves or reorders).
- `error_report(...)`: how the layer above a frame reports a refused input — a 4xx
  response it already returns elsewhere (`return Response(400, {"error": ...})`), an
  error class a caller catches and turns into a 4xx (`except ValueError: return
  Response(400, ...)`), or, for a job with no response layer at all, the module's own
  domain error (else `ValueError`), which the job's runner reports.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import ExpressionContext

from remediation.llm.offline.sites import Code, dotted, error_class, literal, next_use

# Words (of identifiers split on "_" and case) that make a value money.
MONEY_WORDS = frozenset(
    """price prices amount amounts cost costs fee fees total totals subtotal balance tax taxes vat charge
    charges payment payments refund refunds salary wage wages credit debit cents currency discount payout
    tip tips surcharge""".split()  # noqa: SIM905 - a word list reads better as text
)
# Words of a function or module name that make its path one that moves money or goods.
SINK_WORDS = frozenset(
    """charge charges capture pay pays payment payments bill billing invoice invoices refund refunds ship
    ships shipping shipment shipments fulfil fulfill fulfilment fulfillment checkout transfer withdraw
    deposit payout quote quotes purchase reserve reservation reorder restock price pricing pack packing
    warehouse stock inventory""".split()  # noqa: SIM905 - a word list reads better as text
)
# Builtins and helpers a None argument crashes (or silently turns into the text "None").
_NONE_CRASHES_IN = frozenset(
    """len round int float abs sum sorted list tuple dict set frozenset max min iter next divmod pow
    asdict astuple replace str format repr bool""".split()  # noqa: SIM905 - a word list reads better as text
)
_NO_DEFAULT = object()
CLIENT_ERROR_NAMES = re.compile(
    r"invalid|validation|badrequest|bad_request|malformed|missing|unprocessable|rejected|refused|notfound", re.I
)


def words(name: str) -> list[str]:
    """`averageOrderValue_cents` → ["average", "order", "value", "cents"]."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name or "")
    return [word for word in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if word]


def business_reason(value_names: Iterable[str], path_names: Iterable[str]) -> str:
    """Why inventing a value here would be a silently wrong business value ("" when it would not).

    `value_names`: what the value is called (the key, the attribute, the variable, the
    function whose result it is). `path_names`: the functions and modules it flows through.
    """
    for name in value_names:
        hit = next((word for word in words(name) if word in MONEY_WORDS), "")
        if hit:
            return f"{name} is money ({hit})"
    for name in path_names:
        hit = next((word for word in words(name) if word in SINK_WORDS), "")
        if hit:
            return f"it is used on a path that moves money or goods ({name})"
    return ""


# ----------------------------------------------------------------------------------- sources


@dataclass
class Function:
    """A function of a repository file, as the rules read it."""

    path: str
    code: Code
    node: cst.FunctionDef
    qualname: str
    is_method: bool = False
    nested: bool = False

    @property
    def name(self) -> str:
        return self.node.name.value

    @property
    def returns(self) -> str:
        """The return annotation's source ("" when there is none)."""
        return self.code.text(self.node.returns.annotation).strip() if self.node.returns else ""

    @property
    def docstring(self) -> str:
        return self.node.get_docstring() or ""

    @property
    def parameters(self) -> list[cst.Param]:
        params = self.node.params
        ordered = [*params.posonly_params, *params.params, *params.kwonly_params]
        if self.is_method and ordered and ordered[0].name.value in ("self", "cls"):
            ordered = ordered[1:]
        return ordered

    def annotation(self, parameter: cst.Param) -> str:
        return self.code.text(parameter.annotation.annotation).strip() if parameter.annotation else ""

    @property
    def importable(self) -> bool:
        return not self.is_method and not self.nested and "." not in self.qualname


class Sources:
    """The repository files a diagnosis was given, parsed once."""

    def __init__(self, files: dict[str, str]):
        self.files = dict(files)
        self._codes: dict[str, Code | None] = {}

    def code(self, path: str) -> Code | None:
        if path not in self._codes:
            try:
                self._codes[path] = Code.of(self.files[path]) if path in self.files else None
            except (cst.ParserSyntaxError, RecursionError, ValueError):
                self._codes[path] = None
        return self._codes[path]

    def codes(self) -> list[tuple[str, Code]]:
        return [(path, code) for path in self.files if (code := self.code(path)) is not None]

    def function_at(self, path: str, line: int | None, name: str = "") -> Function | None:
        """The innermost function of `path` that holds `line` (and is called `name`, when given)."""
        code = self.code(path)
        if code is None or not line:
            return None
        best = None
        for node in code.descendants(code.module, cst.FunctionDef):
            position = code.positions[node]
            holds = position.start.line <= line <= position.end.line and (not name or node.name.value == name)
            if holds and (best is None or code.positions[best].start.line < position.start.line):
                best = node
        if best is None:
            return None
        return self.function(path, best)

    def function(self, path: str, node: cst.FunctionDef) -> Function:
        code = self.code(path)
        _, qualname, is_method, nested = code.function_of(node.body)
        return Function(path, code, node, qualname, is_method, nested)

    def functions_named(self, name: str) -> list[Function]:
        found = []
        for path, code in self.codes():
            for node in code.descendants(code.module, cst.FunctionDef):
                if node.name.value == name:
                    found.append(self.function(path, node))
        return found

    def class_def(self, path: str, name: str) -> tuple[str, cst.ClassDef] | None:
        """The class `name` as `path` sees it: defined there, or imported from another file we have."""
        code = self.code(path)
        if code is None:
            return None
        for statement in code.module.body:
            if isinstance(statement, cst.ClassDef) and statement.name.value == name:
                return path, statement
        origin = imported_from(code, name)
        if origin:
            for other, other_code in self.codes():
                if module_of(other) == origin:
                    for statement in other_code.module.body:
                        if isinstance(statement, cst.ClassDef) and statement.name.value == name:
                            return other, statement
        return None


def module_of(path: str) -> str:
    parts = path[:-3].split("/") if path.endswith(".py") else path.split("/")
    if parts and parts[0] == "src":
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_from(code: Code, name: str) -> str:
    """The module `name` is imported from at the top of the module ("" when it is not imported)."""
    for statement in code.module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                for alias in small.names:
                    bound = alias.asname.name.value if alias.asname else dotted(alias.name)
                    if bound == name and small.module is not None:
                        return dotted(small.module)
    return ""


def module_names(code: Code) -> set[str]:
    """Names a module binds at top level: definitions, assignments and imports."""
    names: set[str] = set()
    for statement in code.module.body:
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            names.add(statement.name.value)
        elif isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.Assign):
                    names.update(t.target.value for t in small.targets if isinstance(t.target, cst.Name))
                elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                    names.add(small.target.value)
                elif isinstance(small, (cst.Import, cst.ImportFrom)) and not isinstance(small.names, cst.ImportStar):
                    for alias in small.names:
                        names.add(alias.asname.name.value if alias.asname else dotted(alias.name).split(".")[0])
    return names


# ----------------------------------------------------------------------------------- None


def none_allowed(function: Function) -> bool | None:
    """True when the annotation or the docstring allows None, False when the annotation excludes it, None if silent."""
    docstring = function.docstring
    if re.search(r"\bor None\b|\bNone (?:when|if|for|otherwise)\b|\breturns? None\b|\bNone means\b", docstring):
        return True
    returns = function.returns
    if not returns:
        return None
    return bool(re.search(r"\bNone\b|\bOptional\[|\bAny\b|^object$", returns))


@dataclass(frozen=True)
class ResultUse:
    """What a caller does with a call's result."""

    tolerates_none: bool
    how: str  # a phrase: "checks it for None", "calls asdict() on it (shop/api.py:44)"
    returned: bool = False  # passed on by `return`: the caller's own contract decides


def result_use(code: Code, call: cst.CSTNode, path: str = "") -> ResultUse:
    """How the value of `call` is used where it is produced."""
    return _use_of(code, call, path, depth=0)


def _where(code: Code, node: cst.CSTNode, path: str) -> str:
    return f" ({path}:{code.line_of(node)})" if path else f" (line {code.line_of(node)})"


def _use_of(code: Code, node: cst.CSTNode, path: str, depth: int) -> ResultUse:
    parent = code.parent(node)
    while isinstance(parent, cst.Await):
        node, parent = parent, code.parent(parent)
    where = _where(code, node, path)
    if isinstance(parent, cst.Assign) and parent.value is node and depth < 3:
        targets = [target.target for target in parent.targets]
        if len(targets) == 1 and isinstance(targets[0], cst.Name):
            later = next_use(code, parent, targets[0].value)
            if later is None:
                return ResultUse(True, f"keeps it in {targets[0].value} and never uses it")
            return _use_of(code, later, path, depth + 1)
        return ResultUse(False, f"unpacks it{where}")
    if isinstance(parent, cst.Attribute) and parent.value is node:
        return ResultUse(False, f"reads .{parent.attr.value} of it{where}")
    if isinstance(parent, cst.Subscript) and parent.value is node:
        return ResultUse(False, f"indexes it{where}")
    if isinstance(parent, cst.Call) and parent.func is node:
        return ResultUse(False, f"calls it{where}")
    if isinstance(parent, cst.Arg):
        call = code.parent(parent)
        name = dotted(call.func).split(".")[-1].replace("()", "") if isinstance(call, cst.Call) else ""
        if name in _NONE_CRASHES_IN:
            return ResultUse(False, f"passes it to {name}(){where}")
        return ResultUse(False, f"passes it to {name or 'a call'}(), which is not documented to accept None{where}")
    if isinstance(parent, (cst.BinaryOperation, cst.UnaryOperation, cst.AugAssign)):
        return ResultUse(False, f"computes with it{where}")
    if isinstance(parent, (cst.Comparison, cst.ComparisonTarget)):
        comparison = parent if isinstance(parent, cst.Comparison) else code.parent(parent)
        operators = [target.operator for target in comparison.comparisons]
        if all(isinstance(op, (cst.Is, cst.IsNot, cst.Equal, cst.NotEqual)) for op in operators):
            return ResultUse(True, f"checks it for None{where}")
        return ResultUse(False, f"compares it{where}")
    if isinstance(parent, (cst.If, cst.While, cst.IfExp, cst.BooleanOperation)) or (
        isinstance(parent, cst.UnaryOperation) and isinstance(parent.operator, cst.Not)
    ):
        return ResultUse(True, f"tests it{where}")
    if isinstance(parent, (cst.DictElement, cst.Element, cst.StarredDictElement)):
        return ResultUse(True, f"carries it as data{where}")
    if isinstance(parent, cst.FormattedStringExpression):
        return ResultUse(False, f'formats it into text, where None would read "None"{where}')
    if isinstance(parent, cst.Return):
        return ResultUse(True, f"returns it{where}", returned=True)
    if isinstance(parent, cst.Expr):
        return ResultUse(True, "discards it")
    if isinstance(parent, (cst.For, cst.CompFor)):
        return ResultUse(False, f"iterates over it{where}")
    return ResultUse(False, f"uses it{where}")


def calls_of(code: Code, name: str) -> list[cst.Call]:
    """Calls in `code` whose callee is named `name` (`name(...)` or `module.name(...)`)."""
    return [
        node
        for node in code.descendants(code.module, cst.Call)
        if dotted(node.func).replace("()", "").split(".")[-1] == name
    ]


# ----------------------------------------------------------------------------------- defaults


@dataclass(frozen=True)
class Documented:
    """A default the code documents, as source usable in the module that needs it."""

    source: str  # e.g. '1', 'DEFAULT_FREQUENCY', '""'
    why: str  # where it is documented


def _constant_name(name: str) -> str:
    return "DEFAULT_" + re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper()


def documented_default(sources: Sources, path: str, name: str, function: Function | None = None) -> Documented | None:
    """The documented default of the key or attribute `name`, spelled so that module `path` can use it."""
    code = sources.code(path)
    if code is None or not name:
        return None
    bound = module_names(code)
    constant = _constant_name(name)
    if constant in bound:
        origin = imported_from(code, constant)
        return Documented(constant, f"{constant} ({'imported from ' + origin if origin else 'defined in ' + path})")
    gets: list[tuple[str, str, int]] = []
    for other, other_code in sources.codes():
        for call in other_code.descendants(other_code.module, cst.Call):
            if not (isinstance(call.func, cst.Attribute) and call.func.attr.value in ("get", "pop")):
                continue
            if len(call.args) != 2 or any(arg.keyword or arg.star for arg in call.args):
                continue
            is_literal, key = literal(call.args[0].value)
            if not is_literal or key != name:
                continue
            default = call.args[1].value
            ok, value = literal(default)
            if ok and value is not None:
                gets.append((repr(value) if not isinstance(value, str) else other_code.text(default), other, call))
            elif isinstance(default, cst.Name) and default.value in bound:
                gets.append((default.value, other, call))
    if gets:
        source, where, call = gets[0]
        line = sources.code(where).line_of(call)
        return Documented(source, f"{where}:{line} reads it as .get({name!r}, {source})")
    for other, other_code in sources.codes():
        for node in other_code.descendants(other_code.module, cst.ClassDef):
            for item in getattr(node.body, "body", ()):
                statement = item.body[0] if isinstance(item, cst.SimpleStatementLine) and item.body else None
                if (
                    isinstance(statement, cst.AnnAssign)
                    and isinstance(statement.target, cst.Name)
                    and statement.target.value == name
                    and statement.value is not None
                ):
                    ok, value = literal(statement.value)
                    if ok and value is not None:
                        return Documented(
                            other_code.text(statement.value),
                            f"{node.name.value}.{name} defaults to {other_code.text(statement.value)} ({other})",
                        )
    docstrings = [function.docstring] if function is not None else []
    docstrings.append(code.module.get_docstring() or "")
    for text in docstrings:
        value = _docstring_default(text, name)
        if value is not _NO_DEFAULT:
            return Documented(repr(value), f"the docstring says {name} defaults to {value!r}")
    return None


def _docstring_default(text: str, name: str) -> object:
    """The value a docstring gives `name` ("`quantity` is optional and defaults to 1"), or _NO_DEFAULT."""
    pattern = rf"`?{re.escape(name)}`?[^.\n]*?\bdefaults? (?:to |is )?(?P<value>\"[^\"]*\"|'[^']*'|-?\d+(?:\.\d+)?|an? empty \w+|empty)"
    match = re.search(pattern, text or "")
    if not match:
        return _NO_DEFAULT
    value = match.group("value")
    if "empty" in value:
        return {"string": "", "list": [], "dict": {}, "mapping": {}}.get(value.split()[-1], "")
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return _NO_DEFAULT


# ----------------------------------------------------------------------------------- error reporting


@dataclass
class Report:
    """How a refused input is reported from one function: a 4xx response, or an error its callers report."""

    kind: str  # "response" (return a 4xx) or "raise"
    status: int | None = None
    template: str = ""  # "response": the call with {message} where the text goes
    error: str = ""  # "raise": the error class, as the module names it
    why: str = ""
    imports: list[str] = field(default_factory=list)

    def statement(self, message: str) -> str:
        if self.kind == "response":
            return "return " + self.template.replace("{message}", message)
        return f"raise {self.error}({message})"


def _status_of(code: Code, call: cst.Call) -> int | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value not in ("status", "status_code", "code"):
            continue
        ok, value = literal(arg.value)
        if ok and isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
    return None


def _message_slot(code: Code, call: cst.Call) -> cst.CSTNode | None:
    """The string (or `str(exc)`) inside a response call that carries the error text."""
    for node in code.descendants(call, (cst.SimpleString, cst.FormattedString, cst.Call)):
        if node is call:
            continue
        if isinstance(node, cst.Call) and dotted(node.func) != "str":
            continue
        parent = code.parent(node)
        if isinstance(parent, cst.DictElement) and parent.key is node:
            continue
        return node
    return None


def response_template(code: Code) -> tuple[str, int, str] | None:
    """(template with {message}, status, the response class) from a 4xx the module already returns."""
    found = []
    for statement in code.descendants(code.module, cst.Return):
        call = statement.value
        if not isinstance(call, cst.Call):
            continue
        status = _status_of(code, call)
        if status is None or not 400 <= status < 500:
            continue
        slot = _message_slot(code, call)
        if slot is None:
            continue
        rank = {400: 0, 422: 1}.get(status, 2)
        found.append((rank, code.line_of(call), call, slot, status))
    if not found:
        return None
    _, _, call, slot, status = min(found, key=lambda item: (item[0], item[1]))
    template_call = call.deep_replace(slot, cst.Name("__QUENCH_MESSAGE__"))
    if status not in (400, 422):
        status_arg = next(arg for arg in call.args if literal(arg.value)[0] and literal(arg.value)[1] == status)
        template_call = template_call.with_changes(
            args=[
                arg.with_changes(value=cst.Integer("400")) if arg.value is status_arg.value else arg
                for arg in template_call.args
            ]
        )
        status = 400
    text = code.module.code_for_node(template_call).replace("__QUENCH_MESSAGE__", "{message}")
    return text, status, dotted(call.func)


def returns_responses(function: Function, response_class: str) -> bool:
    """Whether `function` answers with `response_class` objects (its annotation, or a return of one)."""
    if response_class and function.returns.split("[")[0].split(".")[-1] == response_class.split(".")[-1]:
        return True
    return any(
        isinstance(node.value, cst.Call) and dotted(node.value.func) == response_class
        for node in function.code.descendants(function.node.body, cst.Return)
    )


def caught_here(function: Function, line: int) -> list[tuple[str, int | None, str]]:
    """Error classes a try around `line` in `function` catches and reports: (class, status, how)."""
    code = function.code
    found = []
    for node in code.descendants(function.node.body, cst.Try):
        body_start, body_end = code.positions[node.body].start.line, code.positions[node.body].end.line
        if not body_start <= line <= body_end:
            continue
        for handler in node.handlers:
            if handler.type is None:
                continue
            names = (
                [dotted(element.value) for element in handler.type.elements]
                if isinstance(handler.type, cst.Tuple)
                else [dotted(handler.type)]
            )
            status = None
            for returned in code.descendants(handler.body, cst.Return):
                if isinstance(returned.value, cst.Call):
                    status = _status_of(code, returned.value) or status
            reraised = bool(code.descendants(handler.body, cst.Raise))
            how = f"answers {status}" if status else ("re-raises" if reraised else "handles it")
            found.extend((name, status, how) for name in names if name)
    return found


def module_error_class(code: Code, base: str = "") -> str:
    """The module's own simple error class (a subclass of `base` when given), else ""."""
    for statement in code.module.body:
        if not isinstance(statement, cst.ClassDef) or not statement.bases:
            continue
        name = statement.name.value
        if not name.endswith(("Error", "Exception", "Invalid", "Rejected")) and not CLIENT_ERROR_NAMES.search(name):
            continue
        if any(
            isinstance(item, cst.FunctionDef) and item.name.value == "__init__"
            for item in getattr(statement.body, "body", ())
        ):
            continue
        bases = [dotted(arg.value) for arg in statement.bases]
        if base and base not in bases:
            continue
        return name
    return ""


def class_is_validation_error(sources: Sources, path: str, name: str) -> bool:
    """Whether error class `name` (as `path` knows it) is about bad input, judged by its name, base or docstring."""
    if name.split(".")[-1] in ("ValueError", "TypeError") or CLIENT_ERROR_NAMES.search(name):
        return True
    found = sources.class_def(path, name.split(".")[-1])
    if found is None:
        return False
    _, node = found
    bases = [dotted(arg.value) for arg in node.bases]
    docstring = node.get_docstring() or ""
    return "ValueError" in bases or bool(
        re.search(r"\b(?:invalid|malformed|missing|validation|bad input)\b", docstring, re.I)
    )


def usable_in(code: Code, name: str) -> bool:
    """Whether `name` (an error class) can be raised in this module without a new import."""
    return name.split(".")[0] in module_names(code) or name in ("ValueError", "LookupError")


def is_store(code: Code, node: cst.CSTNode) -> bool:
    return code.contexts.get(node) in (ExpressionContext.STORE, ExpressionContext.DEL)


def default_error_class(code: Code) -> str:
    """What a guard raises when nothing above reports errors: the module's own error class, else ValueError."""
    return module_error_class(code) or error_class(code)

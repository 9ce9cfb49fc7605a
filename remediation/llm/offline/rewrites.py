"""Rewriting the code: each strategy of a crash class as a minimal libcst change.

Strategies, in the order the rules rank them (`rules` decides which are allowed):

- documented default (`*_documented_default`): `x[k]` → `x.get(k, DEFAULT)`, `obj.attr` →
  `(obj.attr if obj is not None else DEFAULT)`, where the code itself documents DEFAULT
  (`contracts.documented_default`);
- boundary check (`*_boundary_check`): a guard where the input enters (an outer frame of
  the traceback) that refuses it the way that layer reports errors: `return
  Response(400, {"error": ...})`, or `raise` the error class a caller turns into a 4xx, or the
  job's own domain error (`boundary_fix`);
- early return (`*_guard_return`): a guard that returns None (or skips the loop item),
  widening `-> T` to `-> T | None` when every caller copes with None;
- in-place default (`*_default`): the failing expression yields a default chosen by how the
  value is used (0 for arithmetic, "" for text, [] for iteration, {} for further keys);
- raising guard (`*_guard_raise`): a guard that raises a clear domain error naming the value
  (the error class the layer above reports, the module's own, else ValueError);
- missing_timeout: add `timeout=10` (or `connect_timeout=` for psycopg); then `timeout=30`.

The guards need to evaluate the missing/zero/None value twice, so it must be a plain
value (a name, an attribute, a literal-keyed subscript); a value that comes from a call
(`find_customer(id).email`) is first kept in a local (`customer = find_customer(id)`).
Every untouched byte of a file (comments, blank lines, quoting, layout) round-trips unchanged.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import libcst as cst

from remediation.llm.offline.sites import (
    INDEX_OUT_OF_RANGE,
    MISSING_KEY,
    MISSING_TIMEOUT,
    NONE_VALUE,
    ZERO_DIVISION,
    Code,
    CrashSite,
    Target,
    chain_top,
    continues,
    default_for,
    dotted,
    error_class,
    find_target,
    function_label,
    is_len_of_pure,
    is_pure,
    literal,
    locate,
    paren,
    root_name,
    timeout_functions,
)

# How a strategy changes the code.
DOCUMENTED = "documented"  # the failing expression yields the default the code documents
BOUNDARY = "boundary"  # a guard where the input enters refuses it the way that layer reports errors
RETURN = "return"  # a guard before the statement returns early (or skips the loop item)
VALUE = "value"  # the failing expression yields a default chosen by how it is used
RAISE = "raise"  # a guard before the statement raises a clear domain error
TIMEOUT = "timeout"  # the call gets an explicit timeout

DEFAULT_TIMEOUT_SECONDS = 10
GENEROUS_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Strategy:
    """One way of fixing one crash class."""

    name: str
    crash_class: str
    mode: str  # DOCUMENTED, BOUNDARY, RETURN, VALUE, RAISE or TIMEOUT
    description: str


STRATEGIES: dict[str, tuple[Strategy, ...]] = {
    MISSING_KEY: (
        Strategy("key_documented_default", MISSING_KEY, DOCUMENTED, "read the key with the default the code documents"),
        Strategy(
            "key_boundary_check", MISSING_KEY, BOUNDARY, "refuse the input where it enters when the key is missing"
        ),
        Strategy(
            "key_guard_return", MISSING_KEY, RETURN, "check for the key first and return early when it is missing"
        ),
        Strategy("key_default", MISSING_KEY, VALUE, "read the key with .get() and a default that fits how it is used"),
        Strategy("key_guard_raise", MISSING_KEY, RAISE, "check for the key first and raise a clear error naming it"),
    ),
    INDEX_OUT_OF_RANGE: (
        Strategy(
            "index_boundary_check", INDEX_OUT_OF_RANGE, BOUNDARY, "refuse the input where it enters when it is empty"
        ),
        Strategy("index_guard_return", INDEX_OUT_OF_RANGE, RETURN, "return early when the sequence is too short"),
        Strategy(
            "index_default", INDEX_OUT_OF_RANGE, VALUE, "yield a default instead of indexing a too-short sequence"
        ),
        Strategy("index_guard_raise", INDEX_OUT_OF_RANGE, RAISE, "raise a clear error when the sequence is too short"),
    ),
    ZERO_DIVISION: (
        Strategy("zero_boundary_check", ZERO_DIVISION, BOUNDARY, "refuse the input where it enters when it is zero"),
        Strategy("zero_guard_return", ZERO_DIVISION, RETURN, "return early when the denominator is zero"),
        Strategy("zero_default", ZERO_DIVISION, VALUE, "guard the denominator in place: the result is 0 when it is 0"),
        Strategy("zero_guard_raise", ZERO_DIVISION, RAISE, "raise a clear error when the denominator is zero"),
    ),
    NONE_VALUE: (
        Strategy(
            "none_documented_default", NONE_VALUE, DOCUMENTED, "use the default the code documents when it is None"
        ),
        Strategy("none_boundary_check", NONE_VALUE, BOUNDARY, "refuse the input where it enters when it is None"),
        Strategy("none_guard_return", NONE_VALUE, RETURN, "return early when the value is None"),
        Strategy("none_default", NONE_VALUE, VALUE, "guard the None value in place: the expression yields a default"),
        Strategy("none_guard_raise", NONE_VALUE, RAISE, "raise a clear error when the value is None"),
    ),
    MISSING_TIMEOUT: (
        Strategy("timeout_keyword", MISSING_TIMEOUT, TIMEOUT, f"pass timeout={DEFAULT_TIMEOUT_SECONDS} to the call"),
        Strategy(
            "timeout_generous", MISSING_TIMEOUT, TIMEOUT, f"pass a more generous timeout={GENEROUS_TIMEOUT_SECONDS}"
        ),
    ),
}


def strategy_named(name: str) -> Strategy | None:
    return next((s for group in STRATEGIES.values() for s in group if s.name == name), None)


@dataclass(frozen=True)
class Fix:
    """One strategy applied to one file: the new file content and what changed."""

    strategy: Strategy
    site: CrashSite
    new_source: str
    change: str  # one sentence: what was replaced by what
    path: str = ""  # the file changed (the culprit's, or the boundary frame's)
    raises: str = ""  # RAISE and raising BOUNDARY strategies: the error class raised
    default: str = ""  # DOCUMENTED and VALUE: the default's source
    returns_none: bool = False  # the function now returns None for the failing input
    skips_item: bool = False  # RETURN inside a loop: the item is skipped
    widens: str = ""  # the return annotation widened to allow None (the new annotation)
    function: str = ""  # the function changed (qualified)


@dataclass(frozen=True)
class Plan:
    """The crash site on a line and every strategy that applies to it, in order."""

    site: CrashSite
    fixes: list[Fix] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # strategy name → why it does not apply


# --------------------------------------------------------------------------------------
# Rewrites
# --------------------------------------------------------------------------------------


def _replace(code: Code, old: cst.CSTNode, new_source: str, *, keep_parens: bool = True) -> str:
    new = cst.parse_expression(new_source, config=code.module.config_for_parsing)
    if keep_parens and getattr(old, "lpar", None):
        new = new.with_changes(lpar=old.lpar, rpar=old.rpar)
    return code.module.deep_replace(old, new).code


def _wrap(text: str, node: cst.CSTNode) -> str:
    """`text` in parentheses unless `node` already carries its own."""
    return text if getattr(node, "lpar", None) else f"({text})"


def _placement_problem(code: Code, node: cst.CSTNode) -> str | None:
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


def _guard_problem(code: Code, target: Target) -> str | None:
    """Why a guard statement cannot be put before the culprit statement (None when it can)."""
    problem = _placement_problem(code, target.node)
    if problem:
        return problem
    statement = code.statement_of(target.node)
    subject = target.subject if target.crash_class != MISSING_KEY else target.node.value
    checked = [subject] + ([target.key] if target.key is not None else [])
    for node in checked:
        if node is not None and not is_pure(node):
            return f"{code.text(node)} has side effects or is costly; a guard would evaluate it twice"
    for named in code.descendants(statement, cst.NamedExpr):
        if isinstance(named.target, cst.Name) and named.target.value in {root_name(n) for n in checked if n}:
            return f"{named.target.value} is assigned inside the same statement"
    return None


def _loop_between(code: Code, statement: cst.CSTNode, function: cst.FunctionDef | None) -> bool:
    """Whether `statement` sits in the body of a loop inside its function (so `continue` skips the item)."""
    previous, current = statement, code.parent(statement)
    while current is not None and current is not function:
        if isinstance(current, (cst.For, cst.While)) and previous is current.body:
            return True
        if isinstance(current, (cst.FunctionDef, cst.ClassDef)):
            return False
        previous, current = current, code.parent(current)
    return False


def _bad_condition(code: Code, target: Target) -> str:
    """The condition under which the culprit statement would crash."""
    kind = target.crash_class
    if kind == MISSING_KEY:
        return f"{code.text(target.key)} not in {paren(code.text(target.node.value), target.node.value)}"
    if kind == INDEX_OUT_OF_RANGE:
        seq = paren(code.text(target.subject), target.subject)
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
        if is_len_of_pure(den):
            return f"not {paren(code.text(den.args[0].value), den.args[0].value)}"
        return f"{paren(code.text(den), den)} == 0"
    return f"{paren(code.text(target.subject), target.subject)} is None"


def _good_index(code: Code, target: Target) -> str:
    seq = paren(code.text(target.subject), target.subject)
    is_literal, index = target.key_value
    if is_literal and index in (0, -1):
        return seq
    if is_literal and index >= 0:
        return f"len({seq}) > {index}"
    if is_literal:
        return f"len({seq}) >= {-index}"
    index_text = paren(code.text(target.key), target.key)
    return f"-len({seq}) <= {index_text} < len({seq})"


def fstring(text: str, expression: str = "", after: str = "") -> str:
    """Source of a string: `text` alone, or f"{text}{expression!r}{after}" with quotes that cannot clash."""
    if not expression:
        whole = text + after
        plain = '"' not in whole and "\\" not in whole and whole.isprintable()
        return f'"{whole}"' if plain else repr(whole)
    for quote in ('"', "'"):
        if quote not in expression and quote not in text + after and "\\" not in expression:
            body = (text + "{" + expression + "!r}" + after).replace("{", "{{").replace("}", "}}")
            body = body.replace("{{" + expression + "!r}}", "{" + expression + "!r}")
            return f"f{quote}{body}{quote}"
    return repr(text + expression + after)


def _assigned_call(code: Code, function: cst.FunctionDef | None, name: str) -> cst.Call | None:
    """The call `name` was last assigned from in `function` (`product = find_product(sku)`)."""
    if function is None:
        return None
    found = None
    for node in code.descendants(function.body, cst.Assign):
        if (
            len(node.targets) == 1
            and isinstance(node.targets[0].target, cst.Name)
            and node.targets[0].target.value == name
            and isinstance(node.value, cst.Call)
        ):
            found = node.value
    return found


def error_message(code: Code, target: Target) -> str:
    """Source of the message a raising guard gives: what is wrong, naming the value (an f-string when it varies)."""
    where = function_label(target.site.function)
    kind = target.crash_class
    if kind == MISSING_KEY:
        container = code.text(target.node.value)
        ok, key = target.key_value
        if ok and target.key is not None and literal(target.key)[0]:
            return fstring(f"{where}: {container} is missing {key!r}")
        if target.key is not None and is_pure(target.key):
            return fstring(f"{where}: ", code.bare(target.key), f" is not in {container}")
        return fstring(f"{where}: {container} has no {code.bare(target.key)} key")
    if kind == INDEX_OUT_OF_RANGE:
        return fstring(f"{where}: {target.site.description.split(' but ', 1)[-1]}")
    if kind == ZERO_DIVISION:
        return fstring(
            f"{where}: cannot compute {target.site.expression} because {target.site.description.split(', and ')[-1]}"
        )
    subject = code.text(target.subject)
    function, _, _, _ = code.function_of(target.node)
    lookup = _assigned_call(code, function, subject) if isinstance(target.subject, cst.Name) else None
    if lookup is not None:
        names = [arg.value for arg in lookup.args if isinstance(arg.value, cst.Name) and not arg.keyword]
        if len(names) == 1:
            return fstring(f"{where}: {code.text(lookup.func)}() found nothing for {names[0].value}=", names[0].value)
    return fstring(f"{where}: {subject} is None")


def _insert_guard(code: Code, target: Target, body_source: str, condition: str) -> str:
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


def _value_rewrite(code: Code, target: Target, documented: str = "") -> tuple[str, str, str] | str:
    """(new source, change, default) for an in-place default (`documented` when the code documents one)."""
    kind, node = target.crash_class, target.node
    if target.form in ("store", "unpack", "environ"):
        return "the failing expression is an assignment target or an unpacking; it cannot yield a default"
    if kind == MISSING_KEY:
        obj, key = paren(code.text(node.value), node.value), code.bare(target.key)
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
                f"{code.text(node)} = {obj}.get({key}, {default}) {op} {paren(code.text(value), value)}\n",
                config=code.module.config_for_parsing,
            ).body[0]
            source = code.module.deep_replace(statement, new).code
            return (
                source,
                f"{code.text(statement)} now starts from {obj}.get({key}, {default}) when the key is missing",
                default,
            )
        default = documented or default_for(code, node)
        if default is None and continues(code, node):
            return f"the value of {code.text(node)} is used further on this line; a None default would crash there"
        replacement = f"{obj}.get({key}, {default})" if default is not None else f"{obj}.get({key})"
        return _replace(code, node, replacement), f"{code.text(node)} became {replacement}", default or "None"
    if kind == INDEX_OUT_OF_RANGE:
        seq = target.subject
        if target.form == "pop":
            default = default_for(code, node) or "None"
            replacement = f"({code.text(node)} if {code.text(seq)} else {default})"
            if not is_pure(seq):
                return f"{code.text(seq)} is not a plain value; testing it would evaluate it twice"
            return _replace(code, node, replacement), f"{code.text(node)} became {replacement}", default
        if not is_pure(seq):
            if target.key_value == (True, 0):
                default = default_for(code, node)
                if default is None and continues(code, node):
                    return f"the first item of {code.text(seq)} is used further on this line"
                replacement = f"next(iter({code.bare(seq)}), {default or 'None'})"
                return _replace(code, node, replacement), f"{code.text(node)} became {replacement}", default or "None"
            return f"{code.text(seq)} is not a plain value; testing its length would evaluate it twice"
        top = chain_top(code, node)
        default = default_for(code, top) or "None"
        replacement = _wrap(f"{code.bare(top)} if {_good_index(code, target)} else {default}", top)
        return _replace(code, top, replacement), f"{code.text(top)} became {replacement}", default
    if kind == ZERO_DIVISION:
        if target.form == "augassign":
            return "an augmented division cannot yield a default in place"
        den = target.subject
        if not (is_pure(den) or is_len_of_pure(den) and is_pure(den.args[0].value)):
            return f"the denominator {code.text(den)} is not a plain value; testing it would evaluate it twice"
        default = "(0, 0)" if target.form == "divmod" else "0"
        condition = code.bare(den.args[0].value) if is_len_of_pure(den) else code.bare(den)
        replacement = _wrap(f"{code.bare(node)} if {condition} else {default}", node)
        return _replace(code, node, replacement), f"{code.text(node)} became {replacement}", default
    # NONE_VALUE
    subject = target.subject
    if not is_pure(subject):
        return f"{code.text(subject)} is not a plain value; testing it for None would evaluate it twice"
    if target.form == "iterate":
        parent = code.parent(subject)
        inner = f"{code.bare(subject)} or ()"
        replacement = inner if isinstance(parent, cst.Arg) else f"({inner})"
        source = _replace(code, subject, replacement, keep_parens=False)
        return source, f"{code.text(subject)} became {replacement}", "()"
    if target.form == "operand":
        replacement = f"({code.bare(subject)} or {target.operand_default})"
        source = _replace(code, subject, replacement, keep_parens=False)
        return source, f"{code.text(subject)} became {replacement}", target.operand_default
    top = chain_top(code, subject)
    if top is subject:
        return f"{code.text(subject)} is used whole; there is no expression to guard in place"
    default = documented or default_for(code, top) or "None"
    replacement = _wrap(f"{code.bare(top)} if {code.bare(subject)} is not None else {default}", top)
    return _replace(code, top, replacement), f"{code.text(top)} became {replacement}", default


def _guard_rewrite(code: Code, target: Target, mode: str, raise_class: str = "") -> tuple[str, str, dict] | str:
    """(new source, change, what it does) for a guard before the culprit statement, or why it does not apply."""
    problem = _guard_problem(code, target)
    if problem:
        return problem
    statement = code.statement_of(target.node)
    function, _, _, _ = code.function_of(statement)
    condition = _bad_condition(code, target)
    flags: dict = {}
    if mode == RETURN:
        if function is None:
            return "the culprit line is at module level; there is nothing to return from"
        if _loop_between(code, statement, function):
            body, effect = "continue", "skips the item"
            flags["skips_item"] = True
        else:
            is_async_generator = function.asynchronous is not None and bool(code.descendants(function, (cst.Yield,)))
            body = "return" if is_async_generator else "return None"
            effect = "returns None"
            flags["returns_none"] = True
    else:
        error = raise_class or error_class(code)
        body = f"raise {error}({error_message(code, target)})"
        effect = f"raises {error}"
        flags["raises"] = error
    source = _insert_guard(code, target, body, condition)
    return source, f"a guard `if {condition}: {body}` {effect} before the statement that failed", flags


def widen_return(source: str, function: str, line: int) -> tuple[str, str] | None:
    """`source` with the return annotation of `function` (holding `line`) widened to allow None: (source, new annotation)."""
    try:
        code = Code.of(source)
    except (cst.ParserSyntaxError, RecursionError, ValueError):
        return None
    for node in code.descendants(code.module, cst.FunctionDef):
        position = code.positions[node]
        if node.name.value != function or not position.start.line <= line <= position.end.line:
            continue
        if node.returns is None:
            return None
        old = code.text(node.returns.annotation).strip()
        if re.search(r"\bNone\b|Optional\[", old):
            return None
        new = f"{old} | None"
        annotation = cst.Annotation(cst.parse_expression(new, config=code.module.config_for_parsing))
        return code.module.deep_replace(
            node.returns, node.returns.with_changes(annotation=annotation.annotation)
        ).code, new
    return None


def boundary_fix(
    source: str,
    path: str,
    call_line: int,
    function: str,
    condition: str,
    report: str,
    strategy: Strategy,
    site: CrashSite,
    *,
    raises: str = "",
) -> Fix | str:
    """A guard `if condition: report` before the statement that calls inward on `call_line` of `function`."""
    try:
        code = Code.of(source)
    except (cst.ParserSyntaxError, RecursionError, ValueError) as exc:
        return f"{path} does not parse ({type(exc).__name__})"
    calls = [
        call
        for call in code.on_line(call_line, cst.Call)
        if (found := code.function_of(call)[0]) is not None and found.name.value == function
    ]
    if not calls:
        return f"no call on {path}:{call_line} inside {function}()"
    call = calls[0]
    problem = _placement_problem(code, call)
    if problem:
        return problem
    statement = code.statement_of(call)
    block = code.parent(statement)
    indent = code.module.default_indent
    try:
        guard = cst.parse_statement(f"if {condition}:\n{indent}{report}\n", config=code.module.config_for_parsing)
    except cst.ParserSyntaxError as exc:
        return f"the guard does not parse: {exc}"
    guard = guard.with_changes(leading_lines=statement.leading_lines)
    moved = statement.with_changes(leading_lines=())
    body = list(block.body)
    index = next(i for i, item in enumerate(body) if item is statement)
    body[index : index + 1] = [guard, moved]
    new_source = code.module.deep_replace(block, block.with_changes(body=body)).code
    try:
        ast.parse(new_source)
    except SyntaxError as exc:
        return f"the guard did not parse: {exc}"
    _, qualname, _, _ = code.function_of(call)
    change = f"a guard `if {condition}: {report}` in {qualname}() before {code.text(statement).strip().splitlines()[0]}"
    return Fix(strategy, site, new_source, change, path=path, raises=raises, function=qualname)


_FINDER_PREFIXES = ("get_", "find_", "fetch_", "load_", "lookup_", "read_", "query_", "resolve_", "current_")
_GENERIC_RESULTS = {"fetchone": "row", "match": "match", "search": "match", "json": "payload", "first": "", "get": ""}


def _local_name(code: Code, subject: cst.CSTNode, function: cst.FunctionDef | None) -> str:
    """A name for `subject`'s value that says what it is (`find_customer(id)` → `customer`) and is free."""
    base = ""
    if is_len_of_pure(subject) or (isinstance(subject, cst.Call) and dotted(subject.func) == "len"):
        base = "count"
    elif isinstance(subject, cst.Call):
        callee = dotted(subject.func).replace("()", "").split(".")
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


def _hoist(code: Code, target: Target, local: Mapping[str, tuple[str, int | None]]) -> tuple[Code, Target, str] | None:
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
        hoisted = Code.of(source)
        again = find_target(hoisted, line, target.crash_class, target.message, local)
    except Exception:  # noqa: BLE001 — a hoist that does not round-trip is simply not offered
        return None
    if again is None or again.subject is None or not is_pure(again.subject):
        return None
    again.message = target.message
    return hoisted, again, f"{code.bare(target.subject)} is kept in {name} first; "


def _timeout_rewrite(code: Code, target: Target, seconds: int) -> tuple[str, str] | str:
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


def plan(
    source: str,
    line: int,
    exception_type: str,
    exception_value: str = "",
    *,
    local_timeouts: Mapping[str, tuple[str, int | None]] | None = None,
    documented: str = "",
    raise_class: str = "",
    path: str = "",
) -> Plan | None:
    """Every strategy that applies to the crash on `line` of one file, in order, each with its new source.

    `documented`: the default the code documents for the missing value (spelled for this
    module), which enables the documented-default strategy. `raise_class`: the error class a
    raising guard raises (the one the layer above reports), else the module's own.
    Boundary checks live in other frames' files: see `boundary_fix`.
    """
    found = locate(source, line, exception_type, exception_value, local_timeouts)
    if found is None:
        return None
    code, target = found
    site, note = target.site, ""
    if (
        target.crash_class in (NONE_VALUE, ZERO_DIVISION)
        and target.subject is not None
        and not is_pure(target.subject)
        and target.form not in ("store", "unpack")
    ):
        local = {**timeout_functions([source]), **(local_timeouts or {})}
        hoisted = _hoist(code, target, local)
        if hoisted is not None:
            code, target, note = hoisted
    function, qualname, _, _ = code.function_of(target.node)
    fixes: list[Fix] = []
    skipped: dict[str, str] = {}
    for strategy in STRATEGIES[target.crash_class]:
        if target.form == "environ":
            skipped[strategy.name] = "a missing environment variable is configuration; a code default would hide it"
            continue
        if strategy.mode == BOUNDARY:
            continue  # written by boundary_fix, in the file of the frame where the input enters
        if strategy.mode == DOCUMENTED and not documented:
            skipped[strategy.name] = "the code documents no default for this value"
            continue
        flags: dict = {}
        try:
            if strategy.mode in (VALUE, DOCUMENTED):
                result = _value_rewrite(code, target, documented if strategy.mode == DOCUMENTED else "")
                if not isinstance(result, str):
                    result, flags = result[:2], {"default": result[2]}
            elif strategy.mode == TIMEOUT:
                seconds = DEFAULT_TIMEOUT_SECONDS if strategy.name == "timeout_keyword" else GENEROUS_TIMEOUT_SECONDS
                result = _timeout_rewrite(code, target, seconds)
            else:
                result = _guard_rewrite(code, target, strategy.mode, raise_class)
                if not isinstance(result, str):
                    result, flags = result[:2], result[2]
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
        if strategy.mode in (VALUE, DOCUMENTED) and flags.get("default") == "None" and _returned(code, target):
            flags["returns_none"] = True
        fixes.append(Fix(strategy, site, new_source, change, path=path, function=qualname, **flags))
    return Plan(site, fixes, skipped)


def _returned(code: Code, target: Target) -> bool:
    """Whether the failing expression's value is what its function returns (so a None default is returned)."""
    node = chain_top(code, target.subject if target.crash_class == NONE_VALUE else target.node)
    current = code.parent(node)
    while current is not None and not isinstance(current, cst.BaseStatement):
        if isinstance(current, (cst.Call, cst.BinaryOperation, cst.Subscript, cst.Attribute)):
            return False
        if isinstance(current, cst.Return):
            return True
        current = code.parent(current)
    return isinstance(current, cst.Return)

"""Rebuilding the failing input: what each parameter of each frame must be for the crash to happen again.

Innermost frame first:

1. The culprit: the shape each parameter must have to reach the culprit line and fail there
   (a dict without the key, an empty list, a zero, a None), plus what the function's other
   reads need (`order["items"]` is iterated, `name.upper()` wants text, `RATES[region]`
   wants one of RATES' keys, a helper of the service the value is passed to reads it too).
2. Each caller, outward (`chain`): the call on the caller's traceback line is bound to the
   callee's parameters, and each argument is traced back to the caller's own parameters
   through names, locals, loop variables, `x["key"]`, `x.attr` and dict displays
   (`{**body, "id": order_id}`). The chain carries the failing input as far as every link
   can be traced; a value that comes from a call (`orders_for_shop(shop_id)`) stops it.
3. Writing a frame's call as Python (`call_source`): objects of the service's own classes
   are built from their fields; a request's `method` and `path` come from the event; frame
   locals, when the source sent them as literals, win over everything else.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import ExpressionContext

from remediation.llm.offline.contracts import Function, Sources
from remediation.llm.offline.sites import (
    INDEX_OUT_OF_RANGE,
    MISSING_KEY,
    MISSING_TIMEOUT,
    ZERO_DIVISION,
    Code,
    Target,
    default_for,
    dotted,
    is_len_of_pure,
    is_pure,
    literal,
    single_index,
)

# Event fields a request object's attributes (or an entry point's parameters) are filled from.
REQUEST_FIELDS = ("method", "path", "url", "route")

_UNKNOWN = object()
_UNSET = object()
ITEM = ("item",)


# --------------------------------------------------------------------------------------
# Shapes: what a value must look like
# --------------------------------------------------------------------------------------


class Shape:
    """What a value must look like for the code to reach the culprit line (and fail there)."""

    def __init__(self):
        self.keys: dict[object, Shape] = {}
        self.missing: set[object] = set()
        self.optional: set[object] = set()  # keys read with .get(): may stay out
        self.attrs: dict[str, Shape] = {}
        self.item: Shape | None = None
        self.leaf: object = _UNKNOWN
        self.fixed: object = _UNSET

    def at(self, steps: tuple) -> Shape:
        shape = self
        for step in steps:
            if step == ITEM:
                shape.item = shape.item or Shape()
                shape = shape.item
            elif step[0] == "attr":
                shape = shape.attrs.setdefault(step[1], Shape())
            else:
                shape = shape.keys.setdefault(step[1], Shape())
        return shape

    @property
    def is_dict(self) -> bool:
        return bool(self.keys or self.missing or self.optional)

    @property
    def constrained(self) -> bool:
        """Whether it carries the failing condition (a fixed value or a missing key, here or inside)."""
        if self.fixed is not _UNSET or self.missing:
            return True
        children = [*self.keys.values(), *self.attrs.values(), *([self.item] if self.item else [])]
        return any(child.constrained for child in children)

    @property
    def known(self) -> bool:
        return (
            self.fixed is not _UNSET
            or self.is_dict
            or bool(self.attrs)
            or self.item is not None
            or self.leaf is not _UNKNOWN
        )

    def merge(self, other: Shape) -> None:
        if other.fixed is not _UNSET:
            self.fixed = other.fixed
        if self.leaf is _UNKNOWN:
            self.leaf = other.leaf
        self.missing |= other.missing
        self.optional |= other.optional
        for key, shape in other.keys.items():
            self.keys.setdefault(key, Shape()).merge(shape)
        for key in self.missing:
            self.keys.pop(key, None)
        for name, shape in other.attrs.items():
            self.attrs.setdefault(name, Shape()).merge(shape)
        if other.item is not None:
            self.item = self.item or Shape()
            self.item.merge(other.item)

    def without(self, keys: set) -> Shape:
        """A copy without `keys` (what a `**spread` must hold when the display sets those keys itself)."""
        copy = Shape()
        copy.merge(self)
        for key in keys:
            copy.keys.pop(key, None)
            copy.missing.discard(key)
        return copy


def _steps_text(steps: tuple) -> str:
    text = ""
    for step in steps:
        if step == ITEM:
            return ""
        text += f".{step[1]}" if step[0] == "attr" else f"[{step[1]!r}]"
    return text


# --------------------------------------------------------------------------------------
# Reading one function: aliases, usage shapes, the failing value
# --------------------------------------------------------------------------------------


def _module_dicts(code: Code) -> dict[str, cst.Dict]:
    """Module-level `NAME = {...}` dict displays (route and rate tables)."""
    found = {}
    for statement in code.module.body:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                value = small.value if isinstance(small, (cst.Assign, cst.AnnAssign)) else None
                targets = (
                    [t.target for t in small.targets]
                    if isinstance(small, cst.Assign)
                    else [small.target]
                    if isinstance(small, cst.AnnAssign)
                    else []
                )
                if isinstance(value, cst.Dict):
                    found.update({t.value: value for t in targets if isinstance(t, cst.Name)})
    return found


def _table_key(table: cst.Dict, callee: str = "") -> object:
    """A key of a dict display: the one whose value names `callee` (a dispatch table), else the first literal one."""
    first = _UNKNOWN
    for element in table.elements:
        if not isinstance(element, cst.DictElement):
            continue
        ok, key = literal(element.key)
        if not ok:
            continue
        if callee and dotted(element.value).split(".")[-1] == callee:
            return key
        if first is _UNKNOWN:
            first = key
    return first


class _Reader:
    """One function's parameters as the code reads them: aliases, loop variables, usage shapes."""

    def __init__(self, function: Function, callee: str = "", sources: Sources | None = None, depth: int = 0):
        self.function = function
        self.code = function.code
        self.callee = callee  # the next frame's function, for dispatch tables
        self.sources = sources  # to read the helpers a parameter is passed to
        self.depth = depth
        self.names = [param.name.value for param in function.parameters]
        self.aliases: dict[str, tuple[str, tuple]] = {}
        body = function.node.body
        for _ in range(3):  # aliases of aliases
            for node in self.code.descendants(body, (cst.Assign, cst.For)):
                if isinstance(node, cst.For) and isinstance(node.target, cst.Name):
                    path = self.path_of(node.iter)
                    if path:
                        self.aliases.setdefault(node.target.value, (path[0], (*path[1], ITEM)))
                elif isinstance(node, cst.Assign) and len(node.targets) == 1:
                    target = node.targets[0].target
                    if isinstance(target, cst.Name) and target.value not in self.names:
                        path = self.path_of(node.value)
                        if path:
                            self.aliases.setdefault(target.value, path)

    def path_of(self, node: cst.CSTNode) -> tuple[str, tuple] | None:
        """(parameter, steps) for `param`, `param["a"].b`, an alias of one; None for anything else."""
        steps: list = []
        while True:
            if isinstance(node, cst.Subscript):
                key = single_index(node)
                ok, value = literal(key) if key is not None else (False, None)
                if not ok or isinstance(value, bool) or not isinstance(value, (str, int)):
                    return None
                steps.append(("key", value))
                node = node.value
            elif isinstance(node, cst.Attribute):
                steps.append(("attr", node.attr.value))
                node = node.value
            elif isinstance(node, cst.Call) and dotted(node.func) in ("dict", "list", "copy.copy", "copy.deepcopy"):
                if len(node.args) != 1 or node.args[0].star:
                    return None
                node = node.args[0].value
            else:
                break
        if not isinstance(node, cst.Name):
            return None
        steps.reverse()
        if node.value in self.names:
            return node.value, tuple(steps)
        if node.value in self.aliases:
            root, prefix = self.aliases[node.value]
            return root, (*prefix, *steps)
        return None

    def shapes(self) -> dict[str, Shape]:
        """Each parameter's shape as the function reads it (no failing condition yet)."""
        shapes = {name: Shape() for name in self.names}
        tables = _module_dicts(self.code)
        for node in self.code.descendants(self.function.node.body, cst.Name):
            if self.code.contexts.get(node) != ExpressionContext.LOAD:
                continue
            if node.value not in shapes and node.value not in self.aliases:
                continue
            current = node
            while True:  # climb x["a"] and x.b (but not x.get / x.upper: those are method calls)
                parent = self.code.parent(current)
                if (
                    isinstance(parent, cst.Subscript)
                    and parent.value is current
                    and self.path_of(parent)
                    or (
                        isinstance(parent, cst.Attribute)
                        and parent.value is current
                        and not isinstance(self.code.parent(parent), cst.Call)
                    )
                ):
                    current = parent
                else:
                    break
            path = self.path_of(current)
            if path is None:
                continue
            root, steps = path
            shape = shapes[root].at(steps)
            parent = self.code.parent(current)
            if isinstance(parent, (cst.For, cst.CompFor)) and parent.iter is current:
                shape.item = shape.item or Shape()
                continue
            if isinstance(parent, cst.Attribute) and parent.value is current and parent.attr.value in ("get", "pop"):
                call = self.code.parent(parent)
                if isinstance(call, cst.Call) and call.args:
                    ok, key = literal(call.args[0].value)
                    if ok and isinstance(key, (str, int)) and not isinstance(key, bool):
                        shape.optional.add(key)
                continue
            index_of = self._index_of(current)
            if index_of is not None and isinstance(index_of.value, cst.Name) and index_of.value.value in tables:
                key = _table_key(tables[index_of.value.value], self.callee)
                if key is not _UNKNOWN and shape.leaf is _UNKNOWN:
                    shape.leaf = key
                continue
            helper = self._helper_shape(current)
            if helper is not None:
                shape.merge(helper)
                continue
            if shape.leaf is _UNKNOWN and not shape.is_dict and not shape.attrs:
                shape.leaf = _usage_value(self.code, current)
        return shapes

    def _helper_shape(self, node: cst.CSTNode) -> Shape | None:
        """How a helper of the service reads the argument `node` is passed as (`tax_cents(total, region)`)."""
        parent = self.code.parent(node)
        call = self.code.parent(parent) if isinstance(parent, cst.Arg) else None
        if self.sources is None or self.depth >= 2 or not isinstance(call, cst.Call) or parent.star:
            return None
        name = dotted(call.func).replace("()", "").split(".")[-1]
        if not name or name == self.callee:
            return None
        helpers = self.sources.functions_named(name)
        helper = next((h for h in helpers if h.path == self.function.path), helpers[0] if len(helpers) == 1 else None)
        if helper is None or helper.node is self.function.node:
            return None
        bound = _bind(call, helper)
        parameter = next((param for param, arg in bound.items() if arg is node), None)
        if parameter is None:
            return None
        shape = _Reader(helper, sources=self.sources, depth=self.depth + 1).shapes().get(parameter)
        return shape if shape is not None and shape.known else None

    def _index_of(self, node: cst.CSTNode) -> cst.Subscript | None:
        """The subscript `node` is the index of (`TABLE[node]`)."""
        parent = self.code.parent(node)
        if isinstance(parent, cst.Index):
            element = self.code.parent(parent)
            subscript = self.code.parent(element)
            if isinstance(subscript, cst.Subscript):
                return subscript
        return None


def _usage_value(code: Code, node: cst.CSTNode) -> object:
    """A plain value that suits how `node` is used (1 for arithmetic, "x" for string methods ...)."""
    default = default_for(code, node)
    return {"0": 1, '""': "x", "''": "x", "[]": [], "{}": {}, "()": []}.get(default, _UNKNOWN)


def _failing_value(reader: _Reader, target: Target, shapes: dict[str, Shape]) -> tuple[str, tuple] | str:
    """Put the failing condition on the parameter that carried the bad value: its (parameter, steps) or why not."""
    code = reader.code
    kind = target.crash_class
    if kind == MISSING_TIMEOUT:
        return "reproducing a timeout needs the slow dependency itself"
    if kind == MISSING_KEY:
        container = target.node.value
        path = reader.path_of(container)
        ok, key = target.key_value
        if not ok or isinstance(key, bool) or not isinstance(key, (str, int)):
            return f"the missing key {code.text(target.key)} is not known from the exception"
        if path is None:
            # The container is a constant table (RATES[region]): the key is what came in.
            key_path = reader.path_of(target.key) if target.key is not None else None
            if key_path is None:
                return f"{code.text(container)} does not come from a parameter of the function"
            shapes[key_path[0]].at(key_path[1]).fixed = key
            return key_path
        shape = shapes[path[0]].at(path[1])
        shape.keys.pop(key, None)
        shape.missing.add(key)
        if target.key is not None and (key_path := reader.path_of(target.key)):
            shapes[key_path[0]].at(key_path[1]).fixed = key
        return path
    if kind == INDEX_OUT_OF_RANGE:
        path = reader.path_of(target.subject)
        if path is None:
            return f"{code.text(target.subject)} does not come from a parameter of the function"
        empty: object = "" if "string index" in target.message else () if "tuple index" in target.message else []
        shapes[path[0]].at(path[1]).fixed = empty
        return path
    if kind == ZERO_DIVISION:
        den = target.subject
        node, zero = (den.args[0].value, []) if is_len_of_pure(den) else (den, 0)
        path = reader.path_of(node)
        if path is None:
            return f"the denominator {code.text(den)} does not come from a parameter of the function"
        shapes[path[0]].at(path[1]).fixed = zero
        return path
    path = reader.path_of(target.subject)
    if path is None:
        return f"{code.text(target.subject)} does not come from a parameter of the function"
    shapes[path[0]].at(path[1]).fixed = None
    return path


# --------------------------------------------------------------------------------------
# The chain of frames
# --------------------------------------------------------------------------------------


@dataclass
class Link:
    """One frame of the traceback, as the replay sees it."""

    path: str
    line: int
    function: Function
    shapes: dict[str, Shape]
    value: tuple[str, tuple] | None  # the failing value as (parameter, steps); None when it comes from state
    value_text: str  # the failing value as this frame's code names it at `line` ("" when it cannot)
    call: cst.Call | None = None  # the call on `line` that leads to the next frame
    dynamic: bool = False  # that call does not name the next function (a router, a dispatch table)
    carries: bool = False  # the failing input reaches this frame's parameters
    locals: dict[str, object] = field(default_factory=dict)  # literal frame locals the source sent

    @property
    def name(self) -> str:
        return self.function.name


def _call_to(function: Function, line: int, callee: str) -> tuple[cst.Call, bool] | None:
    """The call on `line` that leads to `callee`: by name, else the one call there that is not a builtin."""
    code = function.code
    calls = [call for call in code.on_line(line, cst.Call) if code.within(call, function.node)]
    named = [call for call in calls if dotted(call.func).replace("()", "").split(".")[-1] == callee]
    if named:
        return named[0], False
    dynamic = [
        call
        for call in calls
        if isinstance(call.func, (cst.Name, cst.Subscript))
        and not (isinstance(call.func, cst.Name) and hasattr(builtins, call.func.value))
        and call.args
    ]
    return (dynamic[0], True) if len(dynamic) == 1 else None


def _bind(call: cst.Call, callee: Function) -> dict[str, cst.CSTNode | None]:
    """Callee parameter → the argument expression the call passes (None: it arrives through *args/**kwargs)."""
    names = [param.name.value for param in callee.parameters]
    bound: dict[str, cst.CSTNode | None] = {}
    position = 0
    starred = False
    for arg in call.args:
        if arg.star == "*":
            starred = True
        elif arg.star == "**":
            continue
        elif arg.keyword is not None:
            bound[arg.keyword.value] = arg.value
        elif not starred and position < len(names):
            bound[names[position]] = arg.value
            position += 1
    return {name: bound.get(name) for name in names}


def _assign(reader: _Reader, node: cst.CSTNode, shape: Shape, shapes: dict[str, Shape]) -> bool:
    """Put `shape` (what the callee needs) on the caller's parameters that `node` comes from."""
    if isinstance(node, cst.Dict):
        explicit: set = set()
        for element in node.elements:
            if isinstance(element, cst.DictElement):
                ok, key = literal(element.key)
                if not ok:
                    continue
                explicit.add(key)
                if key in shape.missing:
                    return False  # the display always sets the key the callee lacked
                if key in shape.keys and not _assign(reader, element.value, shape.keys[key], shapes):
                    return False
        spreads = [element.value for element in node.elements if isinstance(element, cst.StarredDictElement)]
        rest = shape.without(explicit)
        if len(spreads) == 1:
            return _assign(reader, spreads[0], rest, shapes)
        return not rest.constrained
    if isinstance(node, cst.Name) and node.value in reader.aliases:
        pass
    elif isinstance(node, cst.Name) and node.value not in reader.names:
        assigned = _single_assignment(reader, node.value)
        if assigned is not None:
            return _assign(reader, assigned, shape, shapes)
    path = reader.path_of(node)
    if path is None:
        return not shape.constrained
    shapes[path[0]].at(path[1]).merge(shape)
    return True


def _single_assignment(reader: _Reader, name: str) -> cst.CSTNode | None:
    values = [
        node.value
        for node in reader.code.descendants(reader.function.node.body, cst.Assign)
        if len(node.targets) == 1
        and isinstance(node.targets[0].target, cst.Name)
        and node.targets[0].target.value == name
    ]
    return values[0] if len(values) == 1 else None


def _value_in_caller(reader: _Reader, arg: cst.CSTNode | None, steps: tuple) -> tuple[tuple[str, tuple] | None, str]:
    """The failing value in the caller's terms: (parameter path, the source naming it at the call)."""
    if arg is None:
        return None, ""
    text = ""
    if is_pure(arg) and ITEM not in steps:
        text = reader.code.text(arg) + _steps_text(steps)
    node = arg
    if isinstance(node, cst.Name) and node.value not in reader.names and node.value not in reader.aliases:
        node = _single_assignment(reader, node.value) or node
    if isinstance(node, cst.Dict):
        spreads = [element.value for element in node.elements if isinstance(element, cst.StarredDictElement)]
        node = spreads[0] if len(spreads) == 1 else node
    path = reader.path_of(node)
    return ((path[0], (*path[1], *steps)) if path else None), text


@dataclass
class Frame:
    """A traceback frame resolved in the repository."""

    path: str
    line: int
    function: str
    locals: dict[str, object] = field(default_factory=dict)


def chain(sources: Sources, frames: list[Frame], target: Target) -> list[Link]:
    """The frames from the outermost one the failing input can be traced to, down to the culprit."""
    culprit = frames[-1]
    function = sources.function_at(culprit.path, target.site.line, culprit.function)
    if function is None:
        return []
    reader = _Reader(function, sources=sources)
    shapes = reader.shapes()
    failing = _failing_value(reader, target, shapes)
    value = failing if isinstance(failing, tuple) else None
    container = target.node.value if target.crash_class == MISSING_KEY else target.subject
    links = [
        Link(
            culprit.path,
            target.site.line,
            function,
            shapes,
            value,
            function.code.text(container) if container is not None else "",
            carries=value is not None,
            locals=culprit.locals,
        )
    ]
    for frame in reversed(frames[:-1]):
        inner = links[0]
        function = sources.function_at(frame.path, frame.line, frame.function)
        if function is None:
            break
        found = _call_to(function, frame.line, inner.name)
        if found is None:
            break
        call, dynamic = found
        reader = _Reader(function, callee=inner.name, sources=sources)
        shapes = reader.shapes()
        binding = _bind(call, inner.function)
        carries = inner.carries
        for name, needed in inner.shapes.items():
            arg = binding.get(name)
            if arg is None:
                carries = carries and not needed.constrained
                continue
            if not _assign(reader, arg, needed, shapes) and needed.constrained:
                carries = False
        value, text = (None, "")
        if inner.value is not None:
            value, text = _value_in_caller(reader, binding.get(inner.value[0]), inner.value[1])
        links.insert(
            0,
            Link(
                frame.path,
                frame.line,
                function,
                shapes,
                value if carries else None,
                text,
                call,
                dynamic,
                carries and value is not None,
                frame.locals,
            ),
        )
    return links


# --------------------------------------------------------------------------------------
# Writing values as Python
# --------------------------------------------------------------------------------------


_TYPE_DEFAULTS = {"str": "''", "int": "0", "float": "0.0", "bool": "False", "dict": "{}", "list": "[]", "bytes": "b''"}


class _Writer:
    """Writes shapes as Python source in the test, building the service's own classes from their fields."""

    def __init__(self, sources: Sources, path: str, alias: str, event: dict):
        self.sources = sources
        self.path = path  # the entry point's file: classes are reached through its module
        self.alias = alias
        self.event = event
        self.problem = ""

    def value(self, shape: Shape, annotation: str = "", name: str = "") -> str | None:
        if shape.fixed is not _UNSET:
            return repr(shape.fixed)
        klass = _class_name(annotation)
        if shape.attrs or (klass and not shape.is_dict and shape.item is None and shape.leaf is _UNKNOWN):
            return self.instance(klass, shape, name)
        if shape.is_dict:
            items = [
                f"{key!r}: {text}"
                for key, child in shape.keys.items()
                if key not in shape.missing and (text := self.value(child, "str" if not child.known else "", str(key)))
            ]
            if len(items) != len([key for key in shape.keys if key not in shape.missing]):
                return None
            return "{" + ", ".join(items) + "}"
        if shape.item is not None:
            if not shape.item.constrained:
                return "[]"
            item = self.value(shape.item)
            return None if item is None else f"[{item}]"
        if name in REQUEST_FIELDS and self.event.get(name):
            return repr(self.event[name])
        if shape.leaf is not _UNKNOWN:
            return repr(shape.leaf)
        base = annotation.split("|")[0].strip().split("[")[0]
        if "None" in annotation or annotation.startswith("Optional"):
            return "None"
        if base in _TYPE_DEFAULTS:
            return _TYPE_DEFAULTS[base] if base != "str" else "'x'"
        if not annotation:
            return "1"
        self.problem = f"cannot build a value of type {annotation} for {name or 'a parameter'}"
        return None

    def instance(self, klass: str, shape: Shape, name: str) -> str | None:
        found = self.sources.class_def(self.path, klass) if klass else None
        if found is None:
            self.problem = f"cannot build {name or 'an object'}: its class {klass or '(unannotated)'} is not in the repository files read"
            return None
        _, node = found
        fields = _class_fields(found[0], node, self.sources)
        if fields is None:
            self.problem = (
                f"cannot build a {klass}: its fields are not plain annotated attributes or __init__ parameters"
            )
            return None
        args = []
        for field_name, annotation, has_default in fields:
            child = shape.attrs.get(field_name)
            if child is not None and child.known:
                text = self.value(child, annotation, field_name)
            elif field_name in REQUEST_FIELDS and self.event.get(field_name):
                text = repr(self.event[field_name])
            elif has_default:
                continue
            else:
                text = self.value(Shape(), annotation, field_name)
            if text is None:
                return None
            args.append(f"{field_name}={text}")
        missing = set(shape.attrs) - {field_name for field_name, _, _ in fields}
        if missing:
            self.problem = f"{klass} has no field {sorted(missing)[0]} for the value the code reads"
            return None
        return f"{self.alias}.{klass}({', '.join(args)})"


def _class_name(annotation: str) -> str:
    base = annotation.split("|")[0].strip().strip("'\"")
    base = re.sub(r"^Optional\[(.*)\]$", r"\1", base).split("[")[0].split(".")[-1]
    return base if base and base[0].isupper() and base not in ("Any", "Optional", "Callable") else ""


def _class_fields(path: str, node: cst.ClassDef, sources: Sources) -> list[tuple[str, str, bool]] | None:
    """(field, annotation, has a default) of a dataclass-like class or of its __init__."""
    code = sources.code(path)
    body = getattr(node.body, "body", ())
    init = next((item for item in body if isinstance(item, cst.FunctionDef) and item.name.value == "__init__"), None)
    if init is not None:
        params = [*init.params.posonly_params, *init.params.params, *init.params.kwonly_params][1:]
        return [
            (p.name.value, code.text(p.annotation.annotation) if p.annotation else "", p.default is not None)
            for p in params
        ]
    fields = []
    for item in body:
        if isinstance(item, cst.SimpleStatementLine):
            for small in item.body:
                if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                    annotation = code.text(small.annotation.annotation)
                    if annotation.startswith("ClassVar"):
                        continue
                    fields.append((small.target.value, annotation, small.value is not None))
    return fields or None


def _used(function: Function, name: str) -> bool:
    return any(node.value == name for node in function.code.descendants(function.node.body, cst.Name))


def call_source(sources: Sources, link: Link, alias: str, event: dict) -> str | str:
    """The entry call as test code (`entry.dispatch(entry.Request(...))`), or why it cannot be written."""
    function = link.function
    if not function.importable:
        return f"{function.qualname}() is a method or nested function; the replay cannot call it directly"
    if function.node.decorators:
        return f"{function.qualname}() is decorated; calling it directly may not reach the culprit line"
    writer = _Writer(sources, link.path, alias, event)
    positional, keywords = [], []
    posonly = {param.name.value for param in function.node.params.posonly_params}
    for param in function.parameters:
        name = param.name.value
        shape = link.shapes.get(name, Shape())
        annotation = function.annotation(param)
        if name in link.locals:
            text = repr(link.locals[name])
        elif shape.constrained or shape.known:
            text = writer.value(shape, annotation, name)
        elif name in REQUEST_FIELDS and event.get(name):
            text = repr(event[name])
        elif param.default is not None:
            if name in posonly:
                ok, value = literal(param.default)
                if not ok:
                    return f"the positional-only parameter {name!r} has a default the test cannot spell"
                positional.append(repr(value))
            continue
        elif not _used(function, name):
            text = "None"
        else:
            text = writer.value(shape, annotation, name)
        if text is None:
            return writer.problem or f"cannot write a value for the parameter {name!r} of {function.qualname}()"
        if name in posonly:
            positional.append(text)
        else:
            keywords.append(f"{name}={text}")
    call = f"{alias}.{function.qualname}({', '.join([*positional, *keywords])})"
    return f"asyncio.run({call})" if function.node.asynchronous is not None else call


def literal_locals(frame: dict) -> dict[str, object]:
    """A frame's locals the source sent (`vars` as Sentry names them), where each is a Python literal."""
    raw = frame.get("vars") or frame.get("locals") or {}
    found = {}
    if isinstance(raw, dict):
        for name, text in raw.items():
            if not isinstance(name, str) or not isinstance(text, str):
                continue
            try:
                found[name] = ast.literal_eval(text)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
    return found


def request_complete(link: Link) -> bool:
    """Whether the code on the way reads only what the event records of a request (method, path)."""
    for shape in link.shapes.values():
        if set(shape.attrs) - set(REQUEST_FIELDS):
            return False
        if shape.is_dict:
            return False
    return True


def takes_request(sources: Sources, link: Link) -> bool:
    """Whether the frame's parameters include a request: an object with method/path fields, or those names."""
    function = link.function
    names = {param.name.value for param in function.parameters}
    if names & set(REQUEST_FIELDS):
        return True
    for param in function.parameters:
        klass = _class_name(function.annotation(param))
        found = sources.class_def(link.path, klass) if klass else None
        if found is not None:
            fields = {name for name, _, _ in (_class_fields(found[0], found[1], sources) or [])}
            if {"method", "path"} <= fields or "url" in fields:
                return True
    return False

"""How a `Signal` becomes a `Fingerprint`: the order of precedence and the default strategy per kind."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from typing import NamedTuple

from incidents.fingerprinting.components import Component, Fingerprint, FingerprintRuleSpec, make_fingerprint
from incidents.fingerprinting.learning import TemplateBook
from incidents.fingerprinting.normalize import normalize_message, normalize_route
from incidents.sources.base import Frame, Signal, SignalKind

# Labels whose value names one replica, process or address rather than the problem: an
# alert that fires on two pods of one deployment is one incident. Left out of the default
# alert grouping when the source names no grouping labels of its own.
VOLATILE_LABELS = frozenset(
    {
        "instance",
        "pod",
        "pod_name",
        "pod_ip",
        "pod_uid",
        "uid",
        "container_id",
        "image_id",
        "ip",
        "host_ip",
        "node",
        "node_name",
        "nodename",
        "hostname",
        "host",
        "replica",
        "prometheus_replica",
    }
)

# Names a rule's group_by may use, besides `label:<name>`.
GROUPABLE_COMPONENTS = frozenset(
    {
        "service",
        "alertname",
        "exception_type",
        "message",
        "title",
        "frames",
        "route",
        "method",
        "environment",
        "severity",
        "source",
        "logger",
        "labels",
    }
)

_LOGGER_LABELS = ("logger", "logger_name")
_EXCEPTION_PREFIXES = ("builtins.", "exceptions.")
_LIBRARY_ROOTS = ("site-packages/", "dist-packages/")


class _Default(NamedTuple):
    strategy: str
    components: list[Component]
    usable: bool  # something that identifies the problem (not just where it ran) contributes


def compute_fingerprint(
    signal: Signal, rules: Sequence[FingerprintRuleSpec] = (), templates: TemplateBook | None = None
) -> Fingerprint:
    """Fingerprint `signal`: its dedup key, else the first matching rule, else its kind's default, else its title.

    `templates`, the learned templates of the signal's service, groups the message of a log
    signal when the default strategy decides (and learns from it: the caller saves the book
    when `templates.changed`). Without it, the message template alone groups.
    """
    default = _default_strategy(signal)
    dedup_key = (signal.dedup_key or "").strip()
    if dedup_key:
        if signal.dedup_scope:
            key_component = Component(
                "dedup_key",
                (signal.dedup_scope, dedup_key),
                True,
                "the source's own grouping key, within its integration",
            )
        else:
            key_component = Component("dedup_key", (dedup_key,), True, "the source's own grouping key")
        components = [key_component]
        components += [_overridden(component, "overridden by dedup key") for component in default.components]
        return make_fingerprint("dedup_key", components)
    for rule in rules:
        if rule_matches(rule, signal):
            return _apply_rule(rule, signal, default)
    if default.usable:
        if templates is not None and signal.kind == SignalKind.LOG:
            default = _log_default(signal, templates)
        return make_fingerprint(default.strategy, default.components)
    return _fallback(signal, default)


def rule_matches(rule: FingerprintRuleSpec, signal: Signal) -> bool:
    """Whether every matcher of `rule` matches `signal` (an empty matcher matches anything; a bad regex nothing)."""
    if rule.service and rule.service != signal.service:
        return False
    if rule.alertname and rule.alertname != signal.alertname:
        return False
    if rule.exception_type:
        wanted = _exception_type(rule.exception_type)
        actual = _exception_type(signal.exception_type)
        if not actual or wanted not in (actual, actual.rsplit(".", 1)[-1]):
            return False
    if rule.message_pattern:
        pattern = _compile(rule.message_pattern)
        text = "\n".join(part for part in (signal.title, signal.message, signal.exception_value) if part)
        if pattern is None or not pattern.search(text):
            return False
    for name, regex in rule.label_matchers:
        pattern = _compile(regex)
        if pattern is None or not pattern.fullmatch(str(_labels(signal).get(name, ""))):
            return False
    return True


def rule_problems(rule: FingerprintRuleSpec) -> dict[str, str]:
    """What is wrong with a rule, by field: bad regular expressions, unknown group_by names. Empty when fine."""
    problems: dict[str, str] = {}
    if rule.message_pattern and _compile(rule.message_pattern) is None:
        problems["message_pattern"] = "Not a valid regular expression."
    for name, regex in rule.label_matchers:
        if _compile(regex) is None:
            problems["label_matchers"] = f"Label {name!r}: not a valid regular expression."
    unknown = [name for name in rule.group_by if not _is_groupable(name)]
    if unknown:
        problems["group_by"] = f"Unknown component(s): {', '.join(unknown)}."
    return problems


# --- precedence steps ---------------------------------------------------------------------------


def _apply_rule(rule: FingerprintRuleSpec, signal: Signal, default: _Default) -> Fingerprint:
    strategy = f"rule:{rule.name}"
    used: list[Component] = []
    if rule.static_key:
        used.append(Component("static_key", (rule.static_key,), True, f"static key of rule {rule.name!r}"))
        if "service" in rule.group_by:
            used.append(replace(_service(signal), contributes=True, hint=f"rule {rule.name!r} keeps services apart"))
    elif rule.group_by:
        for name in dict.fromkeys(rule.group_by):
            used.append(_rule_component(name, signal, rule.name))
    else:
        used.append(Component("rule", (rule.name,), True, "the rule names nothing to group by: every match is one"))
    names = {component.name for component in used}
    rest = [
        _overridden(component, f"not grouped by under rule {rule.name!r}")
        for component in default.components
        if component.name not in names
    ]
    return make_fingerprint(strategy, used + rest)


def _fallback(signal: Signal, default: _Default) -> Fingerprint:
    text = signal.title or signal.message or signal.exception_value
    if text:
        title = Component("title", (normalize_message(text),), True, "nothing else identifies the problem")
    else:
        title = Component("title", (), True, "no title or message: every such signal of the service is one")
    service = _service(signal)
    components = [service, title] + [
        _overridden(component, "fallback: only the service and the title count")
        for component in default.components
        if component.name not in ("service", "title")
    ]
    return make_fingerprint("fallback", components)


# --- default strategies ---------------------------------------------------------------------------


def _default_strategy(signal: Signal) -> _Default:
    if signal.kind == SignalKind.ERROR:
        return _error_default(signal)
    if signal.kind == SignalKind.ALERT:
        return _alert_default(signal)
    if signal.kind == SignalKind.LOG:
        return _log_default(signal)
    return _Default("fallback", [], False)


def _error_default(signal: Signal) -> _Default:
    exception_type = _exception_component(signal)
    frames = _frames_component(signal.frames)
    text = signal.exception_value or signal.message or signal.title
    if frames.contributes:
        message = Component("message", _template(text), False, "left out: the stack trace identifies the error")
    elif text:
        message = Component("message", _template(text), True, "no stack trace: the message template stands in")
    else:
        message = Component("message", (), False, "no stack trace and no message")
    components = [
        _service(signal),
        exception_type,
        frames,
        message,
        _route(signal),
        _method(signal),
        _environment(signal),
    ]
    usable = exception_type.contributes or frames.contributes or message.contributes
    return _Default("default:error", components, usable)


def _alert_default(signal: Signal) -> _Default:
    alertname = (
        Component("alertname", (signal.alertname,), True, "the alert rule that fired")
        if signal.alertname
        else Component("alertname", (), False, "no alertname")
    )
    labels = _labels_component(signal)
    text = signal.title or signal.message
    if signal.alertname:
        message = Component("message", _template(text), False, "left out: the alertname identifies the alert")
    elif text:
        message = Component("message", _template(text), True, "no alertname: the title template stands in")
    else:
        message = Component("message", (), False, "no alertname, title or message")
    components = [_service(signal), alertname, labels, message, _environment(signal)]
    usable = alertname.contributes or labels.contributes or message.contributes
    return _Default("default:alert", components, usable)


def _log_default(signal: Signal, templates: TemplateBook | None = None) -> _Default:
    text = signal.message or signal.title or signal.exception_value
    if not text:
        message = Component("message", (), False, "no message")
    elif templates is None:
        message = Component("message", _template(text), True, "the message template")
    else:
        message = _learned_message(normalize_message(text), templates)
    logger = _logger(signal)
    exception_type = _exception_component(signal)
    frames = _frames_component(signal.frames)
    if frames.values:
        frames = replace(
            frames, contributes=False, hint="left out for log records: the message template identifies them"
        )
    components = [
        _service(signal),
        message,
        logger,
        exception_type,
        frames,
        _route(signal),
        _method(signal),
        _environment(signal),
    ]
    return _Default("default:log", components, message.contributes or exception_type.contributes)


# --- components ------------------------------------------------------------------------------------


def _service(signal: Signal) -> Component:
    service = (signal.service or "").strip()
    if service:
        return Component("service", (service,), True, "the service it happened in")
    return Component("service", (), False, "no service named")


def _learned_message(template: str, templates: TemplateBook) -> Component:
    """The group key of a log message's template in the service's learned templates (see fingerprinting.learning)."""
    if not template:
        return Component("message", (), False, "no message")
    key = templates.group(template)
    pattern = templates.pattern_of(template)
    if key == template and "<*>" not in pattern:
        return Component("message", (key,), True, "the message template")
    hint = f"the message template, grouped by the learned pattern {pattern!r}"
    if key != template:
        hint += f" (this message: {template!r})"
    return Component("message", (key,), True, hint)


def _environment(signal: Signal) -> Component:
    environment = (signal.environment or "").strip()
    return Component(
        "environment",
        (environment,) if environment else (),
        False,
        "left out: the same problem in staging and production is one problem",
    )


def _logger(signal: Signal) -> Component:
    labels = _labels(signal)
    name = next((str(labels[key]) for key in _LOGGER_LABELS if labels.get(key)), "")
    if name:
        return Component("logger", (name,), True, "the logger that wrote the record")
    return Component("logger", (), False, "no logger name (label logger or logger_name)")


def _exception_component(signal: Signal) -> Component:
    exception_type = _exception_type(signal.exception_type)
    if exception_type:
        return Component("exception_type", (exception_type,), True, "the exception class")
    return Component("exception_type", (), False, "no exception type")


def _route(signal: Signal) -> Component:
    route = normalize_route(signal.path or "")
    if route:
        return Component("route", (route,), True, "route template of the failing request")
    return Component("route", (), False, "no request path")


def _method(signal: Signal) -> Component:
    method = (signal.method or "").strip().upper()
    if method:
        return Component("method", (method,), True, "HTTP method of the failing request")
    return Component("method", (), False, "no request method")


def _frames_component(frames: Sequence[Frame]) -> Component:
    if not frames:
        return Component("frames", (), False, "no stack trace")
    in_app = [frame for frame in frames if frame.in_app]
    if in_app:
        chosen = in_app
        left_out = len(frames) - len(in_app)
        hint = "in-app frames, module and function (line numbers left out)"
        if left_out:
            hint += f"; {left_out} library frame{'s' if left_out != 1 else ''} left out"
    else:
        chosen = list(frames)
        hint = "no in-app frames: all frames, module and function (line numbers left out)"
    values: list[str] = []
    for frame in chosen:
        key = _frame_key(frame)
        # Recursion repeats one frame hundreds of times; its depth is not a different bug.
        if key and (not values or values[-1] != key):
            values.append(key)
    if not values:
        return Component("frames", (), False, "frames name no module, file or function")
    return Component("frames", tuple(values), True, hint)


def _frame_key(frame: Frame) -> str:
    module = (frame.module or "").strip() or _file_key(frame.filename or "")
    function = (frame.function or "").strip()
    if not module and not function:
        return ""
    return f"{module}:{function or '?'}"


def _file_key(filename: str) -> str:
    """A file name stable across checkouts and virtualenvs: the part after site-packages, else the last two parts."""
    path = filename.strip().replace("\\", "/")
    if not path:
        return ""
    for root in _LIBRARY_ROOTS:
        cut = path.rfind(root)
        if cut >= 0:
            return path[cut + len(root) :]
    return "/".join(path.rsplit("/", 2)[-2:]).lstrip("/")


def _labels_component(signal: Signal) -> Component:
    labels = {str(name): str(value) for name, value in _labels(signal).items()}
    if signal.grouping_labels:
        names = sorted({name for name in signal.grouping_labels if name != "alertname"})
        hint = "the labels the source groups by"
    else:
        left_out = sorted(name for name in labels if name in VOLATILE_LABELS)
        names = sorted(
            name for name in labels if name not in VOLATILE_LABELS and name != "alertname" and not name.startswith("__")
        )
        hint = "all labels"
        if left_out:
            hint += f" but volatile ones (left out: {', '.join(left_out)})"
    values = tuple(f"{name}={labels.get(name, '')}" for name in names)
    if not values:
        return Component("labels", (), False, "no labels to group by")
    return Component("labels", values, True, hint)


def _rule_component(name: str, signal: Signal, rule_name: str) -> Component:
    because = f"grouped by under rule {rule_name!r}"
    if name.startswith("label:"):
        label = name.split(":", 1)[1]
        labels = _labels(signal)
        value = str(labels.get(label, ""))
        hint = because if label in labels else f"{because}; the label is missing"
        return Component(name, (f"{label}={value}",), True, hint)
    if name == "service":
        values = tuple(v for v in [(signal.service or "").strip()] if v)
    elif name == "alertname":
        values = tuple(v for v in [signal.alertname] if v)
    elif name == "exception_type":
        values = tuple(v for v in [_exception_type(signal.exception_type)] if v)
    elif name == "message":
        values = _template(signal.message or signal.exception_value or signal.title)
    elif name == "title":
        values = _template(signal.title or signal.message)
    elif name == "frames":
        values = _frames_component(signal.frames).values
    elif name == "route":
        values = _route(signal).values
    elif name == "method":
        values = _method(signal).values
    elif name == "environment":
        values = _environment(signal).values
    elif name == "severity":
        values = tuple(v for v in [signal.severity] if v)
    elif name == "source":
        values = tuple(v for v in [signal.source] if v)
    elif name == "logger":
        values = _logger(signal).values
    elif name == "labels":
        values = _labels_component(signal).values
    else:
        return Component(name, (), False, f"unknown component name in rule {rule_name!r}")
    return Component(name, values, True, because if values else f"{because}; empty on this signal")


# --- helpers ------------------------------------------------------------------------------------------


def _overridden(component: Component, hint: str) -> Component:
    """The component as it stands, no longer contributing (its own hint kept when it never did)."""
    if not component.contributes:
        return component
    return replace(component, contributes=False, hint=hint)


def _labels(signal: Signal) -> dict:
    return signal.labels or {}


def _template(text: str) -> tuple[str, ...]:
    template = normalize_message(text or "")
    return (template,) if template else ()


def _exception_type(name: str) -> str:
    name = (name or "").strip()
    for prefix in _EXCEPTION_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def _is_groupable(name: str) -> bool:
    return name in GROUPABLE_COMPONENTS or (name.startswith("label:") and len(name) > len("label:"))


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None

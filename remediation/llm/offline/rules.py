"""What a fix must satisfy, as rules that rank the offline analyzer's strategies (DESIGN.md "What a fix must be").

`analyze` works out, once per crash and before any fix is chosen:

- the chain of frames the failing input can be traced through (`inputs.chain`);
- whether the code documents a default for the missing value, whether the culprit may
  return None (its annotation or docstring, and what its caller does with the result),
  whether the value is a business value (money, or anything on a path that charges,
  ships or reorders), and how each layer reports a refused input (`contracts`);
- every candidate fix, ranked: a documented default first, then a boundary check where the
  input enters, then an early return where None is allowed, then an in-place default that
  invents nothing that matters, then a raising guard the layer above reports. A candidate
  that breaks a rule is refused with the rule in words (`Analysis.refused`): a None from a
  function whose annotation or caller needs a value, an invented price or count, a skipped
  item on a money path, an error that would escape a request handler as a 5xx;
- what the replay must end in: "serve" when some allowed fix keeps serving the input,
  "refuse" when none does (nothing safe exists: the input must be refused with a clear
  error naming the bad value);
- the risk of each fix: a default or skipped item on a money or goods path is high, a
  boundary check or a raised error (a new 4xx or domain error for callers) medium, the rest low.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field

import libcst as cst

from remediation.llm.base import DiagnosisContext
from remediation.llm.offline import contracts, inputs, replay, rewrites, sites
from remediation.llm.offline.contracts import Documented, Function, Report, Sources
from remediation.llm.offline.inputs import Frame, Link
from remediation.llm.offline.replay import Replay
from remediation.llm.offline.rewrites import BOUNDARY, DOCUMENTED, RAISE, RETURN, TIMEOUT, VALUE, Fix
from remediation.llm.offline.sites import Code, Target

logger = logging.getLogger(__name__)

RANK = {DOCUMENTED: 0, BOUNDARY: 1, RETURN: 2, VALUE: 3, RAISE: 4, TIMEOUT: 5}


@dataclass
class Analysis:
    """What the rules worked out about one crash."""

    sources: Sources
    frames: list[Frame]
    target: Target | None = None  # the crash site in the culprit file as the traceback saw it
    code: Code | None = None
    culprit: Function | None = None
    links: list[Link] = field(default_factory=list)
    documented: Documented | None = None
    business: str = ""  # why inventing this value would be wrong ("" when it would not)
    none_ok: bool = False
    none_promised: bool = False  # the annotation or docstring says None is an answer
    none_why: str = ""
    widen: bool = False  # the annotation excludes None but every caller copes: a None-return widens it
    raise_report: Report | None = None  # how a raise at the culprit is reported; None: it would escape as a 5xx
    raise_why: str = ""
    boundary: Link | None = None
    boundary_report: Report | None = None
    fixes: list[Fix] = field(default_factory=list)  # allowed, ranked
    candidates: list[Fix] = field(default_factory=list)  # every fix written, allowed or refused (to recognise one)
    refused: dict[str, str] = field(default_factory=dict)  # strategy → the rule it breaks
    skipped: dict[str, str] = field(default_factory=dict)  # strategy → why it does not apply to this code
    expect: str = replay.SERVE
    expect_why: str = ""
    must_name: tuple[str, ...] = ()
    exception: str = ""
    exception_value: str = ""

    def replay(self, context: DiagnosisContext, *, skip_outer: int = 0) -> Replay | str:
        if self.target is None:
            return "the crash site was not found in the culprit file"
        try:
            return self._plan_replay(context, skip_outer)
        except Exception as exc:  # noqa: BLE001 — a replay the writer does not understand is left out, never a crash
            logger.warning("the replay test could not be planned", exc_info=True)
            return f"the replay could not be planned ({type(exc).__name__})"

    def _plan_replay(self, context: DiagnosisContext, skip_outer: int) -> Replay | str:
        return replay.plan_replay(
            self.sources,
            self.frames,
            self.target,
            event=request_of(context),
            expect=self.expect,
            why=self.expect_why,
            must_name=self.must_name,
            exception=self.exception,
            exception_value=self.exception_value,
            skip_outer=skip_outer,
        )


def request_of(context: DiagnosisContext) -> dict:
    """The failing request as the latest event recorded it (method, path)."""
    for event in context.events:
        if event.get("path") or event.get("method"):
            return {"method": event.get("method") or "", "path": event.get("path") or ""}
    return {}


def analyze(
    context: DiagnosisContext,
    frames: list[Frame],
    culprit_line: int,
    exception_type: str,
    exception_value: str,
    *,
    local_timeouts: dict | None = None,
) -> Analysis:
    """The rules applied to one crash: candidates ranked and refused, the replay's expectation."""
    sources = Sources({file.path: file.content for file in context.source_files})
    analysis = Analysis(sources, frames, exception=exception_type, exception_value=exception_value)
    if not frames:
        return analysis
    culprit_frame = frames[-1]
    source = sources.files.get(culprit_frame.path)
    if source is None:
        return analysis
    located = sites.locate(source, culprit_line, exception_type, exception_value, local_timeouts)
    if located is None:
        return analysis
    analysis.code, analysis.target = located
    target = analysis.target
    analysis.culprit = sources.function_at(culprit_frame.path, target.site.line, culprit_frame.function)
    resolved = [*frames[:-1], dataclasses.replace(culprit_frame, line=target.site.line)]
    analysis.frames = resolved
    try:
        if target.crash_class != sites.MISSING_TIMEOUT:
            analysis.links = inputs.chain(sources, resolved, target)
        _contracts(analysis)
    except Exception:  # noqa: BLE001 — code the chain does not understand costs the callers' view, never the diagnosis
        logger.warning("the rules could not read the callers; judging the culprit alone", exc_info=True)
        analysis.links, analysis.frames = [], resolved[-1:]
        _contracts(analysis)
    _candidates(analysis, source, culprit_line, exception_type, exception_value, local_timeouts)
    return analysis


# ----------------------------------------------------------------------------------- contracts


def _value_names(analysis: Analysis) -> list[str]:
    """What the failing value is called: the key, the attribute, the variable it is kept in, the function returning it."""
    target, code = analysis.target, analysis.code
    names: list[str] = []
    if target.crash_class == sites.MISSING_KEY and target.key_value[0] and sites.literal(target.key)[0]:
        names.append(str(target.key_value[1]))
    if target.crash_class == sites.NONE_VALUE and target.site.detail.isidentifier():
        names.append(target.site.detail)
    if target.subject is not None:
        names.append(code.text(target.subject))
    statement = code.statement_of(target.node)
    body = statement.body[0] if isinstance(statement, cst.SimpleStatementLine) and statement.body else None
    if isinstance(body, cst.Assign):
        names.extend(code.text(t.target) for t in body.targets)
    elif isinstance(body, (cst.AugAssign, cst.AnnAssign)):
        names.append(code.text(body.target))
    elif isinstance(body, cst.Return) and analysis.culprit is not None:
        names.append(analysis.culprit.name)
    return names


def _path_names(analysis: Analysis) -> list[str]:
    names = []
    for frame in analysis.frames:
        names.append(frame.function)
        names.extend(part.removesuffix(".py") for part in frame.path.split("/"))
    return list(dict.fromkeys(names))


def _contracts(analysis: Analysis) -> None:
    target, culprit = analysis.target, analysis.culprit
    analysis.business = contracts.business_reason(_value_names(analysis), _path_names(analysis))
    if target.crash_class == sites.MISSING_KEY and target.key_value[0] and sites.literal(target.key)[0]:
        analysis.documented = contracts.documented_default(
            analysis.sources, analysis.frames[-1].path, str(target.key_value[1]), culprit
        )
    elif target.crash_class == sites.NONE_VALUE and target.site.detail.isidentifier():
        analysis.documented = contracts.documented_default(
            analysis.sources, analysis.frames[-1].path, target.site.detail, culprit
        )
    _none_rules(analysis)
    _reporting(analysis)
    analysis.must_name = _must_name(analysis)


def _none_rules(analysis: Analysis) -> None:
    culprit = analysis.culprit
    if culprit is None:
        analysis.none_ok, analysis.none_why = False, "the culprit function was not found"
        return
    allowed = contracts.none_allowed(culprit)
    uses: list[tuple[str, contracts.ResultUse]] = []
    links = analysis.links
    if len(links) >= 2 and links[-2].call is not None:
        caller = links[-2]
        use = contracts.result_use(caller.function.code, caller.call, caller.path)
        if use.returned:
            outer = contracts.none_allowed(caller.function)
            use = dataclasses.replace(use, tolerates_none=outer is True)
        uses.append((f"{caller.function.qualname}()", use))
    for path, code in analysis.sources.codes():
        for call in contracts.calls_of(code, culprit.name):
            holder = code.function_of(call)[0]
            if holder is culprit.node or (links[-2:-1] and call is links[-2].call):
                continue
            use = contracts.result_use(code, call, path)
            if use.returned:
                owner = analysis.sources.function_at(path, code.line_of(call))
                use = dataclasses.replace(use, tolerates_none=bool(owner and contracts.none_allowed(owner) is True))
            uses.append((f"{holder.name.value}()" if holder else f"{path} (module level)", use))
    refusing = [(who, use) for who, use in uses if not use.tolerates_none]
    annotation = f"-> {culprit.returns}" if culprit.returns else "no return annotation"
    if refusing:
        who, use = refusing[0]
        analysis.none_why = (
            f"{culprit.qualname}() ({annotation}) must not return None: its caller {who} {use.how}, so None "
            "would crash one frame up or pass on a wrong value"
        )
        return
    if allowed is True:
        analysis.none_ok = analysis.none_promised = True
        analysis.none_why = f"{culprit.qualname}() may return None ({annotation}; its docstring or annotation says so)"
    elif allowed is None:
        analysis.none_ok = bool(uses)
        analysis.none_why = (
            f"{culprit.qualname}() promises nothing about None and every caller copes with it"
            if uses
            else f"{culprit.qualname}() promises nothing about None and no caller shows how its result is used"
        )
    else:
        analysis.none_ok = analysis.widen = bool(uses)
        analysis.none_why = (
            f"{culprit.qualname}() is annotated {annotation}, but every caller copes with None, so a None-return "
            f"widens it to -> {culprit.returns} | None"
            if uses
            else f"{culprit.qualname}() is annotated {annotation}: None is not a value it may return"
        )


def _responds(analysis: Analysis, link: Link) -> bool:
    return replay.responds(analysis.sources, link)


def report_for(analysis: Analysis, index: int, *, allow_response: bool) -> tuple[Report | None, str]:
    """How a refusal from links[index] is reported (a 4xx response, or an error a caller reports), and why."""
    links, sources = analysis.links, analysis.sources
    link = links[index]
    code = link.function.code
    if allow_response:
        template = contracts.response_template(code)
        if template is not None and contracts.returns_responses(link.function, template[2]):
            text, status, _ = template
            return Report("response", status, template=text, why=f"{link.function.qualname}() answers {status}"), ""
    for outer in reversed(links[: index + 1]):
        for name, status, how in contracts.caught_here(outer.function, outer.line):
            if status is None or not 400 <= status < 500:
                continue
            # A refused input is a 400 or a 422; a 402 (payment declined) or a 409 means something else.
            if status not in (400, 422) and not contracts.CLIENT_ERROR_NAMES.search(name):
                continue
            if not contracts.class_is_validation_error(sources, outer.path, name):
                continue
            own = contracts.module_error_class(code, base=name.split(".")[-1])
            pick = own or (name if contracts.usable_in(code, name) else "")
            if pick:
                why = f"{outer.function.qualname}() catches {name} and {how}"
                return Report("raise", status, error=pick, why=why), ""
    if not any(_responds(analysis, other) for other in links):
        error = contracts.default_error_class(code)
        return Report(
            "raise", None, error=error, why="no frame answers with responses: the job's runner reports it"
        ), ""
    entry = next((other for other in links if _responds(analysis, other)), links[0])
    return None, (
        f"an error raised in {link.function.qualname}() would escape {entry.function.qualname}(), which answers with "
        "responses, as a 500: nothing on the way turns it into a 4xx"
    )


def _reporting(analysis: Analysis) -> None:
    links = analysis.links
    if not links:
        analysis.raise_report = Report("raise", None, error=sites.error_class(analysis.code), why="no frames to read")
        return
    analysis.raise_report, analysis.raise_why = report_for(analysis, len(links) - 1, allow_response=False)
    for index, link in enumerate(links[:-1]):
        if link.dynamic or not link.carries or not link.value_text:
            continue
        report, _ = report_for(analysis, index, allow_response=True)
        if report is not None and _boundary_condition(analysis, link) is not None:
            analysis.boundary, analysis.boundary_report = link, report
            return


def _readable(text: str) -> str:
    """`payload["address"]` → "address", `request.body` → "body", `order` → "order"."""
    found = re.findall(r"""["']([\w-]+)["']|\.?(\w+)""", text)
    names = [a or b for a, b in found if (a or b) not in ("self",)]
    return names[-1] if names else text


def _boundary_condition(analysis: Analysis, link: Link) -> tuple[str, str] | None:
    """(condition, message source) of a boundary check in `link`'s terms, or None."""
    target, value = analysis.target, link.value_text
    code = link.function.code
    name = _readable(value)
    kind = target.crash_class
    if kind == sites.MISSING_KEY:
        ok, key = target.key_value
        if not ok:
            return None
        container = analysis.code.text(target.node.value)
        if analysis.links[-1].value is not None and sites.literal(target.key)[0]:
            return f"{spelled(key, code)} not in {value}", spelled(f"{name} is missing {key!r}", code)
        table = container if re.fullmatch(r"[A-Za-z_]\w*", container) else ""
        if table and table in contracts.module_names(code):
            return f"{value} not in {table}", rewrites.fstring(f"unknown {name} ", value)
        return None
    if kind == sites.INDEX_OUT_OF_RANGE:
        ok, index = target.key_value
        if target.form == "pop" or (ok and index in (0, -1)):
            return f"not {value}", spelled(f"{name} is empty", code)
        return None
    if kind == sites.ZERO_DIVISION:
        return f"not {value}", rewrites.fstring(f"{name} must not be empty or zero, got ", value)
    if kind == sites.NONE_VALUE:
        return f"{value} is None", spelled(f"{name} is required", code)
    return None


def spelled(value: object, code: Code) -> str:
    """`value` as a literal in the quotes the module mostly uses."""
    text = repr(value)
    if isinstance(value, str) and '"' not in value and "\\" not in text:
        strings = code.descendants(code.module, cst.SimpleString)
        doubles = sum(1 for node in strings if node.value.startswith('"'))
        if doubles * 2 >= len(strings):
            return '"' + value + '"'
    return text


def _must_name(analysis: Analysis) -> tuple[str, ...]:
    target, code = analysis.target, analysis.code
    names: list[str] = []
    if target.crash_class == sites.MISSING_KEY:
        if target.key_value[0]:
            names.append(str(target.key_value[1]))
        if target.key is not None and not sites.literal(target.key)[0]:
            names.append(_readable(code.text(target.key)))
    elif target.subject is not None:
        subject = target.subject.args[0].value if sites.is_len_of_pure(target.subject) else target.subject
        names.append(_readable(code.text(subject)))
        if target.crash_class == sites.NONE_VALUE:
            if isinstance(subject, cst.Call):
                names.extend(_readable(code.text(arg.value)) for arg in subject.args if not arg.star)
            if target.site.detail.isidentifier():
                names.append(target.site.detail)
    if analysis.boundary is not None and not names:
        names.append(_readable(analysis.boundary.value_text))
    return tuple(dict.fromkeys(name for name in names if name))


# ----------------------------------------------------------------------------------- candidates


def _candidates(analysis, source, culprit_line, exception_type, exception_value, local_timeouts) -> None:
    path = analysis.frames[-1].path
    raise_class = analysis.raise_report.error if analysis.raise_report else ""
    plan = rewrites.plan(
        source,
        culprit_line,
        exception_type,
        exception_value,
        local_timeouts=local_timeouts,
        documented=analysis.documented.source if analysis.documented else "",
        raise_class=raise_class,
        path=path,
    )
    fixes: list[Fix] = []
    if plan is not None:
        fixes.extend(plan.fixes)
        analysis.skipped.update(plan.skipped)
        boundary = _boundary_fix(analysis, plan.site)
        if isinstance(boundary, Fix):
            fixes.append(boundary)
        elif boundary:
            analysis.skipped[_strategy(analysis, BOUNDARY).name] = boundary
    analysis.candidates = list(fixes)
    allowed = []
    for fix in fixes:
        verdict = judge(analysis, fix)
        if isinstance(verdict, str):
            analysis.refused[fix.strategy.name] = verdict
        else:
            allowed.append(verdict)
    allowed.sort(key=lambda fix: rank(analysis, fix))
    analysis.fixes = allowed
    _expectation(analysis)


def rank(analysis: Analysis, fix: Fix) -> float:
    """The rules' order: documented behaviour first (a documented default, or the None a function promises)."""
    if fix.returns_none and analysis.none_promised:
        return RANK[DOCUMENTED] + 0.5
    return RANK[fix.strategy.mode]


def _strategy(analysis: Analysis, mode: str) -> rewrites.Strategy | None:
    return next((s for s in rewrites.STRATEGIES[analysis.target.crash_class] if s.mode == mode), None)


def _boundary_fix(analysis: Analysis, site: sites.CrashSite) -> Fix | str:
    strategy = _strategy(analysis, BOUNDARY)
    if strategy is None:
        return ""
    link, report = analysis.boundary, analysis.boundary_report
    if link is None or report is None:
        carried = [item for item in analysis.links[:-1] if item.carries and not item.dynamic]
        if not carried:
            return (
                "the bad value does not come in through a caller's parameters (it comes from state, or is built here)"
            )
        return "no caller can refuse the input the way its layer reports errors"
    condition, message = _boundary_condition(analysis, link)
    statement = report.statement(message)
    return rewrites.boundary_fix(
        analysis.sources.files[link.path],
        link.path,
        link.line,
        link.function.name,
        condition,
        statement,
        strategy,
        site,
        raises=report.error if report.kind == "raise" else "",
    )


def judge(analysis: Analysis, fix: Fix) -> Fix | str:
    """The fix as the rules allow it (a None-return may widen the annotation), or the rule it breaks."""
    mode = fix.strategy.mode
    if mode in (DOCUMENTED, BOUNDARY, TIMEOUT):
        return fix
    if mode == RAISE:
        if analysis.raise_report is None:
            return analysis.raise_why or "nothing above reports a raised error"
        return fix
    if fix.skips_item and analysis.business:
        return f"skipping the item would silently drop a business value: {analysis.business}"
    if mode == VALUE and not fix.returns_none:
        if fix.default == "None":
            return "a None default passes None on as the value, where the code expects a real one"
        if analysis.business:
            return f"an invented default ({fix.default}) would be a silently wrong value: {analysis.business}"
        if analysis.target.crash_class != sites.ZERO_DIVISION and fix.default not in ("[]", "()", "{}"):
            return (
                f"an invented default ({fix.default}) stands in for a value the code documents no default for; "
                "only an empty collection or the result of a ratio over nothing is neutral"
            )
        return fix
    if fix.returns_none:
        if not analysis.none_ok:
            return analysis.none_why or "None is not a value this function may return"
        if analysis.business and not analysis.none_promised:
            return (
                f"{analysis.culprit.qualname if analysis.culprit else 'the function'}() does not promise None, and a "
                f"None passed on as data would be a silently missing value: {analysis.business}"
            )
        if analysis.widen and analysis.culprit is not None:
            widened = rewrites.widen_return(fix.new_source, analysis.culprit.name, fix.site.line)
            if widened is None:
                return analysis.none_why
            source, annotation = widened
            return dataclasses.replace(
                fix,
                new_source=source,
                widens=annotation,
                change=f"{fix.change}; the return annotation becomes -> {annotation}",
            )
    return fix


def _expectation(analysis: Analysis) -> None:
    serving = [fix for fix in analysis.fixes if fix.strategy.mode in (DOCUMENTED, RETURN, VALUE)]
    if serving:
        analysis.expect = replay.SERVE
        first = serving[0]
        if first.strategy.mode == DOCUMENTED:
            analysis.expect_why = f"The code documents a default for it: {analysis.documented.why}."
        elif first.returns_none:
            analysis.expect_why = f"None is an allowed answer here: {analysis.none_why}."
        else:
            analysis.expect_why = "The input is valid and a neutral value is safe here (it is no business value)."
        return
    analysis.expect = replay.REFUSE
    reasons = []
    if analysis.documented is None:
        reasons.append("the code documents no default for it")
    if analysis.business:
        reasons.append(analysis.business)
    if not analysis.none_ok and analysis.none_why:
        reasons.append(analysis.none_why)
    analysis.expect_why = ("Nothing safe exists: " + "; ".join(reasons) + ".") if reasons else "Nothing safe exists."


def risk(analysis: Analysis, fix: Fix | None) -> str:
    """low, medium or high: what the fix changes, on what kind of path."""
    if fix is None:
        return "medium"
    mode = fix.strategy.mode
    if mode == TIMEOUT:
        return "medium"
    if analysis.business and (mode in (DOCUMENTED, VALUE) or fix.skips_item):
        return "high"
    if mode in (BOUNDARY, RAISE) or analysis.business:
        return "medium"
    return "low"

"""Reading a failed attempt: what its test run says, and what earlier attempts and reviewers ask of the next one.

- `TestReport`: the failing test ids, the `E` lines and the summary of a pytest (or
  unittest) run, the replay test's verdicts (`QUENCH REPLAY [kind]: ...`, see `replay`) and
  the type checker's errors (`path:line: error: ...`).
- `verdict`: the critic's WHAT FAILED / WHY / NEXT ATTEMPT MUST for a failed run, in the
  words of the rules: a crash that moved one frame up, a None where a value is promised,
  a silently wrong value, an error that escapes a request handler as a 5xx.
- `guidance`: what the history asks of the next strategy. The replay's verdicts, the type
  checker, tests that expect an error and a reviewer's words ("don't return None, raise a
  clear error", "use the documented default", "validate where the input enters") move
  strategy kinds up or down; a broken replay test is left out, one that never reached the
  culprit is rebuilt from a deeper frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from incidents.sources.traceback import parse_python_traceback
from remediation.llm.base import AttemptRecord
from remediation.llm.offline.replay import TEST_PREFIX
from remediation.llm.offline.rewrites import BOUNDARY, DOCUMENTED, RAISE, RETURN, VALUE, Strategy

MAX_VALUE_CHARS = 200
# The replay test's verdict as the test runner prints the failure (not the test's source lines it quotes).
REPLAY_MARK = re.compile(r"AssertionError: QUENCH REPLAY \[(?P<kind>[\w-]+)\]: (?P<message>.*?)\s*$", re.M)
TYPE_ERROR = re.compile(r"(?m)^(?P<path>[\w./-]+\.py):(?P<line>\d+): error: (?P<message>.+?)(?:\s+\[[\w-]+\])?\s*$")
# Older regression tests were named so; their failures count as the replay's.
TEST_MARKERS = (TEST_PREFIX, "test_quench_regression")


def clip(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def exception_text(exception_type: str, exception_value: str) -> str:
    return f"{exception_type}: {clip(exception_value)}" if exception_value else exception_type


def is_quench_test(test_id: str) -> bool:
    return any(marker in test_id for marker in TEST_MARKERS)


class TestReport:
    """The parts of a test run's output that say what failed."""

    __test__ = False  # not a pytest test class

    def __init__(self, text: str):
        self.text = text
        self.failing: list[str] = []
        self.errors: list[str] = []
        self.summary = ""
        self.replay: list[tuple[str, str]] = []  # (kind, message) of the replay test's verdicts
        self.type_errors: list[str] = []

    @classmethod
    def parse(cls, text: str) -> TestReport:
        report = cls(text)
        for match in re.finditer(r"(?m)^(?:FAILED|ERROR) (\S+?)(?: - (.*))?$", text):
            if match.group(1) not in report.failing:
                report.failing.append(match.group(1))
        for match in re.finditer(r"(?m)^(?:FAIL|ERROR): (\w+) \(([\w.]+)\)", text):
            name = f"{match.group(2)}.{match.group(1)}"
            if name not in report.failing:
                report.failing.append(name)
        for match in re.finditer(r"(?m)^E\s+(\S.*?)\s*$", text):
            line = match.group(1)
            if line not in report.errors and not line.startswith(("+", "-", "?", "Traceback")):
                report.errors.append(line)
        if not report.errors:
            exception_type, exception_value, _ = parse_python_traceback(text)
            if exception_type:
                report.errors.append(exception_text(exception_type, exception_value))
        summaries = re.findall(r"(?m)^(?:=+ )?(\d+ (?:failed|passed|error).*?|no tests ran) in [\d.]+s", text)
        if summaries:
            report.summary = summaries[-1]
        for match in REPLAY_MARK.finditer(text):
            found = (match.group("kind"), match.group("message").strip().rstrip("'\")"))
            if found not in report.replay:
                report.replay.append(found)
        for match in TYPE_ERROR.finditer(text):
            line = f"{match.group('path')}:{match.group('line')}: {match.group('message')}"
            if line not in report.type_errors:
                report.type_errors.append(line)
        return report

    def has(self, pattern: str) -> bool:
        return re.search(pattern, self.text) is not None

    def first_match(self, pattern: str) -> str:
        match = re.search(pattern, self.text, re.M)
        return match.group(0).strip() if match else ""

    def first_group(self, pattern: str) -> str:
        match = re.search(pattern, self.text, re.M)
        if not match:
            return ""
        return next((group for group in match.groups() if group), "")

    def last_lines(self, count: int) -> str:
        lines = [line for line in self.text.strip().splitlines() if line.strip()]
        return " / ".join(lines[-count:])

    def replay_kinds(self) -> set[str]:
        return {kind for kind, _ in self.replay}

    def still_raises(self, exception: str, value: str) -> str:
        """Where the incident's exception is still raised ("file:line"), "yes" when it is but not where; else ""."""
        if not exception or exception == "the exception":
            return ""
        if "still-crashes" in self.replay_kinds():
            return "yes"
        location = re.search(rf"(?m)^(\S+\.py):(\d+): (?:[\w.]+\.)?{re.escape(exception)}\b", self.text)
        if location:
            return f"{location.group(1)}:{location.group(2)}"
        pattern = rf"(?m)^(?:E\s+)?(?:[\w.]+\.)?{re.escape(exception)}(?::|$)"
        if re.search(pattern, self.text) or re.search(rf"still raises {re.escape(exception)}\b", self.text):
            return "yes"
        return ""


# ----------------------------------------------------------------------------------- guidance


@dataclass
class Guidance:
    """What earlier attempts and reviewers say about the next one."""

    prefer: list[str] = field(default_factory=list)  # strategy modes, most wanted first
    avoid: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)  # a reviewer said no: never, even as a last resort
    omit_test: bool = False
    skip_outer: int = 0  # rebuild the replay from this many frames deeper
    reasons: list[str] = field(default_factory=list)

    def rank(self, mode: str) -> int:
        if mode in self.avoid:
            return 1
        if mode in self.prefer:
            return self.prefer.index(mode) - len(self.prefer)
        return 0

    def prefers(self, *modes: str, reason: str) -> None:
        added = False
        for mode in modes:
            if mode not in self.prefer and mode not in self.avoid:
                self.prefer.append(mode)
                added = True
        if added and reason not in self.reasons:
            self.reasons.append(reason)

    def excludes(self, *modes: str, reason: str) -> None:
        self.avoids(*modes, reason=reason)
        self.exclude += [mode for mode in modes if mode not in self.exclude]

    def avoids(self, *modes: str, reason: str) -> None:
        for mode in modes:
            if mode in self.prefer:
                self.prefer.remove(mode)
            if mode not in self.avoid:
                self.avoid.append(mode)
        if reason not in self.reasons:
            self.reasons.append(reason)


_NO_NONE = re.compile(
    r"(?:don'?t|do not|never|not|no)\b[^.;]{0,20}\b(?:return(?:ing)? )?none\b|none\b[^.;]{0,20}\bnot (?:ok|allowed|acceptable)"
)
_WANTS_ERROR = re.compile(
    r"\braise|\bclear error|\berror\b|exception|reject|refuse|fail (?:loud|fast)|\b4\d\d\b|bad request"
)
_WANTS_BOUNDARY = re.compile(
    r"validat|boundary|where (?:the )?input enters|at the (?:handler|edge|entry)|in the handler"
)
_WANTS_DEFAULT = re.compile(r"documented default|use the default|\bdefault\b|\.get\(|fallback")
_NO_DEFAULT = re.compile(
    r"(?:don'?t|do not|never|no)\b[^.;]{0,25}\b(?:default|zero|\b0\b|invent)|silent|swallow|hid(?:e|ing)"
)
_WANTS_RETURN = re.compile(r"return early|early return|\bskip\b|\bcontinue\b")
_NO_RAISE = re.compile(
    r"(?:don'?t|do not|never|no|not|without)\b[^.;,]{0,20}\b(?:rais(?:e|ing)|throw(?:ing)?|an? (?:error|exception))"
)


def guidance(history: list[AttemptRecord]) -> Guidance:
    """What the history asks of the next attempt."""
    found = Guidance()
    for attempt in history:
        output = attempt.output or ""
        critic = attempt.critic_feedback or ""
        report = TestReport.parse(output)
        kinds = report.replay_kinds() | set(
            re.findall(r"\[(moved|none-returned|served-invalid-input|escaped)\]", critic)
        )
        if kinds & {"moved", "none-returned"}:
            found.avoids(RETURN, reason="returning None moved the crash one frame up")
            found.prefers(BOUNDARY, RAISE, reason="the replay needs a value or a clear error, not None")
        if "served-invalid-input" in kinds:
            found.avoids(VALUE, reason="a default served an input that must be refused (a silently wrong value)")
            found.prefers(BOUNDARY, RAISE, reason="the input must be refused with a clear error")
        if "escaped" in kinds or "server-error" in kinds:
            found.avoids(RAISE, reason="a raised error escaped the request handler as a 500")
            found.prefers(BOUNDARY, reason="the refusal must come from the layer that answers (a 4xx)")
        if "not-reached" in kinds:
            found.skip_outer += 1
            found.reasons.append("the replay did not reach the culprit from the outer frame")
        if any(
            "None" in line and ("return" in line.lower() or "incompatible" in line.lower())
            for line in report.type_errors
        ):
            found.avoids(RETURN, reason="the type checker refuses a None the annotation excludes")
        if re.search(r"DID NOT RAISE|\w+ not raised", output) or "keep raising" in critic.lower():
            found.prefers(RAISE, BOUNDARY, reason="the tests expect this input to raise")
        existing_failed = any(not is_quench_test(test) for test in report.failing)
        if existing_failed and re.search(r"assert None\b|where None = ", output):
            found.prefers(RAISE, reason="a test got None where it expected a value")
            found.avoids(RETURN, reason="a test got None where it expected a value")
        reviewer = (attempt.reviewer_feedback or "").lower()
        if reviewer:
            _reviewer(found, reviewer)
        regression_broken = any(is_quench_test(test) for test in report.failing) and bool(
            re.search(r"No module named|ImportError while importing|ModuleNotFoundError", output)
            or re.search(r"TypeError: \w+\(\) (?:got an unexpected keyword|missing \d+ required)", output)
        )
        test_exists = re.search(r"test_quench_(?:replay|regression)\w*\.py: already exists", output)
        if regression_broken or test_exists or "leave the replay test out" in critic:
            found.omit_test = True
    return found


def _reviewer(found: Guidance, words: str) -> None:
    """A reviewer's words move strategy kinds: the next patch must do what they asked.

    What a reviewer rules out ("don't return None", "do not raise here") is excluded, not
    merely ranked last: no patch is better than one the reviewer already said no to.
    """
    if _NO_NONE.search(words):
        found.excludes(RETURN, reason="the reviewer does not want None returned")
    if _NO_DEFAULT.search(words):
        found.excludes(VALUE, reason="the reviewer does not want a default that hides the problem")
    if _NO_RAISE.search(words):
        found.excludes(RAISE, reason="the reviewer does not want an error raised there")
    if _WANTS_BOUNDARY.search(words):
        found.prefers(BOUNDARY, reason="the reviewer asked to validate where the input enters")
    if _WANTS_ERROR.search(_NO_RAISE.sub("", words)):
        found.prefers(BOUNDARY, RAISE, reason="the reviewer asked for a clear error")
    if _WANTS_DEFAULT.search(words) and not _NO_DEFAULT.search(words):
        found.prefers(DOCUMENTED, VALUE, reason="the reviewer asked for the default")
    if _WANTS_RETURN.search(words):
        found.prefers(RETURN, reason="the reviewer asked for an early return")


# ----------------------------------------------------------------------------------- verdicts


@dataclass
class Situation:
    """What the critic knows about the crash and the attempt's strategy."""

    exception: str  # short name, e.g. KeyError
    exception_value: str
    where: str  # the culprit site, path:line
    culprit: str  # the culprit function
    used: Strategy | None
    used_text: str
    next_text: str
    boundary: str = ""  # the function where a boundary check would go ("" when none)
    none_why: str = ""
    business: str = ""
    raise_strategy: Strategy | None = None


def verdict(report: TestReport, attempt: AttemptRecord, s: Situation) -> tuple[str, str, str]:
    """(what failed, why, what the next attempt must do) for a failed test run."""
    failing = report.failing
    if failing:
        shown = ", ".join(failing[:4]) + (f" and {len(failing) - 4} more" if len(failing) > 4 else "")
        what = f"{len(failing)} test{'s' if len(failing) != 1 else ''} failed: {shown}"
    else:
        what = f"The test run failed (exit code {attempt.exit_code})"
    decisive = [f"QUENCH REPLAY [{kind}]: {message}" for kind, message in report.replay[:2]] or report.errors[:3]
    if decisive:
        what += " — " + " | ".join(clip(line, 220) for line in decisive)
    if report.summary:
        what += f" ({report.summary})"
    if report.type_errors:
        what += " — type check: " + " | ".join(clip(line, 160) for line in report.type_errors[:2])
    why: list[str] = []
    must: list[str] = []
    kinds = report.replay_kinds()
    instead = (
        f"refuse the input where it enters ({s.boundary}) with a clear error naming the value"
        if s.boundary
        else "raise a clear domain error naming the value"
    )
    if "moved" in kinds or "none-returned" in kinds:
        message = next(message for kind, message in report.replay if kind in ("moved", "none-returned"))
        why.append(
            f"a failed attempt: {s.used_text} stopped the {s.exception} in {s.culprit}() but the crash moved one "
            f"frame up ({clip(message, 200)})" + (f"; {s.none_why}" if s.none_why else "")
        )
        must.append(f"not return None from {s.culprit}(); {instead}, or use a default the code documents")
    if "served-invalid-input" in kinds:
        message = next(message for kind, message in report.replay if kind == "served-invalid-input")
        why.append(
            f"a failed attempt: {s.used_text} served an input that has no safe value — a silently wrong value "
            f"({clip(message, 200)})" + (f"; {s.business}" if s.business else "")
        )
        must.append(f"not invent a value (no .get() with 0 or an empty default here); {instead}")
    if "escaped" in kinds or "server-error" in kinds:
        message = next(message for kind, message in report.replay if kind in ("escaped", "server-error"))
        why.append(f"the refusal is not reported by the layer that answers: {clip(message, 200)}")
        must.append(
            f"refuse the input in {s.boundary}() the way it reports errors (a 4xx)"
            if s.boundary
            else "raise an error class the request handler turns into a 4xx"
        )
    if "unclear-error" in kinds:
        message = next(message for kind, message in report.replay if kind == "unclear-error")
        why.append(f"the input is refused, but the error does not say what is wrong: {clip(message, 200)}")
        must.append("keep the refusal and make its message name the missing or invalid value")
    if "not-reached" in kinds:
        why.append("the replay test's rebuilt input never reached the culprit from its entry point")
        must.append("rebuild the replay from a deeper frame of the traceback (closer to the culprit)")
    if report.type_errors and not why:
        why.append(f"the type checker finds new errors in the changed files: {clip(report.type_errors[0], 200)}")
        must.append("keep the functions' annotations true: do not return None where they promise a value")
    elif report.type_errors:
        why.append(f"the type checker agrees: {clip(report.type_errors[0], 200)}")
    if not why:
        why, must = _classic(report, attempt, s)
    if not any("strateg" in part or "next is" in part or "escalate" in part for part in must):
        must.append(s.next_text)
    return what, "; ".join(why), "; ".join(_unique(must))


def _classic(report: TestReport, attempt: AttemptRecord, s: Situation) -> tuple[list[str], list[str]]:
    """The verdicts about the service's own tests: syntax, imports, tests expecting an error, None, still raising."""
    failing = report.failing
    quench_failed = [test for test in failing if is_quench_test(test)]
    other_failed = [test for test in failing if not is_quench_test(test)]
    did_not_raise = report.first_group(
        r"DID NOT RAISE (?:<class '(?:[\w.]+\.)?(\w+)'>|(?:[\w.]+\.)?(\w+))|(\w+) not raised"
    )
    missing_module = report.first_group(r"No module named '([\w.]+)'")
    still = report.still_raises(s.exception, s.exception_value)
    why: list[str] = []
    must: list[str] = []
    if report.has(r"\b(?:SyntaxError|IndentationError)\b"):
        line = report.first_match(r".*(?:SyntaxError|IndentationError).*") or ""
        why.append(f"the patched code does not compile: {clip(line, 160)}")
        must.append("produce code that parses and leave every other line untouched")
    if missing_module:
        if quench_failed or any(marker in report.text[:2000] for marker in TEST_MARKERS):
            why.append(
                f"the replay test imports {missing_module}, which the test run cannot import "
                "(its module path does not match how the service's tests import code)"
            )
            must.append(
                "import the entry point's module by the dotted path the existing tests use, or leave the replay test out"
            )
        else:
            why.append(f"the test run cannot import {missing_module}; the patch or the environment lacks it")
            must.append(f"not introduce imports of {missing_module}")
    if did_not_raise:
        tests = ", ".join(other_failed[:2]) or "an existing test"
        why.append(
            f"{tests} expects {did_not_raise} for this input, but {s.used_text} now handles the input without "
            "raising: the existing contract is that this input is an error"
        )
        if s.raise_strategy and (s.used is None or s.used.mode != RAISE):
            must.append(
                f"keep raising for this input: use {s.raise_strategy.name} ({s.raise_strategy.description}) instead "
                "of a default or an early return, or fix the caller that passes it"
            )
        else:
            must.append(f"keep raising {did_not_raise} for this input and fix the caller that passes it instead")
    if still:
        location = f" at {still}" if still != "yes" else ""
        moved = still not in ("yes", s.where)
        why.append(
            f"the code still raises {s.exception}{location}: {s.used_text} did not cover the path the failing input takes"
            + ("; the same missing value is used again further on" if moved else "")
        )
        must.append(f"use a different strategy than {s.used.name if s.used else 'this one'}: {s.next_text}")
        if moved:
            must.append("guard the value once where it enters the function (an early return or a clear error)")
    none_crash = report.first_match(r"\b(?:AttributeError|TypeError): .*'NoneType'.*")
    if none_crash and not still and s.used and s.used.mode in (VALUE, RETURN):
        why.append(f"the None that {s.used_text} lets through is used further on: {clip(none_crash, 160)}")
        must.append(f"not let None reach the code after the culprit line: {s.next_text}")
    elif report.has(r"assert None\b|where None = ") and not still:
        why.append(
            f"{', '.join(other_failed[:2]) or 'a test'} got None where it expects a real value: {s.used_text} "
            "returns None for this input"
        )
        must.append("return a value of the right type or raise a clear error instead of returning None")
    if not why and quench_failed and not other_failed:
        why.append(
            f"only the replay test fails ({report.errors[0] if report.errors else 'see output'}): its rebuilt input "
            "does not reach the culprit line the way production input does"
        )
        must.append("keep the fix but leave the replay test out (or rebuild its input from a deeper frame)")
    if not why and other_failed:
        why.append(
            f"existing tests ({', '.join(other_failed[:3])}) fail after {s.used_text}: the change altered "
            "behaviour they rely on"
        )
        must.append(f"preserve what those tests assert; {s.next_text}")
    if not why and (report.has(r"no tests ran") or attempt.exit_code == 5):
        why.append("the test command collected no tests, so nothing verified the patch")
        must.append("check the service's test_command; the patch itself may be fine")
    if not why:
        why.append(f"the tests failed after {s.used_text}, and the output does not say more than the summary")
        must.append(f"use a different strategy than {s.used.name if s.used else 'this one'}: {s.next_text}")
    return why, must


def _unique(items: list[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen

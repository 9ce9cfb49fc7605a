"""The offline analyzer: the provider Quench uses when there is no LLM key.

It answers the three questions of `remediation.llm.base` deterministically (the same
context always gives the same answer) from what the traceback and the repository say:

- `diagnose` finds the culprit frame (the deepest in-app frame found in the repository),
  reads its line, explains the exception class (`remediation.explanations`), finds the
  construct on that line that raised (`remediation.patching`) and names it in the
  hypothesis; evidence lists the facts it relied on.
- `propose_patch` applies the next untried strategy of the crash class to the culprit line
  with libcst and, when the failing input can be rebuilt, adds a regression test.
- `critique` reads the failed attempt's test output (failing test ids, `E` lines, the
  exception) and says what failed, why, and what the next attempt must do.

Confidence is a sum of independent signals, capped at 0.95:

    0.30  there is an exception or a traceback       (0.20 for an alert without one)
  + 0.10  the exception class is in the explanation table
  + 0.15  the culprit frame is in the repository and its source was read
  + 0.20  the culprit line holds the construct the exception points at
  + 0.10  the top similar incident names the same exception class or culprit function
  + 0.05  a knowledge hit names the exception class or the category
  + 0.05  it happened more than once (event_count ≥ 2) or regressed
  + 0.05  (alerts) a playbook candidate matches
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from incidents.sources.traceback import parse_python_traceback
from remediation.diffs import FileChange, unified_diff
from remediation.explanations import (
    ALERT,
    CODE_BUG,
    DATABASE,
    RESOURCE,
    TIMEOUT,
    Explanation,
    explain,
    short_type,
)
from remediation.llm.base import (
    RISK_LEVELS,
    AttemptRecord,
    CriticFeedback,
    DiagnosisContext,
    DiagnosisResult,
    PatchProposal,
    SourceFile,
    Usage,
)
from remediation.llm.offline import replay, rewrites, sites

MODEL = "offline-analyzer-1"
PLAYBOOK_FIRST_CATEGORIES = (TIMEOUT, DATABASE, RESOURCE, ALERT)
MAX_VALUE_CHARS = 200
MOVED_LINES_WINDOW = 50  # how far a culprit line is looked for when the default branch moved


@dataclass
class _Facts:
    """What the context says about the crash, worked out once per call."""

    exception_type: str = ""
    exception_value: str = ""
    frames: list[dict] = field(default_factory=list)
    culprit: dict | None = None
    culprit_path: str = ""
    culprit_line: int | None = None
    culprit_function: str = ""
    culprit_code: str = ""
    moved_from: int | None = None  # the traceback's line number when the repository's copy differs
    source: SourceFile | None = None
    explanation: Explanation | None = None
    crash_class: str | None = None
    plan: rewrites.Plan | None = None
    plan_path: str = ""  # the file the plan's site is in (an outer frame for a call without timeout)
    plan_source: SourceFile | None = None

    @property
    def has_exception(self) -> bool:
        return bool(self.exception_type or self.frames)

    @property
    def where(self) -> str:
        if not self.culprit:
            return ""
        location = self.culprit_path or self.culprit.get("filename") or self.culprit.get("module") or "?"
        return f"{location}:{self.culprit_line}" if self.culprit_line else location

    def label(self, function: str = "", path: str = "") -> str:
        """`payments.charge` for function charge in shop/payments.py."""
        function = function or self.culprit_function
        path = path or self.culprit_path
        module = PurePosixPath(path).stem if path else ((self.culprit or {}).get("module") or "").rsplit(".", 1)[-1]
        if module in ("__init__", "") and path:
            module = PurePosixPath(path).parent.name
        if module and function and function != "<module>":
            return f"{module}.{function}"
        return function or module or "the service"


def _clip(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _exception_text(exception_type: str, exception_value: str) -> str:
    return f"{exception_type}: {_clip(exception_value)}" if exception_value else exception_type


def _frames_from_traceback(context: DiagnosisContext) -> tuple[str, str, list[dict]]:
    exception_type, exception_value, frames = parse_python_traceback(context.traceback)
    as_dicts = []
    for frame in frames:
        row = dataclasses.asdict(frame)
        filename = (frame.filename or "").replace("\\", "/")
        for source in context.source_files:
            if filename == source.path or filename.endswith("/" + source.path):
                row["path"] = source.path
                break
        as_dicts.append(row)
    return exception_type, exception_value, as_dicts


def _culprit(frames: list[dict]) -> dict | None:
    """The deepest frame found in the repository, else the deepest in-app frame (as DiagnosisContext does)."""
    return DiagnosisContext(incident_id=0, title="", frames=frames).culprit_frame()


def _line(source: SourceFile | None, number: int | None) -> str:
    if source is None or not number:
        return ""
    lines = source.content.splitlines()
    return lines[number - 1].strip() if 0 < number <= len(lines) else ""


def _resolve_line(source: SourceFile | None, frame: dict) -> int | None:
    """The frame's line in the repository's copy of the file.

    The traceback comes from the deployed code, the source from the default branch; when
    the branch moved, the line the frame shows is looked for nearby (it must be unique).
    """
    lineno = frame.get("lineno")
    shown = (frame.get("context_line") or "").strip()
    if source is None or not lineno or not shown:
        return lineno
    lines = [line.strip() for line in source.content.splitlines()]
    if 0 < lineno <= len(lines) and lines[lineno - 1] == shown:
        return lineno
    nearby = [
        number
        for number in range(max(1, lineno - MOVED_LINES_WINDOW), min(len(lines), lineno + MOVED_LINES_WINDOW) + 1)
        if lines[number - 1] == shown
    ]
    return nearby[0] if len(nearby) == 1 else lineno


def _facts(context: DiagnosisContext) -> _Facts:
    facts = _Facts(exception_type=context.exception_type, exception_value=context.exception_value)
    frames = list(context.frames)
    if context.traceback and (not frames or not facts.exception_type):
        parsed_type, parsed_value, parsed_frames = _frames_from_traceback(context)
        if not frames:
            frames = parsed_frames
        if not facts.exception_type:
            facts.exception_type, facts.exception_value = parsed_type, parsed_value
    facts.frames = frames
    facts.explanation = explain(facts.exception_type, facts.exception_value) if facts.has_exception else None
    facts.culprit = _culprit(frames)
    if facts.culprit:
        facts.culprit_path = facts.culprit.get("path") or ""
        facts.culprit_line = facts.culprit.get("lineno")
        facts.culprit_function = facts.culprit.get("function") or ""
        facts.source = context.source_file(facts.culprit_path) if facts.culprit_path else None
        facts.culprit_line = _resolve_line(facts.source, facts.culprit)
        if facts.culprit_line != facts.culprit.get("lineno"):
            facts.moved_from = facts.culprit.get("lineno")
        facts.culprit_code = (
            _line(facts.source, facts.culprit_line) or (facts.culprit.get("context_line") or "").strip()
        )
    facts.crash_class = sites.crash_class(facts.exception_type, facts.exception_value)
    if facts.crash_class is None:
        return facts
    local_timeouts = sites.timeout_functions(source.content for source in context.source_files)
    # The culprit frame first; for a call without a timeout, the callers too (the deepest
    # frame may be the client function that gave up, the fix is where it is called).
    candidates = [facts.culprit] if facts.culprit else []
    if facts.crash_class == sites.MISSING_TIMEOUT:
        candidates += [frame for frame in reversed(frames) if frame.get("path") and frame is not facts.culprit]
    for frame in candidates:
        source = context.source_file(frame.get("path") or "")
        line = _resolve_line(source, frame)
        if source is None or not line:
            continue
        found = rewrites.plan(
            source.content,
            line,
            facts.exception_type,
            facts.exception_value,
            local_timeouts=local_timeouts,
        )
        if found is not None:
            facts.plan, facts.plan_path, facts.plan_source = found, source.path, source
            break
    return facts


def _mentions(text: str, *needles: str) -> bool:
    text = (text or "").lower()
    return any(needle and needle.lower() in text for needle in needles)


def _score(row: dict) -> str:
    """The cosine similarity when retrieval gave one (comparable across queries), else the ranking score."""
    for key in ("similarity", "score"):
        value = row.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return f"{key} {value:.2f}"
    return "unscored"


class OfflineAnalyzer:
    """Deterministic diagnosis, patches and critique from tracebacks and source code, with no network."""

    name = "offline"
    model = MODEL

    # ------------------------------------------------------------------ diagnose

    def diagnose(self, context: DiagnosisContext) -> DiagnosisResult:
        """Why the incident happened and what to do, from its frames, source and history."""
        started = time.monotonic()
        facts = _facts(context)
        category = self._category(context, facts)
        has_code_fix = bool(
            facts.plan and facts.plan.fixes and context.has_repository and facts.plan_source is not None
        )
        # Candidates come best first; one without an id could not be recorded on the diagnosis.
        playbook = next((row for row in context.playbooks if _playbook_id(row) is not None), None)
        if playbook is not None and (not has_code_fix or category in PLAYBOOK_FIRST_CATEGORIES):
            action = "playbook"
        elif has_code_fix:
            action = "code_fix"
        else:
            action = "escalate"
        result = DiagnosisResult(
            hypothesis=self._hypothesis(context, facts),
            confidence=self._confidence(context, facts, category),
            evidence=self._evidence(context, facts),
            explanation=self._explanation(context, facts),
            culprit_file=facts.culprit_path or (facts.culprit or {}).get("filename", ""),
            culprit_line=facts.culprit_line,
            culprit_function=facts.culprit_function,
            category=category,
            recommended_action=action,
            risk_level=self._risk(context, category, action, playbook),
            playbook_id=_playbook_id(playbook) if action == "playbook" else None,
        )
        result.usage = Usage(
            provider=self.name,
            model=self.model,
            step="diagnose",
            prompt_chars=0,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        return result

    def _category(self, context: DiagnosisContext, facts: _Facts) -> str:
        if not facts.has_exception:
            return ALERT
        if (
            facts.plan
            and facts.plan.skipped
            and all("environment variable" in why for why in facts.plan.skipped.values())
        ):
            return "configuration"
        return facts.explanation.category

    def _hypothesis(self, context: DiagnosisContext, facts: _Facts) -> str:
        if not facts.has_exception:
            return self._alert_hypothesis(context)
        exception = short_type(facts.exception_type) or "An exception"
        site = facts.plan.site if facts.plan else None
        if site is not None:
            site_where = f"{facts.plan_path}:{site.line}"
            label = facts.label(site.function.rsplit(".", 1)[-1] if site.function else "", facts.plan_path)
            if facts.plan_path == facts.culprit_path and site.line == facts.culprit_line:
                return f"{label} {site.description} ({exception} at {site_where})."
            return (
                f"{label} {site.description} ({site_where}); the {exception} surfaced in "
                f"{facts.label()} at {facts.where}."
            )
        meaning = re.split(r"[;:] ", facts.explanation.meaning, maxsplit=1)[0].rstrip(".")
        message = f": {_clip(facts.exception_value, 120)}" if facts.exception_value else ""
        if facts.culprit:
            code = f" while running `{_clip(facts.culprit_code, 120)}`" if facts.culprit_code else ""
            return f"{facts.label()} raised {exception}{message} at {facts.where}{code}. {meaning}."
        where = "outside its own code" if facts.frames else "with no stack frames to point at"
        return f"{context.service or 'The service'} raised {exception}{message} {where}. {meaning}."

    def _alert_hypothesis(self, context: DiagnosisContext) -> str:
        subject = context.alertname or context.title or "An alert"
        where = context.service or "the service"
        if context.environment:
            where += f" ({context.environment})"
        text = f"{subject} fired for {where}"
        if context.severity:
            text += f" at severity {context.severity}"
        text += "; there is no exception or stack trace, so no line of code can be blamed."
        if context.similar_incidents:
            top = context.similar_incidents[0]
            text += f' It resembles incident #{top.get("id")} "{_clip(top.get("title", ""), 80)}"'
            if top.get("resolution"):
                text += f", which was resolved by: {_clip(top['resolution'], 120)}"
            text += "."
        return text

    def _explanation(self, context: DiagnosisContext, facts: _Facts) -> str:
        if facts.explanation is None:
            labels = ", ".join(f"{key}={value}" for key, value in sorted(context.labels.items())[:6])
            return (
                f"An alert ({context.alertname or context.title}) fired from a monitoring rule rather than from an "
                f"exception; what it measures is in its labels ({labels or 'none'}). A playbook or a person has to "
                "act on it."
            )
        return f"{facts.explanation.name}: {facts.explanation.text()}"

    def _evidence(self, context: DiagnosisContext, facts: _Facts) -> list[str]:
        evidence: list[str] = []
        if facts.culprit:
            if facts.culprit_code:
                evidence.append(f"{facts.where} in {facts.culprit_function or '?'}: {_clip(facts.culprit_code, 160)}")
            else:
                evidence.append(f"{facts.where} in {facts.culprit_function or '?'} (source line not available)")
        if facts.moved_from:
            evidence.append(
                f"The traceback says line {facts.moved_from}; that code is at line {facts.culprit_line} on the "
                "default branch"
            )
        if facts.exception_type:
            evidence.append(_exception_text(facts.exception_type, facts.exception_value))
        if facts.plan:
            site = facts.plan.site
            kind = sites.CRASH_CLASS_LABELS[site.crash_class]
            evidence.append(f"Matched on {facts.plan_path}:{site.line}: {_clip(site.expression, 100)} ({kind})")
        deepest = facts.frames[-1] if facts.frames else None
        if deepest is not None and deepest is not facts.culprit and not deepest.get("in_app", True):
            evidence.append(
                f"Raised inside {deepest.get('module') or deepest.get('filename')} (not the service's code)"
            )
        if context.event_count:
            evidence.append(f"Happened {context.event_count} time{'s' if context.event_count != 1 else ''}")
        if context.regression_count:
            evidence.append(f"Came back {context.regression_count} time(s) after being resolved")
        if context.similar_incidents:
            top = context.similar_incidents[0]
            line = f'Similar incident #{top.get("id")} "{_clip(top.get("title", ""), 80)}" ({_score(top)}'
            line += f", {top['status']})" if top.get("status") else ")"
            if top.get("resolution"):
                line += f"; resolved by: {_clip(top['resolution'], 100)}"
            evidence.append(line)
        if context.knowledge:
            hit = context.knowledge[0]
            evidence.append(
                f'Knowledge: "{_clip(hit.get("title", ""), 80)}" ({hit.get("kind", "entry")}, {_score(hit)})'
            )
        if context.playbooks:
            candidate = context.playbooks[0]
            why = f": {_clip(candidate['why'], 80)}" if candidate.get("why") else ""
            evidence.append(f"Playbook candidate: {candidate.get('name')}{why}")
        if context.complaints:
            count = len(context.complaints)
            latest = _clip(context.complaints[0].get("message", ""), 80)
            evidence.append(
                f"{count} customer complaint{'s' if count != 1 else ''}" + (f', e.g. "{latest}"' if latest else "")
            )
        if not facts.has_exception and context.labels:
            labels = ", ".join(f"{key}={value}" for key, value in sorted(context.labels.items())[:6])
            evidence.append(f"Alert labels: {labels}")
        return evidence

    def _confidence(self, context: DiagnosisContext, facts: _Facts, category: str) -> float:
        score = 0.30 if facts.has_exception or context.traceback else 0.20
        if facts.explanation is not None and facts.explanation.known:
            score += 0.10
        if facts.source is not None:
            score += 0.15
        if facts.plan is not None:
            score += 0.20
        exception = short_type(facts.exception_type)
        function = facts.culprit_function if facts.culprit_function not in ("", "<module>") else ""
        if context.similar_incidents:
            top = context.similar_incidents[0]
            said = f"{top.get('title', '')} {top.get('exception_type', '')} {top.get('resolution', '')}"
            if _mentions(said, exception, function) or (
                not facts.has_exception and _mentions(top.get("title", ""), context.alertname)
            ):
                score += 0.10
        if any(
            _mentions(f"{hit.get('title', '')} {hit.get('excerpt', '')}", exception, category)
            for hit in context.knowledge[:3]
        ):
            score += 0.05
        if context.event_count >= 2 or context.regression_count:
            score += 0.05
        if not facts.has_exception and context.playbooks:
            score += 0.05
        return round(min(score, 0.95), 2)

    def _risk(self, context: DiagnosisContext, category: str, action: str, playbook: dict | None) -> str:
        if action == "playbook":
            risk = (playbook or {}).get("risk_level")
            return risk if risk in RISK_LEVELS else "medium"
        if action == "code_fix":
            return "low" if category == CODE_BUG else "medium"
        if context.severity == "critical" or category in (DATABASE, RESOURCE):
            return "high"
        return "medium"

    # ------------------------------------------------------------------ propose_patch

    def propose_patch(
        self, context: DiagnosisContext, diagnosis: DiagnosisResult, history: list[AttemptRecord]
    ) -> PatchProposal | None:
        """The next untried strategy for the crash as a unified diff, with a regression test where possible."""
        started = time.monotonic()
        facts = _facts(context)
        if facts.plan is None or not facts.plan.fixes or facts.plan_source is None:
            return None
        path, old = facts.plan_path, facts.plan_source.content
        tried = {fix.strategy.name for fix in facts.plan.fixes if _was_tried(fix, path, old, history)}
        guidance = _guidance(history, facts)
        remaining = [fix for fix in facts.plan.fixes if fix.strategy.name not in tried]
        if not remaining:
            return None
        remaining.sort(key=lambda fix: guidance.rank(fix.strategy.mode))
        fix = remaining[0]
        changes = [FileChange(path, old, fix.new_source)]
        test = (
            "an earlier attempt's regression test failed for reasons of its own, so this attempt leaves it out"
            if guidance.omit_test
            else replay.regression_test_file(
                fix, path, facts.exception_type, facts.exception_value, test_command=context.test_command
            )
        )
        if isinstance(test, tuple) and context.source_file(test[0]) is not None:
            test = f"{test[0]} already exists in the repository"
        if isinstance(test, tuple):
            changes.append(FileChange(test[0], None, test[1]))
        diff = unified_diff(changes)
        if not diff:
            return None
        summary = self._patch_summary(facts, fix, test, guidance, remaining[1:])
        return PatchProposal(
            summary=summary,
            diff=diff,
            files_changed=[change.path for change in changes],
            adds_regression_test=len(changes) > 1,
            usage=Usage(
                provider=self.name,
                model=self.model,
                step="patch",
                prompt_chars=0,
                duration_ms=int((time.monotonic() - started) * 1000),
            ),
        )

    def _patch_summary(self, facts, fix, test, guidance, left) -> str:
        site = fix.site
        where = f"{facts.plan_path}:{site.line}"
        function = f" in {site.function}()" if site.function else ""
        exception = short_type(facts.exception_type)
        mode = fix.strategy.mode
        if mode == rewrites.TIMEOUT:
            effect = "now the call gives up after a bounded time instead of hanging until the other side does"
        elif mode == rewrites.RAISE:
            effect = f"now that input raises {fix.raises} with a message naming the problem instead of {exception}"
        elif mode == rewrites.RETURN:
            effect = f"now that input returns early instead of raising {exception}"
        else:
            effect = f"now that input yields a default instead of raising {exception}"
        parts = [
            f"Strategy {fix.strategy.name} ({fix.strategy.description}) at {where}{function}: "
            f"{fix.change}. The code {site.description}; {effect}."
        ]
        if guidance.reasons:
            parts.append("Chosen because " + "; ".join(guidance.reasons) + ".")
        if isinstance(test, tuple):
            call = fix.regression.call_source() if fix.regression else ""
            outcome = (
                f"expects {fix.regression.expected_error.split('.')[-1]}"
                if fix.regression and fix.regression.expected_error
                else f"asserts it no longer raises {exception}"
            )
            parts.append(f"Adds {test[0]}: calls {call} (the failing input) and {outcome}.")
        else:
            parts.append(f"No regression test: {test}.")
        if left:
            parts.append("Strategies left: " + ", ".join(other.strategy.name for other in left) + ".")
        return " ".join(parts)

    # ------------------------------------------------------------------ critique

    def critique(self, context: DiagnosisContext, diagnosis: DiagnosisResult, attempt: AttemptRecord) -> CriticFeedback:
        """What failed in `attempt`, why, and what the next attempt must do, from its status and test output."""
        started = time.monotonic()
        facts = _facts(context)
        report = _TestReport.parse(attempt.output or "")
        used, following = _strategies_around(facts, attempt)
        exception = short_type(facts.exception_type) or "the exception"
        where = f"{facts.plan_path}:{facts.plan.site.line}" if facts.plan else facts.where or "the culprit line"
        used_text = f"{used.name} ({used.description})" if used else f"attempt {attempt.number}'s approach"
        next_text = (
            f"next is {following.name}: {following.description}"
            if following
            else f"every strategy for this {sites.CRASH_CLASS_LABELS.get(facts.crash_class or '', 'crash')} "
            "has been tried, so escalate to a human with the diagnosis and these attempts"
        )
        status = attempt.status
        if attempt.reviewer_feedback and status == "passed":
            what = f"A reviewer rejected attempt {attempt.number}: {_clip(attempt.reviewer_feedback, 300)}"
            why = f"the tests passed, but {used_text} is not the change the reviewer wants"
            must = f"follow the reviewer's feedback ({_clip(attempt.reviewer_feedback, 200)}); {next_text}"
        elif status == "invalid_patch":
            error = report.first_match(r"^(?:error|fatal): .*$") or _clip(report.last_lines(2), 200) or "no details"
            what = f"The patch did not apply: {error}"
            why = (
                f"git apply rejected it, so {facts.plan_path or 'the file'} at the base commit is not the content "
                "the patch was written against (the file changed since it was read, or the hunk context is wrong)"
            )
            must = f"regenerate the patch from the current content of {facts.plan_path or 'the file'} and change only {where}"
        elif status == "timed_out":
            limit = report.first_match(r"timed out after [\d.]+ ?s(?:econds)?") or "timed out"
            what = f"The test run {limit}" + (
                f"; last output: {_clip(report.last_lines(2), 200)}" if report.text else ""
            )
            if used and used.mode == rewrites.TIMEOUT:
                why = "the tests probably reach the real dependency, and every call now waits up to the new timeout"
            else:
                why = "the patched code or the new test waits on something (network, a lock, a loop that never ends)"
            must = (
                "keep the new test free of network and sleeps and keep the fix to one statement; "
                f"if the suite is slow by itself, raise QUENCH_SANDBOX_TIMEOUT_SECONDS; {next_text}"
            )
        elif status == "error":
            what = f"The sandbox could not run the tests: {_clip(report.last_lines(3), 300) or 'no output'}"
            why = "this is an infrastructure problem (checkout, interpreter, dependencies), not a verdict on the patch"
            must = (
                f"run the same patch ({used_text}) again once the sandbox works; do not change strategy because of this"
            )
        elif status == "no_patch":
            what = "No patch was written."
            why = self._no_patch_reason(context, facts)
            must = "escalate to a human with the diagnosis" + (
                f", or run the playbook {context.playbooks[0].get('name')}" if context.playbooks else ""
            )
        elif status == "passed":
            what = "Nothing failed: the tests passed."
            why = "there is nothing to correct"
            must = "send the patch to review unchanged"
        else:
            what, why, must = self._failed_run(facts, report, attempt, exception, where, used, used_text, next_text)
        return CriticFeedback(
            what_failed=what,
            why=why,
            next_attempt_must=must,
            usage=Usage(
                provider=self.name,
                model=self.model,
                step="critique",
                prompt_chars=0,
                duration_ms=int((time.monotonic() - started) * 1000),
            ),
        )

    def _failed_run(self, facts, report, attempt, exception, where, used, used_text, next_text):
        failing = report.failing
        if failing:
            shown = ", ".join(failing[:4]) + (f" and {len(failing) - 4} more" if len(failing) > 4 else "")
            what = f"{len(failing)} test{'s' if len(failing) != 1 else ''} failed: {shown}"
        else:
            what = f"The test run failed (exit code {attempt.exit_code})"
        if report.errors:
            what += " — " + " | ".join(_clip(line, 160) for line in report.errors[:3])
        if report.summary:
            what += f" ({report.summary})"
        regression_failed = [test for test in failing if "test_quench_regression" in test]
        other_failed = [test for test in failing if "test_quench_regression" not in test]
        did_not_raise = report.first_group(
            r"DID NOT RAISE (?:<class '(?:[\w.]+\.)?(\w+)'>|(?:[\w.]+\.)?(\w+))|(\w+) not raised"
        )
        missing_module = report.first_group(r"No module named '([\w.]+)'")
        still = report.still_raises(exception, facts.exception_value)
        why_parts: list[str] = []
        must_parts: list[str] = []
        if report.has(r"\b(?:SyntaxError|IndentationError)\b"):
            why_parts.append(
                f"the patched code does not compile: {_clip(report.first_match(r'.*(?:SyntaxError|IndentationError).*') or '', 160)}"
            )
            must_parts.append("produce code that parses and leave every other line untouched")
        if missing_module:
            if any("test_quench_regression" in line for line in [*regression_failed, report.text[:2000]]):
                why_parts.append(
                    f"the new regression test imports {missing_module}, which the test run cannot import "
                    "(its module path does not match how the service's tests import code)"
                )
                must_parts.append(
                    "import the culprit module by the dotted path the existing tests use, or leave the regression test out"
                )
            else:
                why_parts.append(f"the test run cannot import {missing_module}; the patch or the environment lacks it")
                must_parts.append(f"not introduce imports of {missing_module}")
        if did_not_raise:
            tests = ", ".join(other_failed[:2]) or "an existing test"
            why_parts.append(
                f"{tests} expects {did_not_raise} for this input, but {used_text} now handles the input without "
                "raising: the existing contract is that this input is an error"
            )
            raise_strategy = next(
                (s for s in rewrites.STRATEGIES.get(facts.crash_class or "", ()) if s.mode == rewrites.RAISE), None
            )
            if raise_strategy and (used is None or used.mode != rewrites.RAISE):
                must_parts.append(
                    f"keep raising for this input: use {raise_strategy.name} ({raise_strategy.description}) instead "
                    f"of a default or an early return, or fix the caller that passes it"
                )
            else:
                must_parts.append(
                    f"keep raising {did_not_raise} for this input and fix the caller that passes it instead"
                )
        if still:
            location = f" at {still}" if still != "yes" else ""
            moved = still not in ("yes", where)
            why_parts.append(
                f"the code still raises {exception}{location}: {used_text} did not cover the path the failing input takes"
                + ("; the same missing value is used again further on" if moved else "")
            )
            must_parts.append(f"use a different strategy than {used.name if used else 'this one'}: {next_text}")
            if moved:
                must_parts.append(
                    "guard the value once where it enters the function (an early return or a clear error)"
                )
        none_crash = report.first_match(r"\b(?:AttributeError|TypeError): .*'NoneType'.*")
        if none_crash and not still and used and used.mode == rewrites.VALUE:
            why_parts.append(f"the None that {used_text} lets through is used further on: {_clip(none_crash, 160)}")
            must_parts.append(
                "not let None reach the code after the culprit line: use a default of the right type or stop "
                f"before the value is used; {next_text}"
            )
        elif report.has(r"assert None\b|where None = ") and not still:
            why_parts.append(
                f"{', '.join(other_failed[:2]) or 'a test'} got None where it expects a real value: {used_text} "
                "returns None for this input"
            )
            must_parts.append("return a value of the right type or raise a clear error instead of returning None")
        if not why_parts and regression_failed and not other_failed:
            why_parts.append(
                f"only the new regression test fails ({report.errors[0] if report.errors else 'see output'}): its "
                "reconstructed input does not reach the culprit line the way production input does"
            )
            must_parts.append(
                "keep the fix but leave the regression test out (or build its input from the real payload)"
            )
        if not why_parts and other_failed:
            why_parts.append(
                f"existing tests ({', '.join(other_failed[:3])}) fail after {used_text}: the change altered "
                "behaviour they rely on"
            )
            must_parts.append(f"preserve what those tests assert; {next_text}")
        if not why_parts and (report.has(r"no tests ran") or attempt.exit_code == 5):
            why_parts.append("the test command collected no tests, so nothing verified the patch")
            must_parts.append("check the service's test_command; the patch itself may be fine")
        if not why_parts:
            why_parts.append(f"the tests failed after {used_text}, and the output does not say more than: {what}")
            must_parts.append(f"use a different strategy than {used.name if used else 'this one'}: {next_text}")
        if not any("strateg" in part or "next is" in part for part in must_parts) and not did_not_raise:
            must_parts.append(next_text)
        return what, "; ".join(why_parts), "; ".join(_unique(must_parts))

    def _no_patch_reason(self, context: DiagnosisContext, facts: _Facts) -> str:
        exception = short_type(facts.exception_type)
        if not facts.has_exception:
            return "there is no exception or stack trace, only an alert, so there is no line to change"
        if facts.crash_class is None:
            return f"{exception} is not a crash class with a code strategy (missing key, index, zero division, None, timeout)"
        if not context.has_repository or facts.source is None:
            return f"the culprit file {facts.culprit_path or (facts.culprit or {}).get('filename', '?')} is not in the repository Quench reads"
        if facts.plan is None:
            return f"{facts.where} (`{_clip(facts.culprit_code, 100)}`) holds no construct that raises {exception}"
        if not facts.plan.fixes:
            return "no strategy applies: " + "; ".join(f"{name}: {why}" for name, why in facts.plan.skipped.items())
        return "every applicable strategy has been tried: " + ", ".join(fix.strategy.name for fix in facts.plan.fixes)


def _playbook_id(playbook: dict | None) -> int | None:
    try:
        return int(playbook["id"]) if playbook and playbook.get("id") is not None else None
    except (TypeError, ValueError):
        return None


def _unique(items: list[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _file_section(diff: str, path: str) -> str:
    """The part of a unified diff that changes `path` (from its `diff --git` header to the next)."""
    sections = re.split(r"(?m)^(?=diff --git )", diff or "")
    for section in sections:
        if section.startswith(f"diff --git a/{path} b/{path}"):
            return section
    return ""


def _was_tried(fix: rewrites.Fix, path: str, old: str, history: list[AttemptRecord]) -> bool:
    """Whether an earlier attempt made this very change (an attempt the sandbox never ran does not count)."""
    section = unified_diff([FileChange(path, old, fix.new_source)])
    return any(
        attempt.status != "error" and _file_section(attempt.patch, path) == section
        for attempt in history
        if attempt.patch
    )


def _strategies_around(
    facts: _Facts, attempt: AttemptRecord
) -> tuple[rewrites.Strategy | None, rewrites.Strategy | None]:
    """(the strategy `attempt` used, the next applicable one), as far as they can be recognised."""
    if facts.plan is None or facts.plan_source is None:
        return None, None
    fixes = facts.plan.fixes
    used_index = next(
        (
            index
            for index, fix in enumerate(fixes)
            if _was_tried(
                fix, facts.plan_path, facts.plan_source.content, [dataclasses.replace(attempt, status="failed")]
            )
        ),
        None,
    )
    if used_index is None:
        return None, (fixes[0].strategy if fixes else None)
    following = fixes[used_index + 1].strategy if used_index + 1 < len(fixes) else None
    return fixes[used_index].strategy, following


@dataclass
class _Guidance:
    """What earlier attempts and reviewers say about the next one."""

    prefer: list[str] = field(default_factory=list)  # strategy modes, most wanted first
    avoid: list[str] = field(default_factory=list)
    omit_test: bool = False
    reasons: list[str] = field(default_factory=list)

    def rank(self, mode: str) -> int:
        if mode in self.prefer:
            return self.prefer.index(mode) - len(self.prefer)
        return 1 if mode in self.avoid else 0


def _guidance(history: list[AttemptRecord], facts: _Facts) -> _Guidance:
    guidance = _Guidance()
    for attempt in history:
        output = attempt.output or ""
        critic = attempt.critic_feedback or ""
        reviewer = (attempt.reviewer_feedback or "").lower()
        if re.search(r"DID NOT RAISE|\w+ not raised", output) or "keep raising" in critic.lower():
            _prefer(guidance, rewrites.RAISE, "the tests expect this input to raise")
        failing = _TestReport.parse(output).failing
        existing_failed = any("test_quench_regression" not in test for test in failing)
        if existing_failed and re.search(r"assert None\b|where None = ", output):
            _prefer(guidance, rewrites.RAISE, "a test got None where it expected a value")
            guidance.avoid.append(rewrites.RETURN)
        if reviewer:
            if re.search(r"\braise|\berror\b|exception|fail (?:loud|fast)|swallow|silent|hide", reviewer):
                _prefer(guidance, rewrites.RAISE, "the reviewer asked for a clear error")
            elif re.search(r"return early|early return|\bskip\b|\bcontinue\b", reviewer):
                _prefer(guidance, rewrites.RETURN, "the reviewer asked for an early return")
            elif re.search(r"default|\.get\(|fallback", reviewer):
                _prefer(guidance, rewrites.VALUE, "the reviewer asked for a default value")
        # A regression test that cannot import its module or call the function is broken itself;
        # one that fails inside the patched code is doing its job and stays.
        regression_broken = any("test_quench_regression" in test for test in failing) and bool(
            re.search(r"No module named|ImportError while importing|ModuleNotFoundError", output)
            or re.search(r"TypeError: \w+\(\) (?:got an unexpected keyword|missing \d+ required)", output)
        )
        test_exists = re.search(r"test_quench_regression\w*\.py: already exists", output)
        if regression_broken or test_exists or "leave the regression test out" in critic:
            guidance.omit_test = True
    return guidance


def _prefer(guidance: _Guidance, mode: str, reason: str) -> None:
    if mode not in guidance.prefer:
        guidance.prefer.append(mode)
        guidance.reasons.append(reason)


class _TestReport:
    """The parts of a pytest (or unittest) run's output that say what failed."""

    def __init__(self, text: str):
        self.text = text
        self.failing: list[str] = []
        self.errors: list[str] = []
        self.summary = ""

    @classmethod
    def parse(cls, text: str) -> _TestReport:
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
                report.errors.append(_exception_text(exception_type, exception_value))
        summaries = re.findall(r"(?m)^(?:=+ )?(\d+ (?:failed|passed|error).*?|no tests ran) in [\d.]+s", text)
        if summaries:
            report.summary = summaries[-1]
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

    def still_raises(self, exception: str, value: str) -> str:
        """Where the incident's exception is still raised ("file:line"), "yes" when it is but not where; else ""."""
        if not exception or exception == "the exception":
            return ""
        location = re.search(rf"(?m)^(\S+\.py):(\d+): (?:[\w.]+\.)?{re.escape(exception)}\b", self.text)
        if location:
            return f"{location.group(1)}:{location.group(2)}"
        pattern = rf"(?m)^(?:E\s+)?(?:[\w.]+\.)?{re.escape(exception)}(?::|$)"
        if re.search(pattern, self.text) or re.search(rf"still raises {re.escape(exception)}\b", self.text):
            return "yes"
        return ""

"""The offline analyzer: the provider Quench uses when there is no LLM key.

It answers the three questions of `remediation.llm.base` deterministically (the same
context always gives the same answer) from what the traceback and the repository say:

- `diagnose` finds the culprit frame (the deepest in-app frame found in the repository),
  reads its line, explains the exception class (`remediation.explanations`), finds the
  construct on that line that raised (`sites`) and names it in the hypothesis; evidence
  lists the facts it relied on, the rules' findings among them (`rules`: a documented
  default, whether None is allowed, a business value, where the input enters).
- `propose_patch` applies the best allowed strategy the history has not tried (`rules`
  rank them; `critic.guidance` moves them by what earlier attempts and reviewers said) and
  adds the replay test (`replay`): the failing input through the outermost frame that can
  be rebuilt. A patch identical to an earlier one (rejected or failed) is never proposed again.
- `critique` reads the failed attempt's test output (failing test ids, `E` lines, the
  replay test's verdicts, the type checker's errors) and says what failed, why, and what
  the next attempt must do (`critic`).

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
    PostmortemNarrative,
    SourceFile,
    Usage,
)
from remediation.llm.offline import critic, inputs, replay, rewrites, rules, sites
from remediation.llm.offline.critic import clip as _clip
from remediation.llm.offline.critic import exception_text as _exception_text
from remediation.llm.offline.postmortem import postmortem_narrative

MODEL = "offline-analyzer-2"
PLAYBOOK_FIRST_CATEGORIES = (TIMEOUT, DATABASE, RESOURCE, ALERT)
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
    site: sites.CrashSite | None = None
    analysis: rules.Analysis | None = None
    plan_path: str = ""  # the file the site is in (an outer frame for a call without timeout)
    plan_source: SourceFile | None = None

    @property
    def has_exception(self) -> bool:
        return bool(self.exception_type or self.frames)

    @property
    def fixes(self) -> list[rewrites.Fix]:
        return self.analysis.fixes if self.analysis else []

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


def _chain_frames(context: DiagnosisContext, frames: list[dict], last: dict) -> list[inputs.Frame]:
    """The repository frames that lead to `last` without a gap (outermost first), lines resolved on the default branch."""
    index = next(i for i, frame in enumerate(frames) if frame is last)
    chain: list[inputs.Frame] = []
    for frame in reversed(frames[: index + 1]):
        source = context.source_file(frame.get("path") or "")
        line = _resolve_line(source, frame)
        is_culprit = not chain
        if source is None or not line or (not is_culprit and frame.get("function") in (None, "", "<module>")):
            break
        chain.insert(0, inputs.Frame(source.path, line, frame["function"], inputs.literal_locals(frame)))
    return chain


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
        site = sites.find_site(
            source.content, line, facts.exception_type, facts.exception_value, local_timeouts=local_timeouts
        )
        if site is None:
            continue
        facts.site, facts.plan_path, facts.plan_source = site, source.path, source
        facts.analysis = rules.analyze(
            context,
            _chain_frames(context, frames, frame),
            line,
            facts.exception_type,
            facts.exception_value,
            local_timeouts=local_timeouts,
        )
        break
    return facts


def _mentions(text: str, *needles: str) -> bool:
    text = (text or "").lower()
    return any(needle and needle.lower() in text for needle in needles)


def _score(row: dict) -> str:
    """Retrieval's calibrated score (0–1, the same scale everywhere) and which side matched."""
    value = row.get("score")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "unscored"
    matched = row.get("matched")
    return f"score {value:.2f}, {matched}" if matched else f"score {value:.2f}"


class OfflineAnalyzer:
    """Deterministic diagnosis, patches and critique from tracebacks and source code, with no network."""

    name = "offline"
    model = MODEL

    # ------------------------------------------------------------------ postmortem

    def write_postmortem(self, facts: dict) -> PostmortemNarrative:
        """A plain story and recommendations from the postmortem's facts (see offline/postmortem.py)."""
        narrative = postmortem_narrative(facts)
        narrative.usage = Usage(provider=self.name, model=self.model, step="postmortem")
        return narrative

    # ------------------------------------------------------------------ diagnose

    def diagnose(self, context: DiagnosisContext) -> DiagnosisResult:
        """Why the incident happened and what to do, from its frames, source and history."""
        started = time.monotonic()
        facts = _facts(context)
        category = self._category(context, facts)
        has_code_fix = bool(facts.fixes and context.has_repository and facts.plan_source is not None)
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
            risk_level=self._risk(context, facts, category, action, playbook),
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
        skipped = facts.analysis.skipped if facts.analysis else {}
        if skipped and not facts.fixes and all("environment variable" in why for why in skipped.values()):
            return "configuration"
        return facts.explanation.category

    def _hypothesis(self, context: DiagnosisContext, facts: _Facts) -> str:
        if not facts.has_exception:
            return self._alert_hypothesis(context)
        exception = short_type(facts.exception_type) or "An exception"
        site = facts.site
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
        if facts.site:
            site = facts.site
            kind = sites.CRASH_CLASS_LABELS[site.crash_class]
            evidence.append(f"Matched on {facts.plan_path}:{site.line}: {_clip(site.expression, 100)} ({kind})")
        evidence.extend(_rule_evidence(facts.analysis))
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
        if facts.site is not None:
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

    def _risk(self, context: DiagnosisContext, facts: _Facts, category: str, action: str, playbook: dict | None) -> str:
        if action == "playbook":
            risk = (playbook or {}).get("risk_level")
            return risk if risk in RISK_LEVELS else "medium"
        if action == "code_fix":
            return rules.risk(facts.analysis, facts.fixes[0] if facts.fixes else None)
        if context.severity == "critical" or category in (DATABASE, RESOURCE):
            return "high"
        return "medium"

    # ------------------------------------------------------------------ propose_patch

    def propose_patch(
        self, context: DiagnosisContext, diagnosis: DiagnosisResult, history: list[AttemptRecord]
    ) -> PatchProposal | None:
        """The best allowed strategy not tried yet, as a unified diff with the replay test where it can be written."""
        started = time.monotonic()
        facts = _facts(context)
        if not facts.fixes or facts.plan_source is None:
            return None
        guidance = critic.guidance(history)
        remaining = [
            fix
            for fix in facts.fixes
            if not _was_tried(fix, context, history) and fix.strategy.mode not in guidance.exclude
        ]
        if not remaining:
            return None
        remaining.sort(key=lambda fix: (guidance.rank(fix.strategy.mode), rules.rank(facts.analysis, fix)))
        fix = remaining[0]
        changes = [FileChange(fix.path, context.source_file(fix.path).content, fix.new_source)]
        test = _replay_test(context, facts, guidance)
        if isinstance(test, tuple):
            changes.append(FileChange(test[0], None, test[1]))
        diff = unified_diff(changes)
        if not diff:
            return None
        risk = rules.risk(facts.analysis, fix)
        return PatchProposal(
            summary=self._patch_summary(context, facts, fix, test, guidance, remaining[1:], risk),
            diff=diff,
            files_changed=[change.path for change in changes],
            adds_regression_test=len(changes) > 1,
            risk_level=risk,
            usage=Usage(
                provider=self.name,
                model=self.model,
                step="patch",
                prompt_chars=0,
                duration_ms=int((time.monotonic() - started) * 1000),
            ),
        )

    def _patch_summary(self, context, facts, fix, test, guidance, left, risk) -> str:
        site = fix.site
        where = f"{fix.path}:{site.line}" if fix.path == facts.plan_path else fix.path
        function = f" in {fix.function}()" if fix.function else ""
        exception = short_type(facts.exception_type)
        mode = fix.strategy.mode
        analysis = facts.analysis
        if mode == rewrites.TIMEOUT:
            effect = "now the call gives up after a bounded time instead of hanging until the other side does"
        elif mode == rewrites.BOUNDARY:
            effect = (
                f"now that input is refused where it enters ({analysis.boundary_report.why}) instead of {exception}"
            )
        elif mode == rewrites.RAISE:
            effect = f"now that input raises {fix.raises} with a message naming the problem instead of {exception}"
        elif mode == rewrites.DOCUMENTED:
            effect = f"now that input gets the documented default ({analysis.documented.why}) instead of {exception}"
        elif fix.skips_item:
            effect = f"now that item is skipped instead of raising {exception}"
        elif fix.returns_none:
            effect = f"now that input returns None instead of raising {exception} ({analysis.none_why})"
        else:
            effect = f"now that input yields a neutral default ({fix.default}) instead of raising {exception}"
        parts = [
            f"Strategy {fix.strategy.name} ({fix.strategy.description}) at {where}{function}: "
            f"{fix.change}. The code {site.description}; {effect}. Risk {risk}"
            + (f": {analysis.business}." if analysis.business and risk != "low" else ".")
        ]
        if guidance.reasons:
            parts.append("Chosen because " + "; ".join(guidance.reasons) + ".")
        if isinstance(test, tuple):
            planned = facts.analysis.replay(context, skip_outer=guidance.skip_outer)
            entry = planned.entry
            outcome = (
                "must be refused with a clear error naming " + " or ".join(repr(n) for n in planned.must_name)
                if planned.expect == replay.REFUSE
                else "must be handled without a crash"
            )
            parts.append(
                f"Adds {test[0]}: replays the failing input through {entry.link.function.qualname}() "
                f"({entry.link.path}); it {outcome}."
            )
        else:
            parts.append(f"No replay test: {test}.")
        refused = [f"{name} ({why})" for name, why in (analysis.refused.items() if analysis else [])]
        if refused:
            parts.append("Not used: " + "; ".join(_clip(item, 220) for item in refused[:3]) + ".")
        if left:
            parts.append("Strategies left: " + ", ".join(other.strategy.name for other in left) + ".")
        return " ".join(parts)

    # ------------------------------------------------------------------ critique

    def critique(self, context: DiagnosisContext, diagnosis: DiagnosisResult, attempt: AttemptRecord) -> CriticFeedback:
        """What failed in `attempt`, why, and what the next attempt must do, from its status and test output."""
        started = time.monotonic()
        facts = _facts(context)
        report = critic.TestReport.parse(attempt.output or "")
        used, following = _strategies_around(facts, context, attempt)
        exception = short_type(facts.exception_type) or "the exception"
        where = f"{facts.plan_path}:{facts.site.line}" if facts.site else facts.where or "the culprit line"
        used_text = f"{used.name} ({used.description})" if used else f"attempt {attempt.number}'s approach"
        next_text = (
            f"next is {following.name}: {following.description}"
            if following
            else f"every strategy the rules allow for this {sites.CRASH_CLASS_LABELS.get(facts.crash_class or '', 'crash')} "
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
            analysis = facts.analysis
            situation = critic.Situation(
                exception=exception,
                exception_value=facts.exception_value,
                where=where,
                culprit=facts.culprit_function or "the culprit",
                used=used,
                used_text=used_text,
                next_text=next_text,
                boundary=analysis.boundary.function.qualname if analysis and analysis.boundary else "",
                none_why=analysis.none_why if analysis and not analysis.none_ok else "",
                business=analysis.business if analysis else "",
                raise_strategy=next((f.strategy for f in facts.fixes if f.strategy.mode == rewrites.RAISE), None),
            )
            what, why, must = critic.verdict(report, attempt, situation)
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

    def _no_patch_reason(self, context: DiagnosisContext, facts: _Facts) -> str:
        exception = short_type(facts.exception_type)
        if not facts.has_exception:
            return "there is no exception or stack trace, only an alert, so there is no line to change"
        if facts.crash_class is None:
            return f"{exception} is not a crash class with a code strategy (missing key, index, zero division, None, timeout)"
        if not context.has_repository or facts.source is None:
            return f"the culprit file {facts.culprit_path or (facts.culprit or {}).get('filename', '?')} is not in the repository Quench reads"
        if facts.site is None:
            return f"{facts.where} (`{_clip(facts.culprit_code, 100)}`) holds no construct that raises {exception}"
        analysis = facts.analysis
        if not facts.fixes:
            reasons = {**(analysis.skipped if analysis else {}), **(analysis.refused if analysis else {})}
            return "no strategy is allowed: " + "; ".join(f"{name}: {why}" for name, why in reasons.items())
        return "every allowed strategy has been tried: " + ", ".join(fix.strategy.name for fix in facts.fixes)


def _playbook_id(playbook: dict | None) -> int | None:
    try:
        return int(playbook["id"]) if playbook and playbook.get("id") is not None else None
    except (TypeError, ValueError):
        return None


def _replay_test(context: DiagnosisContext, facts: _Facts, guidance: critic.Guidance) -> tuple[str, str] | str:
    """The replay test for this incident (path, content), or why none is written."""
    if guidance.omit_test:
        return "an earlier attempt's replay test failed for reasons of its own, so this attempt leaves it out"
    planned = facts.analysis.replay(context, skip_outer=guidance.skip_outer)
    if isinstance(planned, str):
        return planned
    if any(replay.runs_code_on_import(context.source_file(e.link.path).content) for e in planned.entries):
        return "importing the entry point's module runs its own code at top level, so a test cannot import it safely"
    try:
        test = replay.replay_test_file(
            planned, facts.analysis.sources, test_command=context.test_command, incident=f"#{context.incident_id}"
        )
    except (SyntaxError, ValueError, TypeError) as exc:  # a test that would not even parse is left out
        return f"the replay test could not be written ({type(exc).__name__}: {exc})"
    if isinstance(test, tuple) and context.source_file(test[0]) is not None:
        return f"{test[0]} already exists in the repository"
    return test


def replay_test_for(context: DiagnosisContext) -> tuple[str, str] | str:
    """The replay test Quench adds to a fix of this incident, whoever writes the fix: (path, content), or why none."""
    facts = _facts(context)
    if facts.analysis is None or facts.analysis.target is None:
        return "no construct that raised was found on the culprit line"
    return _replay_test(context, facts, critic.Guidance())


def _rule_evidence(analysis: rules.Analysis | None) -> list[str]:
    """What the rules found, as evidence lines (each a fact a reviewer can check in the code)."""
    if analysis is None or analysis.target is None or analysis.target.crash_class == sites.MISSING_TIMEOUT:
        return []
    lines = []
    if analysis.documented is not None:
        lines.append(f"Documented default: {analysis.documented.why}")
    if analysis.business:
        lines.append(f"Business value: {analysis.business}")
    if analysis.none_why:
        lines.append(f"None: {analysis.none_why}")
    if analysis.boundary is not None:
        lines.append(
            f"The input enters at {analysis.boundary.function.qualname}() ({analysis.boundary.path}:"
            f"{analysis.boundary.line}), which can refuse it: {analysis.boundary_report.why}"
        )
    lines.append(
        "The replay must "
        + (
            "refuse the failing input with a clear error"
            if analysis.expect == replay.REFUSE
            else "serve the failing input"
        )
        + f": {analysis.expect_why}"
    )
    return lines


_STRING_LITERAL = re.compile(r"""(["'])(?:\\.|(?!\1).)*\1""")


def _code_sections(diff: str) -> dict[str, tuple[str, ...]]:
    """What a unified diff changes in code, by path (the replay and regression tests left out).

    Only the added and removed lines count (indented as they are), with string literals
    blanked: the same guard with another message (or a diff with or without `index` lines)
    is the same change, so a patch a reviewer rejected does not come back reworded.
    """
    sections = {}
    for section in re.split(r"(?m)^(?=diff --git )", diff or ""):
        match = re.match(r"diff --git a/(\S+) b/", section)
        if match and not PurePosixPath(match.group(1)).name.startswith(critic.TEST_MARKERS):
            sections[match.group(1)] = tuple(
                line[0] + _STRING_LITERAL.sub('""', line[1:].rstrip())
                for line in section.splitlines()
                if line[:1] in "+-" and not line.startswith(("+++", "---")) and line[1:].strip()
            )
    return sections


def _was_tried(fix: rewrites.Fix, context: DiagnosisContext, history: list[AttemptRecord]) -> bool:
    """Whether an earlier attempt made this very change (an attempt the sandbox never ran does not count)."""
    source = context.source_file(fix.path)
    if source is None:
        return False
    mine = _code_sections(unified_diff([FileChange(fix.path, source.content, fix.new_source)]))
    return any(
        attempt.status != "error" and _code_sections(attempt.patch) == mine for attempt in history if attempt.patch
    )


def _strategies_around(
    facts: _Facts, context: DiagnosisContext, attempt: AttemptRecord
) -> tuple[rewrites.Strategy | None, rewrites.Strategy | None]:
    """(the strategy `attempt` used, the next allowed one), as far as they can be recognised."""
    fixes = facts.fixes
    tried = dataclasses.replace(attempt, status="failed")
    used = next(
        (fix for fix in (facts.analysis.candidates if facts.analysis else []) if _was_tried(fix, context, [tried])),
        None,
    )
    following = next((fix.strategy for fix in fixes if fix is not used and not _was_tried(fix, context, [tried])), None)
    if used is not None and used in fixes:
        index = fixes.index(used)
        following = fixes[index + 1].strategy if index + 1 < len(fixes) else None
    return (used.strategy if used else None), following

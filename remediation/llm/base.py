"""The contract every LLM provider meets, and the plain data that crosses it.

A provider gets a `DiagnosisContext` (everything known about an incident, already
redacted) and answers three questions:

- `diagnose(context)` → `DiagnosisResult`: why it happened and what to do.
- `propose_patch(context, diagnosis, history)` → `PatchProposal | None`: a unified diff
  against the service repository (None when it cannot write one).
- `critique(context, diagnosis, attempt)` → `CriticFeedback`: why a patch's test run failed
  and what the next attempt must do differently.

Each answer carries its `Usage` (provider, model, prompt size, tokens, duration) so the
decision chain can be recorded. Providers never touch the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

RECOMMENDED_ACTIONS = ("playbook", "code_fix", "escalate")
RISK_LEVELS = ("low", "medium", "high")


class LLMError(Exception):
    """A provider could not answer (after its retries). `retryable` says whether later may work."""

    def __init__(self, message: str, *, retryable: bool = True):
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.usage: Usage | None = None  # set when the provider answered but the answer was unusable


class QuotaExhausted(LLMError):
    """The provider refuses for billing/quota reasons: retrying will not help until someone acts."""

    def __init__(self, message: str):
        super().__init__(message, retryable=False)


@dataclass
class Usage:
    """What one provider call cost."""

    provider: str
    model: str = ""
    step: str = ""  # diagnose, patch, critique
    prompt_chars: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    duration_ms: int = 0
    attempts: int = 1  # HTTP attempts, retries included

    def as_dict(self) -> dict:
        return {
            "step": self.step,
            "provider": self.provider,
            "model": self.model,
            "prompt_chars": self.prompt_chars,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "duration_ms": self.duration_ms,
            "attempts": self.attempts,
        }


@dataclass
class SourceFile:
    """A file of the service repository at its default branch, as the culprit frames point into it."""

    path: str  # relative to the repository root, POSIX separators
    content: str
    lines_of_interest: list[int] = field(default_factory=list)  # 1-based lines the traceback names

    def excerpt(self, around: int = 12) -> str:
        """Numbered source lines around each line of interest (the whole file when none)."""
        lines = self.content.splitlines()
        if not self.lines_of_interest:
            keep = range(len(lines))
        else:
            wanted: set[int] = set()
            for line in self.lines_of_interest:
                wanted.update(range(max(0, line - 1 - around), min(len(lines), line + around)))
            keep = sorted(wanted)
        out, previous = [], None
        for index in keep:
            if previous is not None and index != previous + 1:
                out.append("   ...")
            marker = ">>" if index + 1 in self.lines_of_interest else "  "
            out.append(f"{marker}{index + 1:5d} | {lines[index]}")
            previous = index
        return "\n".join(out)


@dataclass
class DiagnosisContext:
    """Everything a provider may use about one incident. Secrets are redacted before it is built."""

    incident_id: int
    title: str
    service: str = ""
    environment: str = ""
    severity: str = ""
    category: str = ""
    alertname: str = ""
    kind: str = ""  # alert, error, log
    labels: dict[str, str] = field(default_factory=dict)
    exception_type: str = ""
    exception_value: str = ""
    traceback: str = ""  # the full text, never truncated
    # Outermost first, as Python prints them: {module, function, filename, lineno, in_app, context_line,
    # and `path` (repository-relative) when the file was found in the service repository}.
    frames: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)  # latest events: {received_at, title, message, labels, ...}
    event_count: int = 0
    regression_count: int = 0
    source_files: list[SourceFile] = field(default_factory=list)  # culprit files from the repository
    similar_incidents: list[dict] = field(default_factory=list)  # {id, title, score, status, resolution}
    knowledge: list[dict] = field(default_factory=list)  # {id, title, kind, score, excerpt}
    playbooks: list[dict] = field(default_factory=list)  # candidates: {id, name, description, risk_level, why}
    complaints: list[dict] = field(default_factory=list)  # {customer_id, message, reported_at}
    test_command: str = ""
    has_repository: bool = False

    def source_file(self, path: str) -> SourceFile | None:
        return next((file for file in self.source_files if file.path == path), None)

    def culprit_frame(self) -> dict | None:
        """The deepest in-app frame found in the repository, else the deepest in-app frame."""
        in_repo = [frame for frame in self.frames if frame.get("path")]
        if in_repo:
            return in_repo[-1]
        in_app = [frame for frame in self.frames if frame.get("in_app", True)]
        return in_app[-1] if in_app else None


@dataclass
class DiagnosisResult:
    """A provider's answer to "why did this happen and what should we do"."""

    hypothesis: str
    confidence: float  # 0..1
    evidence: list[str] = field(default_factory=list)
    explanation: str = ""  # what the exception class means
    culprit_file: str = ""  # repository-relative when known
    culprit_line: int | None = None
    culprit_function: str = ""
    category: str = ""
    recommended_action: str = "escalate"  # one of RECOMMENDED_ACTIONS
    risk_level: str = "medium"  # one of RISK_LEVELS
    playbook_id: int | None = None  # when recommending a playbook: one of context.playbooks
    usage: Usage | None = None


@dataclass
class AttemptRecord:
    """A previous fix attempt, as the next patch or the critic sees it."""

    number: int
    patch: str
    status: str  # passed, failed, timed_out, invalid_patch, no_patch, error
    output: str = ""  # the test run's output (already truncated)
    exit_code: int | None = None
    critic_feedback: str = ""  # WHAT FAILED / WHY / NEXT ATTEMPT MUST, when the critic ran
    reviewer_feedback: str = ""  # a human's rejection feedback, when there was one


@dataclass
class PatchProposal:
    """A patch as a unified diff (paths `a/...` and `b/...` relative to the repository root)."""

    summary: str
    diff: str
    files_changed: list[str] = field(default_factory=list)
    adds_regression_test: bool = False
    risk_level: str = ""  # what this patch changes, when the provider judged it ("" → the diagnosis's)
    usage: Usage | None = None


@dataclass
class CriticFeedback:
    """Why a fix attempt failed and what the next one must do."""

    what_failed: str
    why: str
    next_attempt_must: str
    usage: Usage | None = None


@dataclass
class PostmortemNarrative:
    """A postmortem's prose: the summary story and the recommendations (never its facts)."""

    summary: str
    recommendations: list[str] = field(default_factory=list)
    usage: Usage | None = None


class LLMProvider(Protocol):
    name: str
    model: str

    def diagnose(self, context: DiagnosisContext) -> DiagnosisResult: ...

    def propose_patch(
        self, context: DiagnosisContext, diagnosis: DiagnosisResult, history: list[AttemptRecord]
    ) -> PatchProposal | None: ...

    def critique(
        self, context: DiagnosisContext, diagnosis: DiagnosisResult, attempt: AttemptRecord
    ) -> CriticFeedback: ...

    def write_postmortem(self, facts: dict) -> PostmortemNarrative: ...


PROVIDERS = {
    "anthropic": "remediation.llm.anthropic.AnthropicProvider",
    "offline": "remediation.llm.offline.OfflineAnalyzer",
}


def get_llm_provider() -> LLMProvider:
    """The provider settings choose: `QUENCH_LLM_PROVIDER`, or Anthropic when a key is set, else offline."""
    name = settings.QUENCH_LLM_PROVIDER
    if name == "auto":
        name = "anthropic" if settings.ANTHROPIC_API_KEY else "offline"
    return import_string(PROVIDERS[name])()

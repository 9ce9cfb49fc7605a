"""The Anthropic provider: Claude, through the `anthropic` SDK, answering through forced tool use.

Each step offers the model exactly one tool and forces it (`tool_choice={"type": "tool", ...}`),
so the answer arrives as the tool call's JSON `input`, which is validated here before it
becomes a `DiagnosisResult`, `PatchProposal` or `CriticFeedback`. Patches are asked for as
exact search/replace edits and new files; the unified diff is made here, from the edits
applied to the files the context holds (`remediation.diffs.unified_diff`), so the model
never has to get diff syntax right.

Decisions worth knowing:
- `ANTHROPIC_TEMPERATURE` is not sent. The SDK (2.x) speaks API version 2026-10-21, which
  rejects `temperature`, `top_p` and `top_k` with a 400 even at their defaults, and the SDK
  removed the parameters from `messages.create`.
- A model that always thinks refuses a forced tool choice with a 400 naming `tool_choice`;
  the request is then repeated once with `tool_choice={"type": "auto"}` (the system prompt
  still says to answer only through the tool, and an answer without it is an error).
- The SDK's own retries are off (`max_retries=0`); this module retries 429, 408, 5xx and
  529 (overloaded) answers, timeouts and connection errors up to `ANTHROPIC_MAX_RETRIES`
  times, waiting 1s, 2s, 4s, ... (capped at 60s, plus up to 10% jitter). When the answer
  carries `retry-after` (or `retry-after-ms`), the wait is max(retry-after, backoff): the
  server's word is the least we wait. A retry-after above the 60s cap ends the retries at
  once (a retryable `LLMError`): sleeping that long inside one task would outlast it.
- Billing and spend-limit refusals raise `QuotaExhausted` at once; a refused key raises a
  non-retryable `LLMError`. No message or log line ever holds the API key.
- An `LLMError` raised after the API answered (the answer was unusable) carries the call's
  `Usage` as `error.usage`, so the tokens spent can still be recorded.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anthropic
from django.conf import settings

from incidents.redaction import REDACTED, redact_text
from remediation.diffs import FileChange, unified_diff
from remediation.llm import prompts
from remediation.llm.base import (
    RECOMMENDED_ACTIONS,
    RISK_LEVELS,
    AttemptRecord,
    CriticFeedback,
    DiagnosisContext,
    DiagnosisResult,
    LLMError,
    PatchProposal,
    PostmortemNarrative,
    QuotaExhausted,
    Usage,
)
from remediation.sandbox import path_problem

logger = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 60.0
JITTER_FRACTION = 0.1
ERROR_TEXT_CHARS = 300  # of a server message or a model's stray text quoted in an error

# Spend limits come back as 429 or 402 with these codes: waiting minutes will not lift them.
_QUOTA_ERROR_CODES = frozenset(
    {
        "enforced_spend_limit_reached",
        "contract_spend_limit_reached",
        "linked_organization_spend_limit_reached",
        "linked_organization_billing_unavailable",
    }
)
# "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to ... purchase credits."
_CREDIT_MESSAGE = re.compile(r"credit balance|purchase credits", re.IGNORECASE)
_QUOTA_ADVICE = (
    "Top up the organization's API credits or raise its spend limit in the Anthropic Console "
    "(Settings → Billing / Limits) and check its plan, then run the diagnosis again; until then "
    "QUENCH_LLM_PROVIDER=offline switches Quench to the offline analyzer."
)


class AnthropicProvider:
    """Claude as Quench's diagnostician, fixer and critic (see the module docstring for the rules)."""

    name = "anthropic"

    def __init__(self, *, client: anthropic.Anthropic | None = None, sleep: Callable[[float], None] = time.sleep):
        self.model = settings.ANTHROPIC_MODEL
        self.max_tokens = settings.ANTHROPIC_MAX_TOKENS
        self.max_retries = max(0, settings.ANTHROPIC_MAX_RETRIES)
        self._sleep = sleep
        self._client = client if client is not None else _client_from_settings()
        # Kept only to scrub it out of any text that could end up in a message or a log line.
        self._secrets = [key for key in (settings.ANTHROPIC_API_KEY, getattr(self._client, "api_key", None)) if key]

    # --- the three steps ---

    def diagnose(self, context: DiagnosisContext) -> DiagnosisResult:
        """Why the incident happened and what to do, from the `record_diagnosis` tool call."""
        answer, usage = self._ask(
            "diagnose", prompts.DIAGNOSE_SYSTEM, prompts.diagnose_prompt(context), _diagnosis_tool(context), context
        )
        with _usage_on_error(usage):
            result = _parse_diagnosis(answer, context)
        result.usage = usage
        return result

    def propose_patch(
        self, context: DiagnosisContext, diagnosis: DiagnosisResult, history: list[AttemptRecord]
    ) -> PatchProposal | None:
        """A patch built from the `propose_patch` tool call's edits, or None when the model gives up."""
        answer, usage = self._ask(
            "patch", prompts.PATCH_SYSTEM, prompts.patch_prompt(context, diagnosis, history), _PATCH_TOOL, context
        )
        with _usage_on_error(usage):
            if answer.get("give_up") is True:
                reason = _optional_text(answer, "give_up_reason") or "no reason given"
                logger.info(
                    "Claude wrote no patch: %s",
                    self._scrub(reason)[:ERROR_TEXT_CHARS],
                    extra={"incident_id": context.incident_id},
                )
                return None
            proposal = build_patch(answer, context)
        proposal.usage = usage
        return proposal

    def critique(self, context: DiagnosisContext, diagnosis: DiagnosisResult, attempt: AttemptRecord) -> CriticFeedback:
        """Why a fix attempt failed and what the next one must do, from the `critique_attempt` tool call."""
        answer, usage = self._ask(
            "critique",
            prompts.CRITIQUE_SYSTEM,
            prompts.critique_prompt(context, diagnosis, attempt),
            _CRITIQUE_TOOL,
            context,
        )
        with _usage_on_error(usage):
            feedback = CriticFeedback(
                what_failed=_required_text(answer, "what_failed"),
                why=_required_text(answer, "why"),
                next_attempt_must=_required_text(answer, "next_attempt_must"),
            )
        feedback.usage = usage
        return feedback

    def write_postmortem(self, facts: dict) -> PostmortemNarrative:
        """A postmortem's summary and recommendations, from the `write_postmortem` tool call."""
        context = DiagnosisContext(incident_id=facts["incident"]["id"], title=facts["incident"]["title"])
        answer, usage = self._ask(
            "postmortem", prompts.POSTMORTEM_SYSTEM, prompts.postmortem_prompt(facts), _POSTMORTEM_TOOL, context
        )
        with _usage_on_error(usage):
            narrative = PostmortemNarrative(
                summary=self._scrub(_required_text(answer, "summary")),
                recommendations=[
                    self._scrub(item) for item in _text_list(answer.get("recommendations"), "recommendations")
                ],
            )
        narrative.usage = usage
        return narrative

    # --- one Messages API call, with retries ---

    def _ask(
        self, step: str, system: str, prompt: str, tool: dict, context: DiagnosisContext
    ) -> tuple[dict[str, Any], Usage]:
        """The forced tool call's input and the call's usage; raises LLMError / QuotaExhausted."""
        request: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": system,
            "messages": [{"role": "user", "content": prompt}],
            "tools": [tool],
            "tool_choice": {"type": "tool", "name": tool["name"]},
        }
        log_extra = {"incident_id": context.incident_id, "llm_step": step}
        started = time.monotonic()
        attempts = failures = 0
        while True:
            attempts += 1
            try:
                message = self._client.messages.create(**request)
                break
            except anthropic.APIStatusError as exc:
                if request["tool_choice"]["type"] == "tool" and _refuses_forced_tool_choice(exc):
                    # No failure of the service: this model cannot be forced; ask again at once.
                    request["tool_choice"] = {"type": "auto"}
                    logger.info("%s refuses a forced tool choice; asking with tool_choice=auto", self.model)
                    continue
                if (refusal := self._refusal(exc)) is not None:
                    raise refusal from None
                failure, retry_after = self._describe(exc), _retry_after(exc)
            except anthropic.APITimeoutError:
                failure, retry_after = f"timed out after {settings.ANTHROPIC_TIMEOUT_SECONDS}s", None
            except anthropic.APIConnectionError as exc:
                failure, retry_after = f"connection failed ({self._scrub(str(exc.__cause__ or exc))})", None
            except anthropic.AnthropicError as exc:
                raise LLMError(
                    f"The Anthropic client failed: {type(exc).__name__}: {self._scrub(str(exc))}", retryable=False
                ) from None
            failures += 1
            if failures > self.max_retries:
                raise LLMError(f"The Anthropic API still failed after {attempts} attempt(s): {failure}.")
            delay = _retry_delay(failures, retry_after)
            if delay is None:
                raise LLMError(
                    f"The Anthropic API asked to wait {retry_after:.0f}s before retrying ({failure}), longer than "
                    f"one task waits; try again later (after {attempts} attempt(s))."
                )
            logger.warning(
                "Anthropic API %s (attempt %d); retrying in %.1fs",
                failure,
                attempts,
                delay,
                extra=log_extra,
            )
            self._sleep(delay)

        usage = Usage(
            provider=self.name,
            model=getattr(message, "model", None) or self.model,
            step=step,
            prompt_chars=len(system) + len(prompt),
            input_tokens=getattr(message.usage, "input_tokens", 0) or 0,
            output_tokens=getattr(message.usage, "output_tokens", 0) or 0,
            duration_ms=int((time.monotonic() - started) * 1000),
            attempts=attempts,
        )
        logger.info(
            "Anthropic %s answered: %d input / %d output tokens, %d attempt(s), %d ms",
            step,
            usage.input_tokens,
            usage.output_tokens,
            usage.attempts,
            usage.duration_ms,
            extra=log_extra,
        )
        with _usage_on_error(usage):
            return self._tool_input(message, tool["name"]), usage

    def _refusal(self, exc: anthropic.APIStatusError) -> LLMError | None:
        """The error to raise at once for an error answer, or None when it is worth retrying."""
        status = exc.status_code
        described = self._describe(exc)
        if _is_quota_error(exc):
            return QuotaExhausted(f"Anthropic refused the request for billing reasons ({described}). {_QUOTA_ADVICE}")
        if status == 401 or exc.type == "authentication_error":
            return LLMError(
                f"Anthropic refused the API key ({described}). Check ANTHROPIC_API_KEY (or ANTHROPIC_API_KEY_FILE).",
                retryable=False,
            )
        if status == 403:
            return LLMError(
                f"Anthropic refused the API key access to this request ({described}). Check the workspace and "
                f"permissions of ANTHROPIC_API_KEY, and that it may use ANTHROPIC_MODEL={self.model}.",
                retryable=False,
            )
        if status in (408, 429) or status >= 500:
            return None
        if status == 404:
            return LLMError(
                f"The Anthropic API answered not found ({described}). Check ANTHROPIC_MODEL={self.model} "
                "and ANTHROPIC_BASE_URL.",
                retryable=False,
            )
        return LLMError(f"The Anthropic API rejected the request ({described}).", retryable=False)

    def _describe(self, exc: anthropic.APIStatusError) -> str:
        """'HTTP 529 overloaded_error: Overloaded' from an error answer, without anything secret."""
        text = f"HTTP {exc.status_code}"
        if exc.type:
            text += f" {exc.type}"
        if exc.api_message:
            text += f": {self._scrub(exc.api_message)[:ERROR_TEXT_CHARS]}"
        return text

    def _tool_input(self, message: Any, tool_name: str) -> dict[str, Any]:
        """The input of the message's call of `tool_name`; LLMError when there is no complete one."""
        stop_reason = getattr(message, "stop_reason", None)
        if stop_reason == "max_tokens":
            raise LLMError(
                f"Claude's answer was cut off at max_tokens ({self.max_tokens}) before {tool_name} was complete; "
                "raise ANTHROPIC_MAX_TOKENS."
            )
        if stop_reason == "refusal":
            raise LLMError(f"Claude refused to answer (stop_reason refusal) instead of calling {tool_name}.")
        content = list(getattr(message, "content", None) or [])
        call = next(
            (block for block in content if block.type == "tool_use" and getattr(block, "name", "") == tool_name), None
        )
        if call is None:
            said = " ".join(getattr(block, "text", "") for block in content if block.type == "text").strip()
            quoted = f': "{self._scrub(said)[:ERROR_TEXT_CHARS]}"' if said else ""
            raise LLMError(f"Claude answered without calling {tool_name} (stop_reason {stop_reason}){quoted}.")
        if not isinstance(call.input, dict):
            raise LLMError(f"Claude called {tool_name} with input that is not a JSON object.")
        return call.input

    def _scrub(self, text: str) -> str:
        """`text` with known secret shapes and this provider's API key redacted."""
        text = redact_text(text)
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


def _client_from_settings() -> anthropic.Anthropic:
    if not settings.ANTHROPIC_API_KEY:
        raise LLMError(
            "The Anthropic provider needs ANTHROPIC_API_KEY (or ANTHROPIC_API_KEY_FILE); "
            "without one, use QUENCH_LLM_PROVIDER=offline.",
            retryable=False,
        )
    return anthropic.Anthropic(
        api_key=settings.ANTHROPIC_API_KEY,
        base_url=settings.ANTHROPIC_BASE_URL or None,
        timeout=float(settings.ANTHROPIC_TIMEOUT_SECONDS),
        max_retries=0,  # retried here, to honour retry-after and count attempts
    )


@contextmanager
def _usage_on_error(usage: Usage) -> Iterator[None]:
    """Attach `usage` to an LLMError raised inside the block: tokens were spent on an unusable answer."""
    try:
        yield
    except LLMError as exc:
        if getattr(exc, "usage", None) is None:
            exc.usage = usage
        raise


# --- errors and retries ---


def _is_quota_error(exc: anthropic.APIStatusError) -> bool:
    """A billing, credit or spend-limit refusal: retrying will not help until someone acts."""
    if exc.status_code == 402 or exc.type == "billing_error" or exc.error_code in _QUOTA_ERROR_CODES:
        return True
    return exc.status_code in (400, 403) and bool(_CREDIT_MESSAGE.search(exc.api_message or ""))


def _refuses_forced_tool_choice(exc: anthropic.APIStatusError) -> bool:
    """'Thinking may not be enabled when tool_choice forces tool use.' and its kin."""
    return exc.status_code == 400 and "tool_choice" in (exc.api_message or "")


def _retry_after(exc: anthropic.APIStatusError) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms` or `retry-after` in seconds), if it said."""
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue  # an HTTP date: Anthropic sends seconds; fall back to our own backoff
        if seconds >= 0:
            return seconds
    return None


def _retry_delay(attempt: int, retry_after: float | None) -> float | None:
    """Seconds to wait after failed attempt number `attempt` (1-based); None when the server wants too long."""
    if retry_after is not None and retry_after > BACKOFF_CAP_SECONDS:
        return None
    backoff = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    backoff += random.uniform(0, JITTER_FRACTION * backoff)
    return max(retry_after, backoff) if retry_after is not None else backoff


# --- the tools ---


def _diagnosis_tool(context: DiagnosisContext) -> dict:
    playbook_ids = [playbook["id"] for playbook in context.playbooks if isinstance(playbook.get("id"), int)]
    return {
        "name": prompts.DIAGNOSE_TOOL,
        "description": "Record the diagnosis of the incident: the root cause, the evidence and what to do.",
        "input_schema": {
            "type": "object",
            "properties": {
                "hypothesis": {"type": "string", "description": "The root-cause hypothesis, specific and checkable."},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "evidence": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Facts from the data that support the hypothesis, one per item.",
                },
                "explanation": {"type": "string", "description": "What the exception class means in general."},
                "culprit_file": {"type": "string", "description": "Repository-relative path, or empty."},
                "culprit_line": {"type": ["integer", "null"]},
                "culprit_function": {"type": "string"},
                "category": {
                    "type": "string",
                    "description": "A short category, e.g. database, dependency, configuration, code, resource.",
                },
                "recommended_action": {"type": "string", "enum": list(RECOMMENDED_ACTIONS)},
                "risk_level": {"type": "string", "enum": list(RISK_LEVELS)},
                "playbook_id": {
                    "type": ["integer", "null"],
                    "enum": [*playbook_ids, None],
                    "description": "The id of the candidate playbook to run when recommending one, else null.",
                },
            },
            "required": ["hypothesis", "confidence", "evidence", "recommended_action", "risk_level"],
        },
    }


_PATCH_TOOL = {
    "name": prompts.PATCH_TOOL,
    "description": (
        "Propose a fix as exact search/replace edits to the given source files plus new files (a regression test), "
        "or give up when no safe patch can be written."
    ),
    "input_schema": {
        "type": "object",
        "properties": {
            "summary": {"type": "string", "description": "One or two sentences: what the patch changes and why."},
            "edits": {
                "type": "array",
                "description": "Applied in order; each search text must occur exactly once in the file at that point.",
                "items": {
                    "type": "object",
                    "properties": {
                        "path": {"type": "string", "description": "Repository-relative path of a given file."},
                        "search": {"type": "string", "description": "Exact text of the file, without line numbers."},
                        "replace": {"type": "string", "description": "The text that replaces it."},
                    },
                    "required": ["path", "search", "replace"],
                },
            },
            "new_files": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "path": {"type": "string", "description": "Repository-relative path, e.g. tests/test_x.py."},
                        "content": {"type": "string", "description": "The whole file."},
                    },
                    "required": ["path", "content"],
                },
            },
            "give_up": {"type": "boolean", "description": "True when no safe patch can be written."},
            "give_up_reason": {"type": "string"},
        },
        "required": ["give_up"],
    },
}

_POSTMORTEM_TOOL = {
    "name": prompts.POSTMORTEM_TOOL,
    "description": "Record the postmortem's narrative summary and its recommendations.",
    "input_schema": {
        "type": "object",
        "properties": {
            "summary": {"type": "string", "description": "What happened, in one or two short paragraphs."},
            "recommendations": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Concrete changes that prevent a recurrence or shorten the next incident.",
            },
        },
        "required": ["summary", "recommendations"],
    },
}

_CRITIQUE_TOOL = {
    "name": prompts.CRITIQUE_TOOL,
    "description": "Record why the fix attempt failed and what the next attempt must do differently.",
    "input_schema": {
        "type": "object",
        "properties": {
            "what_failed": {"type": "string", "description": "Which test or step failed, with the decisive error."},
            "why": {"type": "string", "description": "Why the patch did not work."},
            "next_attempt_must": {"type": "string", "description": "Instructions for the next attempt."},
        },
        "required": ["what_failed", "why", "next_attempt_must"],
    },
}


# --- reading the answers ---


def _parse_diagnosis(answer: dict[str, Any], context: DiagnosisContext) -> DiagnosisResult:
    action = _choice(answer, "recommended_action", RECOMMENDED_ACTIONS)
    playbook_id = _playbook_id(answer.get("playbook_id"), context)
    if action == "playbook" and playbook_id is None:
        raise LLMError(f"{prompts.DIAGNOSE_TOOL}: recommended_action is playbook but no candidate playbook_id given.")
    culprit = context.culprit_frame() or {}
    culprit_file = _optional_text(answer, "culprit_file")
    culprit_line = _optional_line(answer.get("culprit_line"))
    culprit_function = _optional_text(answer, "culprit_function")
    if not culprit_file:  # the model did not name one: the traceback's culprit frame is the best guess
        culprit_file = culprit.get("path") or culprit.get("filename") or ""
        culprit_line = culprit_line or _optional_line(culprit.get("lineno"))
        culprit_function = culprit_function or str(culprit.get("function") or "")
    return DiagnosisResult(
        hypothesis=_required_text(answer, "hypothesis"),
        confidence=_confidence(answer.get("confidence")),
        evidence=_text_list(answer.get("evidence"), "evidence"),
        explanation=_optional_text(answer, "explanation"),
        culprit_file=culprit_file,
        culprit_line=culprit_line,
        culprit_function=culprit_function,
        category=_optional_text(answer, "category") or context.category,
        recommended_action=action,
        risk_level=_choice(answer, "risk_level", RISK_LEVELS),
        playbook_id=playbook_id if action == "playbook" else None,
    )


def build_patch(answer: dict[str, Any], context: DiagnosisContext) -> PatchProposal:
    """A `PatchProposal` from `propose_patch` input: edits applied to the context's files, then diffed.

    Public so that other providers can ask for the same edit format. Raises LLMError when an
    edit cannot be applied (non-retryable when a path is unsafe: absolute, `..`, `.git*`).
    """
    edits = answer.get("edits") or []
    new_files = answer.get("new_files") or []
    if not isinstance(edits, list) or not isinstance(new_files, list):
        raise LLMError(f"{prompts.PATCH_TOOL}: edits and new_files must be lists.")
    if not edits and not new_files:
        raise LLMError(f"{prompts.PATCH_TOOL}: no edits and no new files, and give_up is not true.")
    originals: dict[str, str | None] = {}
    contents: dict[str, str] = {}
    for number, edit in enumerate(edits, 1):
        if not isinstance(edit, dict):
            raise LLMError(f"{prompts.PATCH_TOOL}: edit {number} is not an object.")
        path = safe_repository_path(edit.get("path"))
        search, replace = edit.get("search"), edit.get("replace")
        if not isinstance(search, str) or not search or not isinstance(replace, str):
            raise LLMError(f"{prompts.PATCH_TOOL}: edit {number} ({path}) needs a non-empty search and a replace text.")
        if path not in contents:
            source = context.source_file(path)
            if source is None:
                given = ", ".join(file.path for file in context.source_files) or "none"
                raise LLMError(
                    f"{prompts.PATCH_TOOL}: edit {number} changes {path}, which is not one of the files given "
                    f"({given}); only those can be edited, other files can only be added as new files."
                )
            originals[path] = contents[path] = source.content
        contents[path] = _replace_once(contents[path], search, replace, f"edit {number} ({path})")
    for number, new_file in enumerate(new_files, 1):
        if not isinstance(new_file, dict):
            raise LLMError(f"{prompts.PATCH_TOOL}: new file {number} is not an object.")
        path = safe_repository_path(new_file.get("path"))
        content = new_file.get("content")
        if not isinstance(content, str) or not content.strip():
            raise LLMError(f"{prompts.PATCH_TOOL}: new file {number} ({path}) has no content.")
        if path in contents:
            raise LLMError(f"{prompts.PATCH_TOOL}: {path} is both edited and given as a new file.")
        existing = context.source_file(path)
        originals[path] = existing.content if existing else None
        contents[path] = content if content.endswith("\n") else content + "\n"
    changes = [FileChange(path=path, old=originals[path], new=contents[path]) for path in contents]
    diff = unified_diff(changes)
    if not diff:
        raise LLMError(f"{prompts.PATCH_TOOL}: the edits change nothing.")
    files_changed = [change.path for change in changes if change.old != change.new]
    return PatchProposal(
        summary=_optional_text(answer, "summary") or "Patch proposed by Claude.",
        diff=diff,
        files_changed=files_changed,
        adds_regression_test=any(is_test_path(path) for path in files_changed),
    )


def safe_repository_path(raw: object) -> str:
    """`raw` as a clean repository-relative POSIX path; LLMError (non-retryable) for anything that could escape."""
    if not isinstance(raw, str) or not raw.strip():
        raise LLMError(f"{prompts.PATCH_TOOL}: a file path is missing.", retryable=False)
    path = raw.strip()
    shown = path[:200]
    # The sandbox's rule for every patch path, then what is stricter for a model's edits:
    # POSIX separators only, and no .git* files (.github, .gitignore) either.
    if problem := path_problem(path):
        raise LLMError(f"Refused patch path {shown!r}: {problem}.", retryable=False)
    if "\\" in path:
        raise LLMError(f"Refused patch path {shown!r}: use POSIX separators.", retryable=False)
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if not parts or parts[0].startswith(".git"):
        raise LLMError(f"Refused patch path {shown!r}: .git and .git* files are not patched.", retryable=False)
    return "/".join(parts)


def is_test_path(path: str) -> bool:
    """Whether a repository path is a test: under a tests/test directory, or named test_*.py / *_test.py."""
    *directories, name = path.split("/")
    return (
        any(directory in ("tests", "test") for directory in directories)
        or name.startswith("test_")
        or name.endswith("_test.py")
    )


def _replace_once(content: str, search: str, replace: str, what: str) -> str:
    count = content.count(search)
    if count == 1:
        return content.replace(search, replace, 1)
    if count == 0:
        hint = (
            " It contains [REDACTED], which stands for a hidden value: leave that line out."
            if REDACTED in search
            else ""
        )
        raise LLMError(
            f"{prompts.PATCH_TOOL}: {what}: the search text does not occur in the file; copy it exactly, "
            f"without the line-number gutter.{hint}"
        )
    raise LLMError(
        f"{prompts.PATCH_TOOL}: {what}: the search text occurs {count} times; include more surrounding lines "
        "so that it occurs once."
    )


def _required_text(answer: dict[str, Any], key: str) -> str:
    value = answer.get(key)
    if not isinstance(value, str) or not value.strip():
        raise LLMError(f"Claude's answer has no {key} (a non-empty string is required).")
    return value.strip()


def _optional_text(answer: dict[str, Any], key: str) -> str:
    value = answer.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise LLMError(f"Claude's answer has a {key} that is not a string.")
    return value.strip()


def _text_list(value: object, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise LLMError(f"Claude's answer has a {key} that is not a list of strings.")
    return [item.strip() for item in value if item.strip()]


def _choice(answer: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = answer.get(key)
    if isinstance(value, str) and value.strip().lower() in allowed:
        return value.strip().lower()
    raise LLMError(f"Claude's answer has {key}={value!r}; it must be one of {', '.join(allowed)}.")


def _confidence(value: object) -> float:
    """A confidence clamped to 0..1 (a number, or a numeric string)."""
    if isinstance(value, bool) or value is None:
        raise LLMError(f"Claude's answer has confidence={value!r}; it must be a number from 0 to 1.")
    try:
        confidence = float(value)
    except (TypeError, ValueError):
        raise LLMError(f"Claude's answer has confidence={value!r}; it must be a number from 0 to 1.") from None
    if confidence != confidence:  # NaN
        raise LLMError("Claude's answer has confidence=NaN; it must be a number from 0 to 1.")
    return min(1.0, max(0.0, confidence))


def _optional_line(value: object) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        line = int(value)
    except (TypeError, ValueError):
        raise LLMError(f"Claude's answer has culprit_line={value!r}; it must be a line number or null.") from None
    return line if line > 0 else None


def _playbook_id(value: object, context: DiagnosisContext) -> int | None:
    if value is None or value == "":
        return None
    candidates = [playbook.get("id") for playbook in context.playbooks]
    try:
        playbook_id = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        playbook_id = None
    if playbook_id is None or playbook_id not in candidates:
        offered = ", ".join(str(candidate) for candidate in candidates) or "none were offered"
        raise LLMError(f"Claude's answer has playbook_id={value!r}, which is not a candidate playbook ({offered}).")
    return playbook_id

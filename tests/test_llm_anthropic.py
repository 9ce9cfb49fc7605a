"""The Anthropic provider, driving the real `anthropic` SDK against recorded Messages API answers.

Nothing reaches the network: the SDK's HTTP client gets an `httpx2.MockTransport` that serves
the JSON files of tests/fixtures/anthropic/ (bodies shaped like the API's, with the status
and headers each test names) and records every request the SDK sends.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import anthropic
import httpx2
import pytest

from remediation.llm.anthropic import AnthropicProvider, is_test_path, safe_repository_path
from remediation.llm.base import (
    AttemptRecord,
    DiagnosisContext,
    DiagnosisResult,
    LLMError,
    QuotaExhausted,
    SourceFile,
)
from remediation.llm.prompts import format_critic_feedback

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
MODEL = "claude-sonnet-4-6"

BILLING_PY = '''"""Invoice arithmetic."""


def invoice_total(lines):
    return sum(line["amount"] * line["quantity"] for line in lines)


def average_line_amount(lines):
    return sum(line["amount"] for line in lines) / len(lines)


def currency(amount):
    return f"{amount:.2f} EUR"
'''

TRACEBACK = """Traceback (most recent call last):
  File "/srv/billing/app/views.py", line 42, in invoice_view
    summary = average_line_amount(invoice.lines)
  File "/srv/billing/app/billing.py", line 9, in average_line_amount
    return sum(line["amount"] for line in lines) / len(lines)
ZeroDivisionError: division by zero
"""


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def answer(name: str, status: int = 200, headers: dict | None = None) -> tuple[int, dict, dict]:
    return status, fixture(name), headers or {}


def with_input(name: str, **changes) -> tuple[int, dict, dict]:
    """A recorded tool-use answer with some of the tool call's input changed."""
    body = copy.deepcopy(fixture(name))
    call = next(block for block in body["content"] if block["type"] == "tool_use")
    call["input"].update(changes)
    return 200, body, {}


class RecordedAPI:
    """An httpx2 handler that serves answers in order and keeps the requests it got."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        served = self.answers.pop(0)
        if isinstance(served, Exception):
            raise served
        status, body, headers = served
        return httpx2.Response(status, json=body, headers=headers)

    @property
    def bodies(self) -> list[dict]:
        return [json.loads(request.content) for request in self.requests]


@pytest.fixture
def make_provider(settings):
    """make_provider(*answers, api_key=...) → (provider, api, sleeps), with the SDK on a mock transport."""
    settings.ANTHROPIC_API_KEY = ""
    settings.ANTHROPIC_MODEL = MODEL
    settings.ANTHROPIC_MAX_TOKENS = 2048
    settings.ANTHROPIC_MAX_RETRIES = 3

    def make(*answers, api_key: str = "test-key"):
        api = RecordedAPI(*answers)
        client = anthropic.Anthropic(
            api_key=api_key, max_retries=0, http_client=httpx2.Client(transport=httpx2.MockTransport(api))
        )
        sleeps: list[float] = []
        return AnthropicProvider(client=client, sleep=sleeps.append), api, sleeps

    return make


def make_context(**overrides) -> DiagnosisContext:
    fields = {
        "incident_id": 17,
        "title": "ZeroDivisionError: division by zero",
        "service": "billing",
        "environment": "production",
        "severity": "error",
        "kind": "error",
        "exception_type": "ZeroDivisionError",
        "exception_value": "division by zero",
        "traceback": TRACEBACK,
        "frames": [
            {"filename": "/srv/billing/app/views.py", "function": "invoice_view", "lineno": 42, "in_app": True},
            {
                "filename": "/srv/billing/app/billing.py",
                "function": "average_line_amount",
                "lineno": 9,
                "in_app": True,
                "path": "app/billing.py",
            },
        ],
        "events": [
            {
                "received_at": "2026-11-23T10:00:00+00:00",
                "title": "ZeroDivisionError: division by zero",
                "message": "invoice INV-1042 summary failed",
                "labels": {"region": "eu-west-1"},
            }
        ],
        "event_count": 12,
        "source_files": [SourceFile(path="app/billing.py", content=BILLING_PY, lines_of_interest=[9])],
        "similar_incidents": [
            {"id": 3, "title": "ZeroDivisionError in invoice_total", "score": 0.81, "status": "resolved"}
        ],
        "knowledge": [
            {"id": 8, "title": "Empty invoices", "kind": "runbook", "score": 0.7, "excerpt": "Carts may be empty."}
        ],
        "playbooks": [
            {
                "id": 5,
                "name": "restart-billing",
                "description": "Restart the workers",
                "risk_level": "low",
                "why": "service",
            }
        ],
        "complaints": [{"customer_id": "c-88", "message": "My invoice page crashes", "reported_at": "2026-11-23"}],
        "test_command": "python -m pytest -q",
        "has_repository": True,
    }
    fields.update(overrides)
    return DiagnosisContext(**fields)


def make_diagnosis() -> DiagnosisResult:
    return DiagnosisResult(
        hypothesis="average_line_amount divides by len(lines) for an empty invoice",
        confidence=0.86,
        evidence=["app/billing.py:9 divides by len(lines)"],
        culprit_file="app/billing.py",
        culprit_line=9,
        culprit_function="average_line_amount",
        recommended_action="code_fix",
        risk_level="low",
    )


# --- diagnose ---


def test_diagnose_forces_the_diagnosis_tool_and_reads_its_input(make_provider):
    provider, api, _ = make_provider(answer("diagnose_tool_use"))

    result = provider.diagnose(make_context())

    [body] = api.bodies
    assert body["model"] == MODEL
    assert body["max_tokens"] == 2048
    assert "diagnostician" in body["system"]
    assert [tool["name"] for tool in body["tools"]] == ["record_diagnosis"]
    assert body["tools"][0]["input_schema"]["properties"]["recommended_action"]["enum"] == [
        "playbook",
        "code_fix",
        "escalate",
    ]
    assert body["tools"][0]["input_schema"]["properties"]["playbook_id"]["enum"] == [5, None]
    assert body["tool_choice"] == {"type": "tool", "name": "record_diagnosis"}
    # API version 2026-10-21 (what SDK 2.x sends) answers 400 to any sampling parameter.
    assert "temperature" not in body
    assert api.requests[0].headers["anthropic-version"] == anthropic._constants.ANTHROPIC_API_VERSION
    [message] = body["messages"]
    assert message["role"] == "user"
    assert "Incident #17" in message["content"]
    assert "id 5: restart-billing" in message["content"]
    assert "My invoice page crashes" in message["content"]
    assert '>>    9 |     return sum(line["amount"] for line in lines) / len(lines)' in message["content"]

    assert result.hypothesis.startswith("average_line_amount() in app/billing.py")
    assert result.confidence == pytest.approx(0.86)
    assert len(result.evidence) == 2
    assert (result.culprit_file, result.culprit_line, result.culprit_function) == (
        "app/billing.py",
        9,
        "average_line_amount",
    )
    assert (result.recommended_action, result.risk_level, result.playbook_id) == ("code_fix", "low", None)
    assert result.usage.as_dict() == {
        "step": "diagnose",
        "provider": "anthropic",
        "model": MODEL,
        "prompt_chars": len(body["system"]) + len(message["content"]),
        "input_tokens": 2095,
        "output_tokens": 503,
        "duration_ms": result.usage.duration_ms,
        "attempts": 1,
    }


def test_the_full_traceback_reaches_the_prompt(make_provider):
    frames = "".join(
        f'  File "/srv/billing/app/layer_{n}.py", line {n}, in handler_{n}\n    return next_layer_{n}(request)\n'
        for n in range(1, 600)
    )
    traceback = f"Traceback (most recent call last):\nFIRST-FRAME-MARKER\n{frames}RecursionError: LAST-LINE-MARKER\n"
    assert len(traceback) > 50_000
    provider, api, _ = make_provider(answer("diagnose_tool_use"))

    provider.diagnose(make_context(traceback=traceback))

    assert traceback.rstrip("\n") in api.bodies[0]["messages"][0]["content"]


def test_secret_shapes_never_reach_the_api(make_provider):
    stripe_key = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
    aws_key = "AKIA" + "IOSFODNN7EXAMPLE"
    context = make_context(
        traceback=TRACEBACK + f"During handling: boto3 used {aws_key}\n",
        events=[{"received_at": "2026-11-23T10:00:00+00:00", "title": "charge failed", "message": f"key {stripe_key}"}],
        source_files=[
            SourceFile(path="app/billing.py", content=BILLING_PY + f'\nSTRIPE_KEY = "{stripe_key}"\n'),
        ],
    )
    provider, api, _ = make_provider(answer("diagnose_tool_use"))

    provider.diagnose(context)

    raw = api.requests[0].content.decode()
    assert stripe_key not in raw
    assert aws_key not in raw
    assert "sk_live_[REDACTED]" in raw
    assert "AKIA[REDACTED]" in raw


def test_a_confidence_out_of_range_is_clamped_and_a_playbook_is_validated(make_provider):
    provider, _, _ = make_provider(
        with_input("diagnose_tool_use", confidence=1.7, recommended_action="playbook", playbook_id=5)
    )

    result = provider.diagnose(make_context())

    assert result.confidence == 1.0
    assert (result.recommended_action, result.playbook_id) == ("playbook", 5)


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"recommended_action": "reboot"}, "recommended_action='reboot'"),
        ({"risk_level": "extreme"}, "risk_level='extreme'"),
        ({"recommended_action": "playbook", "playbook_id": 99}, "playbook_id=99"),
        ({"recommended_action": "playbook", "playbook_id": None}, "no candidate playbook_id"),
        ({"confidence": "very"}, "confidence='very'"),
        ({"hypothesis": ""}, "no hypothesis"),
        ({"evidence": [1, 2]}, "evidence"),
    ],
)
def test_invalid_diagnosis_input_is_an_llm_error(make_provider, changes, complaint):
    provider, _, _ = make_provider(with_input("diagnose_tool_use", **changes))

    with pytest.raises(LLMError) as caught:
        provider.diagnose(make_context())

    assert complaint in caught.value.message
    assert caught.value.usage.input_tokens == 2095  # the tokens were spent all the same


def test_an_answer_without_the_tool_call_is_an_llm_error(make_provider):
    provider, _, _ = make_provider(answer("text_only"))

    with pytest.raises(LLMError) as caught:
        provider.diagnose(make_context())

    assert "without calling record_diagnosis" in caught.value.message
    assert "I need more information" in caught.value.message


def test_an_answer_cut_off_at_max_tokens_is_an_llm_error(make_provider):
    body = fixture("diagnose_tool_use")
    body["stop_reason"] = "max_tokens"
    provider, _, _ = make_provider((200, body, {}))

    with pytest.raises(LLMError, match="max_tokens"):
        provider.diagnose(make_context())


def test_a_model_that_cannot_be_forced_is_asked_again_with_auto_tool_choice(make_provider):
    provider, api, sleeps = make_provider(answer("error_400_forced_tool_choice", 400), answer("diagnose_tool_use"))

    result = provider.diagnose(make_context())

    assert [body["tool_choice"] for body in api.bodies] == [
        {"type": "tool", "name": "record_diagnosis"},
        {"type": "auto"},
    ]
    assert result.usage.attempts == 2
    assert sleeps == []


# --- propose_patch ---


def test_patch_edits_become_a_diff_that_git_applies(make_provider, tmp_path):
    provider, api, _ = make_provider(answer("patch_tool_use"))
    history = [
        AttemptRecord(
            number=1,
            patch="diff --git a/app/billing.py b/app/billing.py\n",
            status="failed",
            output="E   ImportError: cannot import name 'average_amount'\n1 failed in 0.12s",
            exit_code=1,
            critic_feedback="WHAT FAILED: import\nWHY: wrong name\nNEXT ATTEMPT MUST: import average_line_amount",
            reviewer_feedback="Keep the public signature unchanged.",
        )
    ]

    proposal = provider.propose_patch(make_context(), make_diagnosis(), history)

    body = api.bodies[0]
    assert body["tool_choice"] == {"type": "tool", "name": "propose_patch"}
    prompt = body["messages"][0]["content"]
    assert "Write fix attempt 2" in prompt
    assert "NEXT ATTEMPT MUST: import average_line_amount" in prompt
    assert "Keep the public signature unchanged." in prompt
    assert "1 failed in 0.12s" in prompt
    assert "Hypothesis: average_line_amount divides" in prompt

    assert proposal.files_changed == ["app/billing.py", "tests/test_average_line_amount.py"]
    assert proposal.adds_regression_test is True
    assert proposal.summary.startswith("Return 0 from average_line_amount()")
    assert proposal.usage.step == "patch"
    assert (proposal.usage.input_tokens, proposal.usage.output_tokens) == (3310, 402)

    repository = tmp_path / "billing"
    (repository / "app").mkdir(parents=True)
    (repository / "app" / "billing.py").write_text(BILLING_PY)
    git = ["git", "-C", str(repository), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    (tmp_path / "fix.diff").write_text(proposal.diff)
    check = subprocess.run([*git, "apply", "--check", str(tmp_path / "fix.diff")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    subprocess.run([*git, "apply", str(tmp_path / "fix.diff")], check=True)
    assert "    if not lines:\n        return 0\n" in (repository / "app" / "billing.py").read_text()
    assert "average_line_amount([]) == 0" in (repository / "tests" / "test_average_line_amount.py").read_text()


@pytest.mark.parametrize(
    "path",
    ["../outside.py", "app/../../etc/passwd", "/etc/passwd", ".git/hooks/pre-commit", ".github/workflows/ci.yml"],
)
def test_patch_paths_that_could_escape_are_refused(make_provider, path):
    provider, _, _ = make_provider(
        with_input("patch_tool_use", edits=[], new_files=[{"path": path, "content": "print('hi')\n"}])
    )

    with pytest.raises(LLMError) as caught:
        provider.propose_patch(make_context(), make_diagnosis(), [])

    assert "Refused patch path" in caught.value.message
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("edit", "complaint"),
    [
        ({"path": "app/billing.py", "search": "return total\n", "replace": "x"}, "does not occur"),
        ({"path": "app/billing.py", "search": "    return sum(", "replace": "    return  sum("}, "occurs 2 times"),
        ({"path": "app/other.py", "search": "a", "replace": "b"}, "not one of the files given"),
        ({"path": "app/billing.py", "search": "", "replace": "b"}, "non-empty search"),
    ],
)
def test_edits_that_cannot_be_applied_exactly_are_llm_errors(make_provider, edit, complaint):
    provider, _, _ = make_provider(with_input("patch_tool_use", edits=[edit], new_files=[]))

    with pytest.raises(LLMError) as caught:
        provider.propose_patch(make_context(), make_diagnosis(), [])

    assert complaint in caught.value.message


def test_give_up_means_no_patch(make_provider):
    provider, _, _ = make_provider(answer("patch_give_up"))

    assert provider.propose_patch(make_context(), make_diagnosis(), []) is None


def test_safe_repository_paths_and_test_paths():
    assert safe_repository_path("./app//billing.py") == "app/billing.py"
    assert is_test_path("tests/test_billing.py")
    assert is_test_path("app/tests/helpers.py")
    assert is_test_path("billing_test.py")
    assert not is_test_path("app/testing.py")


# --- critique ---


def test_critique_reads_the_three_parts(make_provider):
    provider, api, _ = make_provider(answer("critique_tool_use"))
    attempt = AttemptRecord(
        number=1,
        patch="diff --git a/app/billing.py b/app/billing.py\n",
        status="failed",
        output="x" * 20_000 + "\nE   ImportError: cannot import name 'average_amount'\n",
        exit_code=1,
    )

    feedback = provider.critique(make_context(), make_diagnosis(), attempt)

    body = api.bodies[0]
    assert body["tool_choice"] == {"type": "tool", "name": "critique_attempt"}
    prompt = body["messages"][0]["content"]
    assert "### Attempt 1: failed, exit code 1" in prompt
    assert "cannot import name 'average_amount'" in prompt
    assert "x" * 7000 not in prompt  # the output's tail, not all of it
    assert feedback.what_failed.startswith("tests/test_average_line_amount.py failed to import")
    assert feedback.why.startswith("The test imports average_amount")
    assert feedback.next_attempt_must.startswith("Keep the empty-list guard")
    assert feedback.usage.step == "critique"
    assert format_critic_feedback(feedback).splitlines()[0].startswith("WHAT FAILED: tests/")


# --- retries, quota and refusals ---


def test_a_429_waits_as_long_as_retry_after_says(make_provider):
    provider, api, sleeps = make_provider(
        answer("error_429_rate_limit", 429, {"retry-after": "7"}), answer("diagnose_tool_use")
    )

    result = provider.diagnose(make_context())

    assert sleeps == [7.0]
    assert result.usage.attempts == 2
    assert len(api.requests) == 2


def test_overloaded_then_server_error_then_success_backs_off_exponentially(make_provider):
    provider, _, sleeps = make_provider(
        answer("error_529_overloaded", 529), answer("error_500_api", 500), answer("diagnose_tool_use")
    )

    result = provider.diagnose(make_context())

    assert result.usage.attempts == 3
    assert len(sleeps) == 2
    assert 1.0 <= sleeps[0] <= 1.1
    assert 2.0 <= sleeps[1] <= 2.2


def test_connection_errors_and_timeouts_are_retried(make_provider):
    provider, _, sleeps = make_provider(
        httpx2.ConnectError("connection refused"), httpx2.ReadTimeout("read timed out"), answer("diagnose_tool_use")
    )

    result = provider.diagnose(make_context())

    assert result.usage.attempts == 3
    assert len(sleeps) == 2


def test_exhausted_retries_are_a_retryable_llm_error(make_provider, settings):
    settings.ANTHROPIC_MAX_RETRIES = 2
    provider, api, sleeps = make_provider(*[answer("error_529_overloaded", 529)] * 3)

    with pytest.raises(LLMError) as caught:
        provider.diagnose(make_context())

    assert caught.value.retryable is True
    assert not isinstance(caught.value, QuotaExhausted)
    assert "after 3 attempt(s)" in caught.value.message
    assert "HTTP 529 overloaded_error" in caught.value.message
    assert len(api.requests) == 3
    assert len(sleeps) == 2


def test_a_retry_after_longer_than_a_task_waits_ends_the_retries(make_provider):
    provider, api, sleeps = make_provider(answer("error_429_rate_limit", 429, {"retry-after": "3600"}))

    with pytest.raises(LLMError) as caught:
        provider.diagnose(make_context())

    assert caught.value.retryable is True
    assert "wait 3600s" in caught.value.message
    assert sleeps == []
    assert len(api.requests) == 1


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("error_402_billing", 402),
        ("error_400_credit_balance", 400),
        ("error_429_spend_limit", 429),
    ],
)
def test_billing_refusals_are_quota_exhausted_at_once(make_provider, name, status):
    provider, api, sleeps = make_provider(answer(name, status, {"retry-after": "1"}))

    with pytest.raises(QuotaExhausted) as caught:
        provider.diagnose(make_context())

    assert caught.value.retryable is False
    assert "credits" in caught.value.message
    assert "QUENCH_LLM_PROVIDER=offline" in caught.value.message
    assert len(api.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize(("name", "status"), [("error_401_authentication", 401), ("error_403_permission", 403)])
def test_a_refused_key_is_a_permanent_error_that_never_shows_the_key(make_provider, name, status):
    key = "sk-ant-api03-" + "Zx9" * 30
    provider, api, sleeps = make_provider(answer(name, status), api_key=key)

    with pytest.raises(LLMError) as caught:
        provider.diagnose(make_context())

    assert caught.value.retryable is False
    assert "refused the API key" in caught.value.message
    assert "ANTHROPIC_API_KEY" in caught.value.message
    assert key not in str(caught.value)
    assert caught.value.__suppress_context__  # the SDK error (which holds the request) is not chained
    assert len(api.requests) == 1
    assert sleeps == []


def test_an_invalid_request_is_not_retried(make_provider):
    provider, api, _ = make_provider(answer("error_400_invalid_request", 400))

    with pytest.raises(LLMError) as caught:
        provider.diagnose(make_context())

    assert caught.value.retryable is False
    assert "HTTP 400 invalid_request_error: messages: text content blocks must be non-empty" in caught.value.message
    assert len(api.requests) == 1


# --- construction from settings ---


def test_the_client_is_built_from_settings(settings):
    settings.ANTHROPIC_API_KEY = "sk-ant-api03-settings-key"
    settings.ANTHROPIC_BASE_URL = "https://llm-gateway.example.com"
    settings.ANTHROPIC_TIMEOUT_SECONDS = 45

    provider = AnthropicProvider()

    assert provider.name == "anthropic"
    assert provider._client.api_key == "sk-ant-api03-settings-key"
    assert str(provider._client.base_url).startswith("https://llm-gateway.example.com")
    assert provider._client.timeout == 45.0
    assert provider._client.max_retries == 0


def test_without_a_key_the_provider_says_what_to_set(settings):
    settings.ANTHROPIC_API_KEY = ""

    with pytest.raises(LLMError, match="ANTHROPIC_API_KEY"):
        AnthropicProvider()

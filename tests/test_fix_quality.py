"""Fixes that are right, not only green: the wrong-fix shapes fail, the demo's KeyError is served right, reviewers steer.

The crashes are real (the example shop through examples/trigger.py, the tiny services of
tests/fixtures/offline through their run.py), every patch runs in the real sandbox with the
replay test Quench writes, and the critic reads that real output.
"""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from incidents.sources.traceback import parse_python_traceback
from remediation.diffs import FileChange, unified_diff
from remediation.llm.base import AttemptRecord, DiagnosisContext, SourceFile
from remediation.llm.offline import OfflineAnalyzer, rewrites
from remediation.models import ApprovalRequest, Diagnosis, FixAttempt
from remediation.sandbox import run_patch
from tests import offline_services as svc
from tests.demo_service import drive, scenario_payload

TEST_ARGV = ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider"]
MYPY = ["python", "-m", "mypy", "--no-error-summary", "--hide-error-context"]
TRIGGER = Path(settings.BASE_DIR) / "examples" / "trigger.py"


def _shop_context(repo: Path, scenario: str) -> DiagnosisContext:
    """The context the diagnosis service builds for a real crash of the shop at `repo` (its request recorded)."""
    payload = scenario_payload(scenario, repo)
    exception_type, exception_value, frames = parse_python_traceback(payload["traceback"])
    root = str(repo.resolve()) + "/"
    rows, files = [], {}
    for frame in frames:
        row = dataclasses.asdict(frame)
        if frame.filename.startswith(root):
            row["path"] = frame.filename[len(root) :]
            files.setdefault(row["path"], SourceFile(row["path"], (repo / row["path"]).read_text()))
        rows.append(row)
    return DiagnosisContext(
        incident_id=7,
        title=payload["title"],
        service="shop",
        exception_type=exception_type,
        exception_value=exception_value,
        traceback=payload["traceback"],
        frames=rows,
        events=[{"path": payload["path"], "method": payload["method"], "title": payload["title"]}],
        event_count=1,
        source_files=list(files.values()),
        test_command=" ".join(TEST_ARGV),
        has_repository=True,
    )


def _section(diff: str, path_part: str) -> str:
    """The file sections of a unified diff whose header names `path_part`."""
    return "".join("diff --git " + s for s in diff.split("diff --git ")[1:] if path_part in s.splitlines()[0])


def _wrong_patch(context: DiagnosisContext, proposal, strategy: str, line: int) -> str:
    """A patch that applies `strategy` at the culprit (as a model might write it), with Quench's replay test."""
    path = context.frames[-1]["path"]
    source = context.source_file(path).content
    plan = rewrites.plan(source, line, context.exception_type, context.exception_value, path=path)
    fix = next(fix for fix in plan.fixes if fix.strategy.name == strategy)
    return unified_diff([FileChange(path, source, fix.new_source)]) + _section(proposal.diff, "test_quench_replay_")


def _replay_the_request(repo: Path, scenario: str) -> dict:
    """The scenario's very request through the shop at `repo`: its answer, and what the payment gateway captured."""
    script = (
        "import copy, importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('trigger', {str(TRIGGER)!r})\n"
        "trigger = importlib.util.module_from_spec(spec); spec.loader.exec_module(trigger)\n"
        f"chosen = trigger.scenario({scenario!r})\n"
        f"api = trigger.load_service({str(repo)!r})\n"
        "request = api.Request(chosen.method, chosen.path, query=dict(chosen.query), body=copy.deepcopy(chosen.body))\n"
        "response = api.dispatch(request)\n"
        "captured = sys.modules['shop.payments'].gateway.captured\n"
        "print(json.dumps({'status': response.status, 'body': response.body, 'captured': len(captured)}))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(completed.stdout)


# --- (a) the two wrong-fix shapes are failed attempts -------------------------------------------------------


def test_a_none_returning_guard_whose_caller_crashes_one_frame_up_fails_and_the_critic_says_so(shop_repo):
    context = _shop_context(shop_repo, "payment-missing-currency")
    analyzer = OfflineAnalyzer()
    diagnosis = analyzer.diagnose(context)
    # The rules never offer it: charge() -> Receipt, and pay_order() calls asdict() on what it returns.
    assert any(
        "charge() (-> Receipt) must not return None: its caller pay_order() passes it to asdict()" in line
        for line in diagnosis.evidence
    )
    proposal = analyzer.propose_patch(context, diagnosis, [])
    assert "key_guard_return (charge() (-> Receipt) must not return None" in proposal.summary

    # A model (or the old analyzer) returns None from charge(): the sandbox runs Quench's replay test on it.
    wrong = _wrong_patch(context, proposal, "key_guard_return", diagnosis.culprit_line)
    assert "+        return None" in wrong
    result = run_patch(
        repository=str(shop_repo), branch="main", diff=wrong, argv=TEST_ARGV, type_check_argv=MYPY, type_check_mode="on"
    )
    assert result.status == "failed"
    assert (
        "QUENCH REPLAY [moved]: TypeError: asdict() should be called on dataclass instances in pay_order() "
        "at shop/api.py:" in result.output
    )
    assert "1 frame(s) above the culprit charge()" in result.output
    assert 'Incompatible return value type (got "None", expected "Receipt")' in result.output  # mypy agrees

    attempt = AttemptRecord(number=1, patch=wrong, status="failed", output=result.output, exit_code=result.exit_code)
    feedback = analyzer.critique(context, diagnosis, attempt)
    assert "QUENCH REPLAY [moved]" in feedback.what_failed
    assert "type check:" in feedback.what_failed
    assert feedback.why.startswith(
        "a failed attempt: key_guard_return (check for the key first and return early when it is missing) stopped "
        "the KeyError in charge() but the crash moved one frame up"
    )
    assert "charge() (-> Receipt) must not return None" in feedback.why
    assert feedback.next_attempt_must.startswith(
        "not return None from charge(); refuse the input where it enters (pay_order) with a clear error"
    )

    # The next attempt does what the critic says: the boundary check, never the same patch again.
    attempt.critic_feedback = f"WHAT FAILED: {feedback.what_failed}\nWHY: {feedback.why}"
    second = analyzer.propose_patch(context, diagnosis, [attempt])
    assert second.summary.startswith("Strategy key_boundary_check ")
    assert "Chosen because returning None moved the crash one frame up" in second.summary


def test_a_get_with_zero_on_a_price_is_a_silently_wrong_value_and_the_critic_says_so(tmp_path):
    repo = svc.make_repo(tmp_path, "checkout")
    context = svc.context(repo, svc.crash(repo))
    analyzer = OfflineAnalyzer()
    diagnosis = analyzer.diagnose(context)
    assert "Business value: price_cents is money (price)" in diagnosis.evidence
    proposal = analyzer.propose_patch(context, diagnosis, [])
    assert proposal.summary.startswith("Strategy key_boundary_check ")
    assert "key_default (an invented default (0) would be a silently wrong value: price_cents is money" in (
        proposal.summary
    )

    # item.get("price_cents", 0): the cart is charged 0 cents, and every existing test still passes.
    wrong = _wrong_patch(context, proposal, "key_default", diagnosis.culprit_line)
    assert '+    return item.get("price_cents", 0) * item["quantity"]' in wrong
    result = run_patch(repository=str(repo), branch="main", diff=wrong, argv=TEST_ARGV)
    assert result.status == "failed"
    assert "QUENCH REPLAY [served-invalid-input]: checkout() returned {'card': 'x', 'amount_cents': 0}" in result.output
    assert "('price_cents' has no safe value): a silently wrong value" in result.output

    attempt = AttemptRecord(number=1, patch=wrong, status="failed", output=result.output, exit_code=result.exit_code)
    feedback = analyzer.critique(context, diagnosis, attempt)
    assert "QUENCH REPLAY [served-invalid-input]" in feedback.what_failed
    assert "served an input that has no safe value — a silently wrong value" in feedback.why
    assert "price_cents is money (price)" in feedback.why
    assert feedback.next_attempt_must.startswith("not invent a value (no .get() with 0 or an empty default here)")

    # The analyzer's own first proposal passes the same sandbox: it refuses the cart, naming the price.
    right = run_patch(repository=str(repo), branch="main", diff=proposal.diff, argv=TEST_ARGV)
    assert right.status == "passed", right.output
    svc.apply(repo, proposal.diff)
    refused = svc.run(repo)
    assert refused.stderr.strip().splitlines()[-1] == "ValueError: item is missing 'price_cents'"


def test_an_error_that_escapes_a_request_handler_is_a_failed_attempt(shop_repo):
    """A clear error in charge() is still a 500 for the app: nothing on the way turns it into a 4xx."""
    context = _shop_context(shop_repo, "payment-missing-currency")
    analyzer = OfflineAnalyzer()
    diagnosis = analyzer.diagnose(context)
    proposal = analyzer.propose_patch(context, diagnosis, [])
    assert "key_guard_raise (an error raised in charge() would escape dispatch()" in proposal.summary
    wrong = _wrong_patch(context, proposal, "key_guard_raise", diagnosis.culprit_line)
    result = run_patch(repository=str(shop_repo), branch="main", diff=wrong, argv=TEST_ARGV)
    assert result.status == "failed"
    assert "QUENCH REPLAY [escaped]: ValueError: charge(): order is missing 'currency' in charge()" in result.output
    feedback = analyzer.critique(
        context, diagnosis, AttemptRecord(number=1, patch=wrong, status="failed", output=result.output, exit_code=1)
    )
    assert "the refusal is not reported by the layer that answers" in feedback.why
    assert "refuse the input in pay_order() the way it reports errors (a 4xx)" in feedback.next_attempt_must


# --- (b) the demo's KeyError ends as a fix that serves the original request right ---------------------------


@pytest.mark.django_db
def test_the_demo_key_error_ends_as_a_fix_that_answers_the_original_request_with_a_4xx(shop, crash):
    incident = crash("payment-missing-currency")
    diagnosis = Diagnosis.objects.get(incident=incident)

    assert drive(diagnosis.pk) == "proposed"

    attempt = FixAttempt.objects.get(diagnosis=diagnosis, status="passed")
    assert attempt.number == 1
    assert attempt.files_changed == ["shop/api.py", "tests/test_quench_replay_charge.py"]
    assert attempt.summary.startswith("Strategy key_boundary_check ")
    assert '+            return Response(400, {"error": "order is missing \'currency\'"})' in attempt.patch
    assert "passed" in attempt.output
    approval = ApprovalRequest.objects.get(incident=incident)
    assert approval.risk_level != "low"  # a payment path

    # The exact crashing request, replayed through the shop's entry point on the patched code.
    before = _replay_the_request_crashes(shop_repo_of(shop), "payment-missing-currency")
    assert before == "KeyError: 'currency'"
    patched = _patched_copy(shop, attempt.patch)
    answer = _replay_the_request(patched, "payment-missing-currency")
    assert answer == {"status": 400, "body": {"error": "order is missing 'currency'"}, "captured": 0}


def shop_repo_of(shop) -> Path:
    return Path(shop.repository)


def _patched_copy(shop, patch: str) -> Path:
    repo = shop_repo_of(shop)
    copy = repo.parent / f"patched-{FixAttempt.objects.count()}"
    subprocess.run(["git", "clone", "-q", str(repo), str(copy)], check=True, capture_output=True)
    (copy.parent / "fix.patch").write_text(patch)
    subprocess.run(["git", "apply", str(copy.parent / "fix.patch")], cwd=copy, check=True, capture_output=True)
    return copy


def _replay_the_request_crashes(repo: Path, scenario: str) -> str:
    completed = subprocess.run(
        [sys.executable, str(TRIGGER), "--dry-run", "--scenario", scenario, "--service-root", str(repo)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(completed.stdout)[0]["title"]


# --- (c) a reviewer's words change the next patch ----------------------------------------------------------


def _rejected(proposal, number: int, feedback: str) -> AttemptRecord:
    return AttemptRecord(
        number=number, patch=proposal.diff, status="passed", output="3 passed", reviewer_feedback=feedback
    )


def test_dont_return_none_raise_a_clear_error_moves_the_next_patch_to_a_refusal(tmp_path):
    repo = svc.make_repo(tmp_path, "reports")
    context = svc.context(repo, svc.crash(repo))
    analyzer = OfflineAnalyzer()
    diagnosis = analyzer.diagnose(context)
    first = analyzer.propose_patch(context, diagnosis, [])
    assert first.summary.startswith("Strategy zero_guard_return ")  # delivery_rate() promises None for this

    history = [_rejected(first, 1, "Don't return None here, raise a clear error.")]
    second = analyzer.propose_patch(context, diagnosis, history)
    assert second.summary.startswith("Strategy zero_boundary_check ")
    assert "Chosen because the reviewer does not want None returned; the reviewer asked for a clear error." in (
        second.summary
    )
    assert "+        raise ValueError(f'sent must not be empty or zero, got {counts[\"sent\"]!r}')" in second.diff
    assert "return None" not in _section(second.diff, "shop/reports.py")

    feedback = analyzer.critique(context, diagnosis, history[0])
    assert feedback.what_failed == "A reviewer rejected attempt 1: Don't return None here, raise a clear error."
    assert feedback.next_attempt_must.startswith("follow the reviewer's feedback (Don't return None here, raise")


def test_use_the_documented_default_moves_the_next_patch_to_it_and_a_rejected_patch_never_comes_back(tmp_path):
    repo = svc.make_repo(tmp_path, "checkout")
    context = svc.context(repo, svc.crash(repo, "quantity"))
    analyzer = OfflineAnalyzer()
    diagnosis = analyzer.diagnose(context)
    assert "Documented default: the docstring says quantity defaults to 1" in diagnosis.evidence
    assert diagnosis.risk_level == "high"  # a default on a path that charges a card
    first = analyzer.propose_patch(context, diagnosis, [])
    assert first.summary.startswith("Strategy key_documented_default ")
    assert '+    return item["price_cents"] * item.get("quantity", 1)' in first.diff

    # The reviewer does not want the quantity guessed on a charge: the next patch refuses the line instead.
    refused = [_rejected(first, 1, "Don't default the quantity on a payment; reject the cart with a clear error.")]
    second = analyzer.propose_patch(context, diagnosis, refused)
    assert second.summary.startswith("Strategy key_boundary_check ")
    assert "+            raise ValueError(\"item is missing 'quantity'\")" in second.diff

    # Another reviewer, on that refusal: "use the documented default". It was rejected once already, so it
    # does not come back: a patch identical to a rejected one is never proposed again.
    both = [*refused, _rejected(second, 2, "Use the documented default: quantity defaults to 1.")]
    third = analyzer.propose_patch(context, diagnosis, both)
    assert third.summary.startswith("Strategy key_guard_raise ")
    assert third.diff not in (first.diff, second.diff)
    # Without the first rejection, "use the documented default" brings it back first.
    only = [_rejected(second, 1, "Use the documented default: quantity defaults to 1.")]
    assert analyzer.propose_patch(context, diagnosis, only).summary.startswith("Strategy key_documented_default ")


# --- the LLM path is held to the same rules ------------------------------------------------------------------


def test_the_model_is_given_the_rules_and_the_replay_test_the_sandbox_will_run(shop_repo):
    from remediation.llm import prompts

    context = _shop_context(shop_repo, "payment-missing-currency")
    diagnosis = OfflineAnalyzer().diagnose(context)
    prompt = prompts.patch_prompt(context, diagnosis, [])
    assert "## The replay test\nAdd this file unchanged as the new file tests/test_quench_replay_charge.py" in prompt
    assert "entry_api.dispatch(request=entry_api.Request(method='POST', path='/api/orders/1042/pay', body={}))" in (
        prompt
    )
    for rules in (prompts.PATCH_SYSTEM, prompts.CRITIQUE_SYSTEM):
        assert "Replay from the entry point." in rules
        assert "No silent wrong values." in rules
        assert "refuse the input where it enters" in rules
    assert "`moved` (the crash moved to a caller" in prompts.CRITIQUE_SYSTEM

"""The offline analyzer on real crashes: diagnose, patch, test the patch, critique, and try again.

Each scenario copies a tiny buggy service from tests/fixtures/offline into a temporary git
repository, runs it with the current interpreter so that it crashes, and builds the
`DiagnosisContext` from that real traceback the way the diagnosis service does.
"""

import dataclasses

import pytest

from remediation.diffs import changed_paths
from remediation.explanations import explain
from remediation.llm.base import AttemptRecord, DiagnosisContext, SourceFile
from remediation.llm.offline import OfflineAnalyzer
from tests import offline_services as svc

SCENARIOS = {
    # run.py prints the result: None is not a value these functions may hand it, and nothing documents a default.
    "payments": {
        "culprit": ("shop/payments.py", 11, "charge"),
        "explanation": "KeyError",
        "hypothesis": "payments.charge reads order[\"currency\"] but order has no 'currency' key "
        "(KeyError at shop/payments.py:11).",
        "changed": "+        raise PaymentError(\"charge(): order is missing 'currency'\")",  # the module's own error
        "strategy": "key_guard_raise",
        "risk": "medium",  # a currency is money: a default would be high, a clear error is medium
        "outcome": "PaymentError: charge(): order is missing 'currency'",
        "test": "tests/test_quench_replay_charge.py",
    },
    "users": {
        "culprit": ("shop/users.py", 7, "first_email"),
        "explanation": "IndexError",
        "hypothesis": "users.first_email reads users[0] but users is empty (IndexError at shop/users.py:7).",
        "changed": '+        raise ValueError("first_email(): users is empty")',
        "strategy": "index_guard_raise",
        "risk": "medium",
        "outcome": "ValueError: first_email(): users is empty",
        "test": "tests/test_quench_replay_first_email.py",
    },
    "stats": {
        "culprit": ("shop/stats.py", 7, "average"),
        "explanation": "ZeroDivisionError",
        "hypothesis": "stats.average divides by len(values) in total / len(values), and values was empty "
        "(ZeroDivisionError at shop/stats.py:7).",
        "changed": "+    return round((total / len(values) if values else 0), 2)",  # the mean of nothing is 0
        "strategy": "zero_default",
        "risk": "low",
        "outcome": "",
        "test": "tests/test_quench_replay_average.py",
    },
    "profile": {
        "culprit": ("shop/profile.py", 11, "display_name"),
        "explanation": "AttributeError on None",
        "hypothesis": "profile.display_name uses user.name but user is None (AttributeError at shop/profile.py:11).",
        "changed": '+        raise ValueError("display_name(): user is None")',
        "strategy": "none_guard_raise",
        "risk": "medium",
        "outcome": "ValueError: display_name(): user is None",
        "test": "tests/test_quench_replay_display_name.py",
    },
    "settings": {
        "culprit": ("shop/config.py", 6, "database_port"),
        "explanation": "TypeError on None",
        "hypothesis": 'config.database_port reads settings["port"] but settings is None '
        "(TypeError at shop/config.py:6).",
        "changed": '+        raise ValueError("database_port(): settings is None")',  # no port 0: that is invented
        "strategy": "none_guard_raise",
        "risk": "medium",
        "outcome": "ValueError: database_port(): settings is None",
        "test": "tests/test_quench_replay_database_port.py",
    },
}


@pytest.mark.parametrize("fixture", sorted(SCENARIOS))
def test_real_crash_is_diagnosed_patched_and_the_patch_fixes_it(tmp_path, fixture):
    expected = SCENARIOS[fixture]
    repo = svc.make_repo(tmp_path, fixture)
    context = svc.context(repo, svc.crash(repo))
    analyzer = OfflineAnalyzer()

    diagnosis = analyzer.diagnose(context)
    assert (diagnosis.culprit_file, diagnosis.culprit_line, diagnosis.culprit_function) == expected["culprit"]
    assert diagnosis.hypothesis == expected["hypothesis"]
    assert diagnosis.explanation.startswith(expected["explanation"] + ": ")
    assert diagnosis.category == "code_bug"
    assert diagnosis.recommended_action == "code_fix"
    assert diagnosis.risk_level == expected["risk"]
    assert diagnosis.playbook_id is None
    assert 0.5 < diagnosis.confidence <= 0.95
    path, line, function = expected["culprit"]
    assert diagnosis.evidence[0].startswith(f"{path}:{line} in {function}: ")
    assert diagnosis.evidence[1] == f"{context.exception_type}: {context.exception_value}"
    assert "Happened 3 times" in diagnosis.evidence
    assert any(item.startswith("The replay must ") for item in diagnosis.evidence)
    assert diagnosis.usage.provider == "offline" and diagnosis.usage.step == "diagnose"

    proposal = analyzer.propose_patch(context, diagnosis, [])
    assert proposal is not None
    assert proposal.adds_regression_test
    assert proposal.files_changed == [path, expected["test"]]
    assert changed_paths(proposal.diff) == [path, expected["test"]]
    assert expected["changed"] in proposal.diff.splitlines()
    assert proposal.summary.startswith(f"Strategy {expected['strategy']} ")
    assert f"Risk {expected['risk']}" in proposal.summary
    assert proposal.usage.step == "patch"

    svc.apply(repo, proposal.diff)
    after_run = svc.run(repo)  # the crash is gone: a result, or the clear error the rules call for
    assert context.exception_type not in after_run.stderr
    if expected["outcome"]:
        assert after_run.stderr.strip().splitlines()[-1].endswith(expected["outcome"])
    else:
        assert after_run.returncode == 0
    after = svc.run_tests(repo, expected["test"])
    assert after.returncode == 0, after.stdout

    # Without the fix, the new test fails with the incident's exception.
    original = svc.git(repo, "show", f"HEAD:{path}").stdout
    (repo / path).write_text(original)
    before = svc.run_tests(repo, expected["test"])
    assert before.returncode == 1, before.stdout
    assert f"QUENCH REPLAY [still-crashes]: {function}() still raises {context.exception_type}" in before.stdout

    # The critic reads that real failing run.
    attempt = AttemptRecord(number=1, patch=proposal.diff, status="failed", output=before.stdout, exit_code=1)
    feedback = analyzer.critique(context, diagnosis, attempt)
    assert f"{expected['test']}::" in feedback.what_failed
    assert f"still raises {context.exception_type}" in feedback.why
    assert "use a different strategy than" in feedback.next_attempt_must


def test_call_without_a_timeout_gets_one_where_it_is_made(tmp_path):
    repo = svc.make_repo(tmp_path, "inventory")
    context = svc.context(repo, svc.crash(repo))
    analyzer = OfflineAnalyzer()

    diagnosis = analyzer.diagnose(context)
    # The deepest repository frame is the client that gave up; the fix is at the call site.
    assert (diagnosis.culprit_file, diagnosis.culprit_line, diagnosis.culprit_function) == (
        "shop/client.py",
        7,
        "fetch",
    )
    assert diagnosis.hypothesis.startswith(
        "sync.sync_inventory calls fetch(...) without a timeout, so it waits as long as the other side does "
        "(shop/sync.py:10); the TimeoutError surfaced in client.fetch at shop/client.py:7."
    )
    assert diagnosis.category == "timeout"
    assert diagnosis.recommended_action == "code_fix"
    assert diagnosis.explanation.startswith("TimeoutError: ")

    proposal = analyzer.propose_patch(context, diagnosis, [])
    assert proposal.files_changed == ["shop/sync.py"]
    assert "+    response = fetch(INVENTORY_URL, timeout=10)" in proposal.diff.splitlines()
    assert not proposal.adds_regression_test
    assert "No replay test: reproducing a timeout needs the slow dependency itself." in proposal.summary
    svc.apply(repo, proposal.diff)
    assert svc.run(repo).stdout.strip() == "2"

    # With a playbook candidate, a timeout goes to the playbook first.
    with_playbook = dataclasses.replace(
        context, playbooks=[{"id": 7, "name": "restart-inventory", "risk_level": "low", "why": "category timeout"}]
    )
    diagnosis = analyzer.diagnose(with_playbook)
    assert (diagnosis.recommended_action, diagnosis.playbook_id, diagnosis.risk_level) == ("playbook", 7, "low")
    assert "Playbook candidate: restart-inventory: category timeout" in diagnosis.evidence


def test_a_failed_attempt_is_critiqued_and_the_next_attempt_follows_the_critic(tmp_path):
    """The service's own test says the mean of no values is "no mean" (None): the in-place 0 breaks it."""
    none_for_empty = (
        "from shop.stats import average\n\n\ndef test_the_mean_of_nothing_is_none():\n    assert average([]) is None\n"
    )
    repo = svc.make_repo(tmp_path, "stats", {"tests/test_stats.py": none_for_empty})
    context = svc.context(repo, svc.crash(repo))
    analyzer = OfflineAnalyzer()
    diagnosis = analyzer.diagnose(context)

    first = analyzer.propose_patch(context, diagnosis, [])
    assert first.summary.startswith("Strategy zero_default ")
    svc.apply(repo, first.diff)
    run = svc.run_tests(repo)
    assert run.returncode == 1
    attempt = AttemptRecord(number=1, patch=first.diff, status="failed", output=run.stdout, exit_code=1)

    feedback = analyzer.critique(context, diagnosis, attempt)
    assert feedback.what_failed.startswith("1 test failed: tests/test_stats.py::test_the_mean_of_nothing_is_none")
    assert "existing tests (tests/test_stats.py::test_the_mean_of_nothing_is_none) fail after zero_default" in (
        feedback.why
    )
    assert "next is zero_guard_raise" in feedback.next_attempt_must

    attempt.critic_feedback = (
        f"WHAT FAILED: {feedback.what_failed}\nWHY: {feedback.why}\nNEXT ATTEMPT MUST: {feedback.next_attempt_must}"
    )
    second = analyzer.propose_patch(context, diagnosis, [attempt])
    assert second.summary.startswith("Strategy zero_guard_raise ")
    assert second.diff != first.diff


def test_strategy_sequence_follows_history_until_exhausted(tmp_path):
    repo = svc.make_repo(tmp_path, "stats")
    context = svc.context(repo, svc.crash(repo))
    analyzer = OfflineAnalyzer()
    diagnosis = analyzer.diagnose(context)
    history: list[AttemptRecord] = []
    names = []
    for number in range(1, 5):
        proposal = analyzer.propose_patch(context, diagnosis, history)
        if proposal is None:
            break
        names.append(proposal.summary.split(" ", 2)[1])
        history.append(AttemptRecord(number=number, patch=proposal.diff, status="failed", output="1 failed"))
    # zero_guard_return is refused: run.py prints the mean, so None is not a value average() may return.
    assert names == ["zero_default", "zero_guard_raise"]
    assert analyzer.propose_patch(context, diagnosis, history) is None

    # A sandbox error proves nothing about a strategy: it is offered again.
    errored = [dataclasses.replace(history[0], status="error")]
    assert analyzer.propose_patch(context, diagnosis, errored).summary.startswith("Strategy zero_default ")

    # A reviewer who wants an error gets the raising guard next.
    rejected = [dataclasses.replace(history[0], status="passed", reviewer_feedback="Don't hide this; raise an error.")]
    assert analyzer.propose_patch(context, diagnosis, rejected).summary.startswith("Strategy zero_guard_raise ")

    feedback = analyzer.critique(context, diagnosis, rejected[0])
    assert feedback.what_failed == "A reviewer rejected attempt 1: Don't hide this; raise an error."
    assert "next is zero_guard_raise" in feedback.next_attempt_must


def test_same_input_same_answer(tmp_path):
    repo = svc.make_repo(tmp_path, "stats")
    context = svc.context(repo, svc.crash(repo))

    def without_usage(result):
        return {key: value for key, value in dataclasses.asdict(result).items() if key != "usage"}

    first, second = OfflineAnalyzer(), OfflineAnalyzer()
    assert without_usage(first.diagnose(context)) == without_usage(second.diagnose(context))
    diagnosis = first.diagnose(context)
    assert without_usage(first.propose_patch(context, diagnosis, [])) == without_usage(
        second.propose_patch(context, diagnosis, [])
    )
    attempt = AttemptRecord(number=1, patch="", status="timed_out", output="sandbox: timed out after 120 s")
    assert without_usage(first.critique(context, diagnosis, attempt)) == without_usage(
        second.critique(context, diagnosis, attempt)
    )


def test_frames_are_parsed_from_the_traceback_when_none_are_given(tmp_path):
    repo = svc.make_repo(tmp_path, "payments")
    context = dataclasses.replace(svc.context(repo, svc.crash(repo)), frames=[], exception_type="", exception_value="")
    diagnosis = OfflineAnalyzer().diagnose(context)
    assert (diagnosis.culprit_file, diagnosis.culprit_line) == ("shop/payments.py", 11)
    assert diagnosis.recommended_action == "code_fix"


def test_alert_without_traceback_escalates_or_runs_a_playbook():
    context = DiagnosisContext(
        incident_id=9,
        title="HighLatency checkout p99 > 2s",
        service="checkout",
        environment="production",
        severity="critical",
        alertname="HighLatency",
        kind="alert",
        labels={"alertname": "HighLatency", "route": "/pay"},
        event_count=1,
        similar_incidents=[
            {
                "id": 3,
                "title": "HighLatency on checkout",
                "score": 0.91,
                "matched": "both",
                "status": "resolved",
                "resolution": "scaled",
            }
        ],
        complaints=[{"customer_id": "c1", "message": "payment page hangs", "reported_at": "2024-01-01"}],
    )
    analyzer = OfflineAnalyzer()
    diagnosis = analyzer.diagnose(context)
    assert diagnosis.category == "alert"
    assert diagnosis.recommended_action == "escalate"
    assert diagnosis.risk_level == "high"
    assert diagnosis.hypothesis.startswith(
        "HighLatency fired for checkout (production) at severity critical; there is no exception or stack trace"
    )
    assert 'resembles incident #3 "HighLatency on checkout", which was resolved by: scaled' in diagnosis.hypothesis
    assert 'Similar incident #3 "HighLatency on checkout" (score 0.91, both, resolved); resolved by: scaled' in (
        diagnosis.evidence
    )
    assert '1 customer complaint, e.g. "payment page hangs"' in diagnosis.evidence
    assert diagnosis.confidence == 0.30  # 0.20 alert + 0.10 the similar incident agrees
    assert analyzer.propose_patch(context, diagnosis, []) is None

    with_playbook = dataclasses.replace(context, playbooks=[{"id": 5, "name": "scale-out", "risk_level": "medium"}])
    diagnosis = analyzer.diagnose(with_playbook)
    assert (diagnosis.recommended_action, diagnosis.playbook_id, diagnosis.risk_level) == ("playbook", 5, "medium")
    assert diagnosis.confidence == 0.35

    feedback = analyzer.critique(context, diagnosis, AttemptRecord(number=1, patch="", status="no_patch"))
    assert feedback.why == "there is no exception or stack trace, only an alert, so there is no line to change"


def test_exception_without_a_strategy_escalates_with_an_explanation():
    traceback_text = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/shop/db.py", line 12, in load\n'
        "    cursor.execute(QUERY)\n"
        '  File "/usr/lib/python3.12/site-packages/psycopg/cursor.py", line 97, in execute\n'
        "    raise ex.with_traceback(None)\n"
        "psycopg.errors.QueryCanceled: canceling statement due to statement timeout\n"
    )
    context = DiagnosisContext(
        incident_id=1,
        title="QueryCanceled",
        traceback=traceback_text,
        has_repository=True,
        source_files=[SourceFile("shop/db.py", "QUERY = 'select 1'\n" * 11 + "cursor.execute(QUERY)\n")],
        knowledge=[{"id": 2, "title": "Statement timeouts on reports", "kind": "runbook", "score": 0.7}],
    )
    diagnosis = OfflineAnalyzer().diagnose(context)
    assert diagnosis.category == "database"
    assert diagnosis.explanation.startswith("Database statement timeout: PostgreSQL cancelled a statement")
    assert diagnosis.recommended_action == "escalate"
    assert diagnosis.risk_level == "high"
    assert "Raised inside psycopg.cursor (not the service's code)" in diagnosis.evidence
    assert 'Knowledge: "Statement timeouts on reports" (runbook, score 0.70)' in diagnosis.evidence


def test_critique_of_other_statuses(tmp_path):
    repo = svc.make_repo(tmp_path, "stats")
    context = svc.context(repo, svc.crash(repo))
    analyzer = OfflineAnalyzer()
    diagnosis = analyzer.diagnose(context)
    patch = analyzer.propose_patch(context, diagnosis, []).diff

    invalid = AttemptRecord(
        number=1,
        patch=patch,
        status="invalid_patch",
        output="error: patch failed: shop/stats.py:4\nerror: shop/stats.py: patch does not apply",
    )
    feedback = analyzer.critique(context, diagnosis, invalid)
    assert feedback.what_failed == "The patch did not apply: error: patch failed: shop/stats.py:4"
    assert "git apply rejected it" in feedback.why
    assert feedback.next_attempt_must == (
        "regenerate the patch from the current content of shop/stats.py and change only shop/stats.py:7"
    )

    timed_out = AttemptRecord(number=1, patch=patch, status="timed_out", output="sandbox: timed out after 120 s")
    feedback = analyzer.critique(context, diagnosis, timed_out)
    assert feedback.what_failed.startswith("The test run timed out after 120 s")
    assert "next is zero_guard_raise" in feedback.next_attempt_must

    existing_broken = AttemptRecord(
        number=1,
        patch=patch,
        status="failed",
        exit_code=1,
        output=(
            "F.                                                                       [100%]\n"
            "=================================== FAILURES ===================================\n"
            "_______________________________ test_mean_of_none _______________________________\n\n"
            "    def test_mean_of_none():\n"
            ">       assert average([]) is None\n"
            "E       assert 0 is None\n"
            "E        +  where 0 = average([])\n\n"
            "tests/test_stats.py:5: AssertionError\n"
            "=========================== short test summary info ============================\n"
            "FAILED tests/test_stats.py::test_mean_of_none - assert 0 is None\n"
            "1 failed, 1 passed in 0.03s\n"
        ),
    )
    feedback = analyzer.critique(context, diagnosis, existing_broken)
    assert feedback.what_failed == (
        "1 test failed: tests/test_stats.py::test_mean_of_none — assert 0 is None (1 failed, 1 passed)"
    )
    assert feedback.why == (
        "existing tests (tests/test_stats.py::test_mean_of_none) fail after zero_default (guard the denominator "
        "in place: the result is 0 when it is 0): the change altered behaviour they rely on"
    )
    assert feedback.next_attempt_must == (
        "preserve what those tests assert; next is zero_guard_raise: raise a clear error when the denominator is zero"
    )


@pytest.mark.parametrize(
    ("exception_type", "exception_value", "name", "category"),
    [
        ("KeyError", "'currency'", "KeyError", "code_bug"),
        ("IndexError", "list index out of range", "IndexError", "code_bug"),
        ("ZeroDivisionError", "division by zero", "ZeroDivisionError", "code_bug"),
        ("AttributeError", "'NoneType' object has no attribute 'id'", "AttributeError on None", "code_bug"),
        ("AttributeError", "'User' object has no attribute 'idd'", "AttributeError", "code_bug"),
        ("TypeError", "'NoneType' object is not subscriptable", "TypeError on None", "code_bug"),
        ("TypeError", "f() takes 1 positional argument but 2 were given", "TypeError", "code_bug"),
        ("ValueError", "invalid literal for int() with base 10: 'x'", "ValueError", "code_bug"),
        ("NameError", "name 'total' is not defined", "NameError", "code_bug"),
        ("UnboundLocalError", "cannot access local variable 'x'", "NameError", "code_bug"),
        ("ModuleNotFoundError", "No module named 'redis'", "ModuleNotFoundError", "dependency"),
        ("ImportError", "cannot import name 'url' from 'django.conf.urls'", "ModuleNotFoundError", "dependency"),
        ("RecursionError", "maximum recursion depth exceeded", "RecursionError", "code_bug"),
        ("MemoryError", "", "MemoryError", "resource"),
        ("TimeoutError", "timed out", "TimeoutError", "timeout"),
        ("socket.timeout", "timed out", "TimeoutError", "timeout"),
        ("requests.exceptions.ReadTimeout", "Read timed out. (read timeout=5)", "TimeoutError", "timeout"),
        ("requests.exceptions.ConnectTimeout", "Max retries exceeded", "TimeoutError", "timeout"),
        ("httpx.ReadTimeout", "", "TimeoutError", "timeout"),
        ("httpx.ConnectError", "[Errno 111] Connection refused", "ConnectionError", "dependency"),
        ("requests.exceptions.ConnectionError", "Max retries exceeded: refused", "ConnectionError", "dependency"),
        ("ConnectionResetError", "[Errno 104] Connection reset by peer", "ConnectionError", "dependency"),
        ("django.db.utils.OperationalError", "could not connect to server", "Database unreachable", "database"),
        ("psycopg.OperationalError", "connection timeout expired", "Database connect timeout", "database"),
        (
            "django.db.utils.OperationalError",
            "canceling statement due to statement timeout",
            "Database statement timeout",
            "database",
        ),
        ("psycopg.errors.QueryCanceled", "", "Database statement timeout", "database"),
        (
            "psycopg2.OperationalError",
            "FATAL: sorry, too many clients already",
            "Database connection limit reached",
            "database",
        ),
        ("json.decoder.JSONDecodeError", "Expecting value: line 1 column 1 (char 0)", "JSONDecodeError", "dependency"),
        ("UnicodeDecodeError", "'utf-8' codec can't decode byte 0xff", "UnicodeDecodeError", "code_bug"),
        ("AssertionError", "", "AssertionError", "code_bug"),
        ("PermissionError", "[Errno 13] Permission denied: '/var/log/app.log'", "PermissionError", "configuration"),
        ("FileNotFoundError", "[Errno 2] No such file or directory: 'x.pem'", "FileNotFoundError", "configuration"),
        ("shop.models.Order.DoesNotExist", "Order matching query does not exist.", "DoesNotExist", "code_bug"),
        (
            "django.db.utils.IntegrityError",
            "duplicate key value violates unique constraint",
            "IntegrityError",
            "database",
        ),
        ("OSError", "[Errno 28] No space left on device", "No space left on device", "resource"),
    ],
)
def test_exception_classes_are_explained(exception_type, exception_value, name, category):
    explanation = explain(exception_type, exception_value)
    assert (explanation.name, explanation.category, explanation.known) == (name, category, True)
    assert explanation.meaning and explanation.usual_fix


def test_an_unknown_exception_still_gets_an_explanation():
    explanation = explain("billing.errors.PaymentDeclined", "card declined")
    assert explanation.known is False
    assert explanation.name == "PaymentDeclined"
    assert "PaymentDeclined" in explanation.meaning


def test_culprit_line_is_found_when_the_default_branch_moved(tmp_path):
    repo = svc.make_repo(tmp_path, "payments")
    traceback_text = svc.crash(repo)  # the deployed code: the culprit is line 11
    moved = (
        '"""Charging orders (now with a longer docstring)."""\n\nimport math  # noqa: F401\n'
        + ((repo / "shop/payments.py").read_text().split("\n", 1)[1])
    )
    (repo / "shop/payments.py").write_text(moved)
    svc.git(repo, "-c", "user.name=Quench Test", "-c", "user.email=test@example.com", "commit", "-qam", "moved")
    context = svc.context(repo, traceback_text)

    diagnosis = OfflineAnalyzer().diagnose(context)
    assert (diagnosis.culprit_file, diagnosis.culprit_line) == ("shop/payments.py", 13)
    assert "The traceback says line 11; that code is at line 13 on the default branch" in diagnosis.evidence
    proposal = OfflineAnalyzer().propose_patch(context, diagnosis, [])
    svc.apply(repo, proposal.diff)
    assert (
        '    if "currency" not in order:\n'
        "        raise PaymentError(\"charge(): order is missing 'currency'\")\n"
        '    currency = order["currency"]\n'
    ) in (repo / "shop/payments.py").read_text()


DEGENERATE = [
    DiagnosisContext(incident_id=1, title=""),
    DiagnosisContext(incident_id=1, title="x", traceback="not a traceback at all"),
    DiagnosisContext(incident_id=1, title="x", exception_type="KeyError", exception_value="'a'"),
    DiagnosisContext(
        incident_id=1,
        title="x",
        exception_type="KeyError",
        exception_value="'a'",
        frames=[{"function": "f", "lineno": None, "path": "a.py"}],
        source_files=[SourceFile("a.py", "def f(:\n")],
        has_repository=True,
    ),
    DiagnosisContext(
        incident_id=1,
        title="x",
        exception_type="IndexError",
        frames=[{"function": "f", "lineno": 99, "path": "a.py", "context_line": "return d[0]"}],
        source_files=[SourceFile("a.py", "def f(d):\n    return d[0]\n")],
        has_repository=False,
        playbooks=[{"id": None}],
        similar_incidents=[{"id": 1}],
        knowledge=[{}],
        complaints=[{}],
    ),
    DiagnosisContext(
        incident_id=1, title="x", exception_type="ValueError", frames=[{"module": "lib", "in_app": False}]
    ),
]


@pytest.mark.parametrize("context", DEGENERATE)
def test_incomplete_contexts_get_answers_not_exceptions(context):
    analyzer = OfflineAnalyzer()
    diagnosis = analyzer.diagnose(context)
    assert diagnosis.hypothesis and diagnosis.explanation
    assert diagnosis.recommended_action == "escalate"
    assert diagnosis.risk_level in ("low", "medium", "high")
    assert 0 <= diagnosis.confidence <= 1
    assert analyzer.propose_patch(context, diagnosis, []) is None
    for status in ("failed", "timed_out", "invalid_patch", "error", "no_patch", "passed"):
        feedback = analyzer.critique(context, diagnosis, AttemptRecord(number=1, patch="", status=status))
        assert feedback.what_failed and feedback.why and feedback.next_attempt_must

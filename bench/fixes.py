#!/usr/bin/env python
"""Fix quality: does the tested fix serve the failing input right, or only turn the tests green?

For each crash case of bench/fixcases (three small services, entry points that reach the
culprit through two or three frames; see bench/fixcases/README.md):

1. the entry point really crashes on the case's input, in a git checkout of its service,
   and the traceback is sent through Quench's generic event source (with the request's
   method and path for HTTP cases, as an error reporter records them);
2. the pipeline runs as the queue would run it: the wake-up, the diagnosis (offline
   analyzer), fix attempts tested by `remediation.sandbox.run_patch` (the service's tests,
   the replay test Quench adds, the type check), the critic between attempts;
3. independently of all that, the case's original call is replayed on the service with the
   passing patch applied, and the outcome is classified against what "right" means for
   the case (a specific result, or a refusal naming the bad value):

   fixed right        the replay ends as the case expects;
   fixed but moved    it still fails, differently: another exception, a 5xx, an error where
                      a result was expected;
   silent wrong value it returns, but not what it should: None, an invented value, an
                      input served that must be refused;
   not fixed          no attempt passed the sandbox, or the original exception is still raised.

It also checks that the replay test Quench wrote fails on the unpatched service (a test
that cannot fail proves nothing). Prints a table, the four counts and the median time from
the event to a tested fix (the pipeline's part only). Target: every case fixed right,
median ≤ 10 s.

With --controls it also scores the wrong-fix shapes of issue 10 on every case, written at the
culprit without the rules (an early return of None, an in-place default such as
`.get(key, 0)`): how many pass the service's own tests, and how the replay classifies them.
That shows the cases tell right from green.

    .venv/bin/python bench/fixes.py [--case NAME ...] [--controls] [--verbose]

It uses its own database (quench_bench_fixes), recreated each run, and checkouts of the
services in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from common import environment, manage, recreate_database

ROOT = Path(__file__).resolve().parent.parent
CASES_DIR = Path(__file__).resolve().parent / "fixcases"
DB_NAME = "quench_bench_fixes"
TEST_COMMAND = "python -m pytest -q -p no:cacheprovider"
GIT = ["git", "-c", "user.name=Quench Bench", "-c", "user.email=bench@example.com", "-c", "core.hooksPath=/dev/null"]
FIXED_RIGHT, MOVED, SILENT, NOT_FIXED = "fixed right", "fixed but moved", "silent wrong value", "not fixed"

sys.path.insert(0, str(CASES_DIR))
from cases import CASES, Case, Refuse  # noqa: E402


def _env() -> dict:
    return environment(DB_NAME, offline=True)


def _plain_env() -> dict:
    """A service's own environment: nothing of Quench's settings."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
    }


def make_repository(service: str, workdir: Path) -> Path:
    """A git repository of the service's folder, on `main`."""
    repo = workdir / service
    shutil.copytree(CASES_DIR / service, repo, ignore=shutil.ignore_patterns("__pycache__", ".*_cache"))
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", f"The {service} service"]):
        subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True)
    return repo


def run_call(checkout: Path, case: Case, *, crash: bool = False) -> dict | str:
    """The case's call in `checkout`: its outcome (JSON), or with `crash` the traceback it prints."""
    completed = subprocess.run(
        [sys.executable, str(CASES_DIR / "replay.py"), case.name, *(["--crash"] if crash else [])],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=60,
        env=_plain_env(),
    )
    if crash:
        if "Traceback (most recent call last)" not in completed.stderr:
            raise SystemExit(f"{case.name}: the entry point did not crash: {completed.stderr or completed.stdout}")
        return completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def event_payload(case: Case, traceback_text: str) -> dict:
    """The generic event an error reporter sends for the crash."""
    last = traceback_text.strip().splitlines()[-1]
    payload = {
        "service": case.service,
        "environment": "production",
        "title": last,
        "message": f"Unhandled {case.exception} in {case.module}",
        "severity": "error",
        "exception_type": case.exception,
        "traceback": traceback_text,
        "event_id": f"bench-{uuid.uuid4()}",
        "labels": {"case": case.name},
    }
    if case.request:
        payload["method"], payload["path"] = case.request
    return payload


def pipeline(payload: dict) -> dict:
    """The event through ingestion, the wake-up, the diagnosis and the fix attempts, as the queue runs them."""
    from incidents.models import IncidentWakeup
    from incidents.services.ingest import ingest_signals
    from incidents.sources import generic
    from incidents.tasks import handle_wakeup
    from remediation import services
    from remediation.models import Diagnosis

    started = time.monotonic()
    result = ingest_signals(generic.parse(payload))[0]
    for wakeup in IncidentWakeup.objects.filter(incident_id=result.incident_id, handled_at__isnull=True):
        handle_wakeup(wakeup.pk)
    diagnosis = Diagnosis.objects.filter(incident_id=result.incident_id).order_by("-pk").first()
    if diagnosis is None:
        return {"seconds": time.monotonic() - started, "outcome": "no diagnosis", "attempts": [], "passed": None}
    outcome = services.run_diagnosis(diagnosis.pk)
    number = 1
    while outcome in ("fixing", "retrying"):
        outcome = services.run_fix_attempt(diagnosis.pk, number)
        number += 1
    seconds = time.monotonic() - started
    attempts = list(diagnosis.attempts.order_by("number"))
    passed = next((attempt for attempt in attempts if attempt.status == "passed"), None)
    diagnosis.refresh_from_db()
    return {
        "seconds": seconds,
        "outcome": outcome,
        "attempts": attempts,
        "passed": passed,
        "risk": diagnosis.risk_level,
    }


def apply(repo: Path, diff: str, workdir: Path, name: str, *, only_tests: bool = False) -> Path:
    """A fresh copy of the service with `diff` applied (only its new test files with `only_tests`)."""
    checkout = workdir / name
    shutil.rmtree(checkout, ignore_errors=True)
    subprocess.run([*GIT, "clone", "-q", str(repo), str(checkout)], check=True, capture_output=True)
    if only_tests:
        sections = [s for s in diff.split("diff --git ") if s and "/test_quench_" in s.splitlines()[0]]
        diff = "".join("diff --git " + s for s in sections)
    if diff.strip():
        patch = workdir / f"{name}.patch"
        patch.write_text(diff if diff.endswith("\n") else diff + "\n")
        subprocess.run([*GIT, "apply", str(patch)], cwd=checkout, check=True, capture_output=True)
    return checkout


def classify(case: Case, outcome: dict) -> tuple[str, str]:
    """(verdict, what the replay ended in) for the original call replayed on the patched service."""
    if outcome["outcome"] == "raised":
        described = f"{outcome['type']}: {outcome['message']}"
        at = outcome["where"]
        if outcome["type"] == case.exception and not outcome["value_error"] and outcome["builtin"]:
            return NOT_FIXED, f"still raises {described} at {at[0]}:{at[1]}" if at else f"still raises {described}"
        deliberate = (outcome["value_error"] or not outcome["builtin"]) and outcome["message"].strip()
        if isinstance(case.expect, Refuse) and deliberate and case.request is None:
            if case.expect.mentions.lower() in outcome["message"].lower():
                return FIXED_RIGHT, f"refused: {described}"
            return MOVED, f"refused without naming {case.expect.mentions!r}: {described}"
        where = f" in {at[2]}() at {at[0]}:{at[1]}" if at else ""
        return MOVED, f"raises {described}{where}"
    value = outcome["value"]
    status = value.get("status") if isinstance(value, dict) and case.request else None
    if status is not None and status >= 500:
        return MOVED, f"answers {status}"
    if isinstance(case.expect, Refuse):
        if status is not None and 400 <= status < 500:
            text = json.dumps(value.get("body"))
            if case.expect.mentions.lower() not in text.lower():
                return MOVED, f"answers {status} without naming {case.expect.mentions!r}: {text}"
            if case.expect.status and status != case.expect.status:
                return MOVED, f"answers {status}, not {case.expect.status}: {text}"
            return FIXED_RIGHT, f"answers {status}: {text}"
        return SILENT, f"served an input that must be refused: {json.dumps(value)[:160]}"
    expected = case.expect.value
    if value == expected:
        return FIXED_RIGHT, f"returns {json.dumps(value)[:160]}"
    if status is not None and 400 <= status < 500:
        return MOVED, f"refused a valid input: answers {status} {json.dumps(value.get('body'))}"
    return SILENT, f"returns {json.dumps(value)[:160]}, expected {json.dumps(expected)[:160]}"


def run_case(case: Case, repo: Path, workdir: Path, *, verbose: bool = False) -> dict:
    from incidents.models import Incident

    Incident.objects.filter(service=case.service).delete()  # each case opens its own incident
    traceback_text = run_call(repo, case, crash=True)
    result = pipeline(event_payload(case, traceback_text))
    passed = result["passed"]
    if verbose:
        for attempt in result["attempts"]:
            print(f"--- {case.name}: attempt {attempt.number} {attempt.status}\n{attempt.summary}\n{attempt.patch}")
            if attempt.status != "passed":
                print(f"OUTPUT (tail):\n{attempt.output[-2500:]}\nCRITIC: {attempt.critic_feedback}")
    row = {
        "case": case.name,
        "service": case.service,
        "seconds": result["seconds"],
        "attempts": len(result["attempts"]),
        "risk": result.get("risk", ""),
        "strategy": "",
        "replay_test": "",
    }
    if passed is None:
        last = result["attempts"][-1] if result["attempts"] else None
        why = (last.critic_why or last.output[-200:]) if last else result["outcome"]
        row.update(verdict=NOT_FIXED, detail=f"no attempt passed ({result['outcome']}): {why[:200]}")
        return row
    row["strategy"] = passed.summary.split(" ", 2)[1] if passed.summary.startswith("Strategy ") else "?"
    patched = apply(repo, passed.patch, workdir, f"{case.name}-patched")
    row["verdict"], row["detail"] = classify(case, run_call(patched, case))
    if passed.adds_regression_test:
        before = apply(repo, passed.patch, workdir, f"{case.name}-before", only_tests=True)
        completed = subprocess.run(
            [*TEST_COMMAND.split(), "-k", "quench_replay"],
            cwd=before,
            capture_output=True,
            text=True,
            timeout=120,
            env=_plain_env(),
        )
        row["replay_test"] = "fails before the fix" if completed.returncode == 1 else "PASSES before the fix"
    else:
        row["replay_test"] = "none"
    return row


def score_controls(case: Case, repo: Path, workdir: Path) -> list[dict]:
    """The issue's wrong-fix shapes at the culprit, written without the rules: green on the tests? right on replay?"""
    from incidents.sources.traceback import parse_python_traceback
    from remediation.diffs import FileChange, unified_diff
    from remediation.llm.offline import rewrites

    traceback_text = run_call(repo, case, crash=True)
    exception_type, exception_value, frames = parse_python_traceback(traceback_text)
    root = str(repo.resolve()) + "/"
    culprit = next(frame for frame in reversed(frames) if frame.filename.startswith(root))
    path = culprit.filename[len(root) :]
    source = (repo / path).read_text()
    plan = rewrites.plan(source, culprit.lineno, exception_type, exception_value, path=path)
    rows = []
    for fix in plan.fixes if plan else []:
        if fix.strategy.mode not in (rewrites.RETURN, rewrites.VALUE):
            continue
        diff = unified_diff([FileChange(path, source, fix.new_source)])
        checkout = apply(repo, diff, workdir, f"{case.name}-{fix.strategy.name}")
        tests = subprocess.run(TEST_COMMAND.split(), cwd=checkout, capture_output=True, timeout=120, env=_plain_env())
        verdict, detail = classify(case, run_call(checkout, case))
        rows.append(
            {"case": case.name, "strategy": fix.strategy.name, "green": tests.returncode == 0, "verdict": verdict}
        )
        print(
            f"  control {case.name:<36} {fix.strategy.name:<20} tests {'green' if tests.returncode == 0 else 'red  '}"
            f"  {verdict:<18} {detail[:80]}",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", action="append", help="Run only this case (repeatable).")
    parser.add_argument("--verbose", action="store_true", help="Print every attempt's summary, critique and output.")
    parser.add_argument("--controls", action="store_true", help="Also score the wrong-fix shapes on every case.")
    args = parser.parse_args()
    cases = [case for case in CASES if not args.case or case.name in args.case]
    if not cases:
        raise SystemExit(f"no such case; known: {', '.join(case.name for case in CASES)}")

    os.environ.update(_env())  # before anything reads settings: the bench database, the offline provider
    print("Preparing the bench database and the services' repositories...", flush=True)
    recreate_database(DB_NAME)
    manage(_env(), "migrate", "--no-input")
    import django

    django.setup()
    from remediation.models import Service

    workdir = Path(tempfile.mkdtemp(prefix="quench-bench-fixes-"))
    repos = {}
    for service in sorted({case.service for case in cases}):
        repos[service] = make_repository(service, workdir)
        Service.objects.create(name=service, repository=str(repos[service]), test_command=TEST_COMMAND)
    rows = []
    try:
        for case in cases:
            row = run_case(case, repos[case.service], workdir, verbose=args.verbose)
            rows.append(row)
            print(
                f"  {row['case']:<36} {row['seconds']:5.1f} s  {row['attempts']} att.  {row['verdict']:<18} "
                f"{row['strategy'] or '-':<24} {row['detail'][:110]}",
                flush=True,
            )
        if args.controls:
            controls = [row for case in cases for row in score_controls(case, repos[case.service], workdir)]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    counts = {
        verdict: sum(row["verdict"] == verdict for row in rows) for verdict in (FIXED_RIGHT, MOVED, SILENT, NOT_FIXED)
    }
    times = [row["seconds"] for row in rows]
    print()
    print(f"cases: {len(rows)} in {len({row['service'] for row in rows})} services")
    print("  " + " · ".join(f"{verdict}: {count}" for verdict, count in counts.items()))
    print(f"event → tested fix: median {statistics.median(times):.1f} s, max {max(times):.1f} s")
    tests = [row["replay_test"] for row in rows if row["replay_test"] not in ("", "none")]
    print(
        f"replay tests written: {len(tests)} of {len(rows)}; failing before the fix: "
        f"{sum(item == 'fails before the fix' for item in tests)}/{len(tests)}"
    )
    risks = {}
    for row in rows:
        risks[row["risk"]] = risks.get(row["risk"], 0) + 1
    print("risk levels: " + ", ".join(f"{risk or '?'} {count}" for risk, count in sorted(risks.items())))
    if args.controls:
        green = [row for row in controls if row["green"]]
        print(
            f"wrong-shape controls: {len(controls)} patches, {len(green)} pass the services' own tests; "
            "replayed, those are: "
            + " · ".join(
                f"{verdict}: {sum(row['verdict'] == verdict for row in green)}"
                for verdict in (FIXED_RIGHT, MOVED, SILENT, NOT_FIXED)
            )
        )


if __name__ == "__main__":
    main()

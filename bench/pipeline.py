#!/usr/bin/env python
"""From webhook to a tested fix awaiting approval, per demo scenario, through the real queue.

For each scenario of examples/trigger.py the shop really crashes, its traceback is
POSTed to a running Quench (gunicorn), and the clock runs until the incident has a
proposal awaiting approval (or was escalated). In between: the wake-up task, the
diagnosis (offline analyzer), fix attempts tested in the sandbox (a git worktree of
the shop and its pytest suite), the critic on failures, and the approval request — all
through a real django-q2 cluster on the embedded PostgreSQL. Scenarios run one at a time.

Prints each scenario's time and outcome, the median over scenarios, and the share of
crash-class scenarios that reached a passing patch. Targets on a 2-core machine:
median ≤ 10 s; every crash-class scenario fixed offline.

    .venv/bin/python bench/pipeline.py [--rounds 1] [--timeout 120]

It uses its own database (quench_bench_pipeline), recreated each run, and a fresh copy
of the shop repository in a temporary directory.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from common import environment, manage, recreate_database

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "quench_bench_pipeline"
CRASH_CLASSES = {"KeyError", "IndexError", "ZeroDivisionError", "AttributeError"}
# One key for every process: django-q2 signs queued tasks with it.
SECRET_KEY = "bench-" + uuid.uuid4().hex


def _env() -> dict:
    return environment(DB_NAME, secret_key=SECRET_KEY, offline=True, Q_WORKERS="2")


def prepare(repo: Path) -> str:
    """Recreate the bench database, migrate, register the shop at `repo`; the generic integration's token."""
    recreate_database(DB_NAME)
    manage(_env(), "migrate", "--no-input")
    manage(_env(), "setup_demo_service", "--target", str(repo))
    return manage(_env(), "create_integration", "bench-generic", "--kind", "generic").strip().splitlines()[-1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(port: int) -> list[subprocess.Popen]:
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        cwd=ROOT,
        env=_env(),
        start_new_session=True,
    )
    cluster = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=_env(), start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return [web, cluster]
        except OSError:
            time.sleep(0.2)
    stop([web, cluster])
    raise SystemExit("gunicorn did not come up")


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def scenarios() -> list[tuple[str, str]]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("quench_trigger", ROOT / "examples" / "trigger.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [(name, scenario.exception_type) for name, scenario in module.SCENARIOS.items()]


def run_scenario(name: str, url: str, token: str, repo: Path, timeout: float) -> dict:
    from incidents.models import Incident
    from remediation.choices import DIAGNOSIS_IN_FLIGHT
    from remediation.models import ApprovalRequest, Diagnosis, FixAttempt

    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "trigger.py"),
            "--url",
            url,
            "--scenario",
            name,
            "--service-root",
            str(repo),
        ],
        env={**_env(), "QUENCH_TOKEN": token},
        check=True,
        capture_output=True,
        timeout=60,
    )
    posted = time.monotonic()
    incident = Incident.objects.filter(service="shop").order_by("-id").first()
    deadline = started + timeout
    while time.monotonic() < deadline:
        diagnosis = Diagnosis.objects.filter(incident=incident).order_by("-id").first()
        if diagnosis is not None and diagnosis.status not in DIAGNOSIS_IN_FLIGHT:
            break
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    diagnosis = Diagnosis.objects.filter(incident=incident).order_by("-id").first()
    approval = ApprovalRequest.objects.filter(incident=incident).order_by("-id").first()
    attempts = list(FixAttempt.objects.filter(incident=incident).order_by("number"))
    passed = next((attempt for attempt in attempts if attempt.status == "passed"), None)
    return {
        "seconds": elapsed,
        "post_seconds": posted - started,
        "outcome": (diagnosis.outcome if diagnosis else "no diagnosis") or diagnosis.status,
        "kind": approval.kind if approval else "",
        "attempts": len(attempts),
        "passed_on": passed.number if passed else None,
        "regression_test": bool(passed and passed.adds_regression_test),
        "finished": bool(diagnosis and diagnosis.status not in DIAGNOSIS_IN_FLIGHT),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1, help="Run every scenario this many times.")
    parser.add_argument("--timeout", type=float, default=120, help="Seconds to wait for one scenario.")
    args = parser.parse_args()

    os.environ.update(_env())  # before anything reads settings: the bench database, the offline provider
    workdir = Path(tempfile.mkdtemp(prefix="quench-bench-pipeline-"))
    repo = workdir / "shop-repo"
    print("Preparing the bench database and the shop repository...", flush=True)
    token = prepare(repo)
    import django

    django.setup()
    from incidents.models import Incident

    port = _free_port()
    processes = start(port)
    url = f"http://127.0.0.1:{port}"
    rows = []
    try:
        for round_number in range(1, args.rounds + 1):
            for name, exception_type in scenarios():
                # Each round starts from no open incident, so every crash opens (or reopens) one.
                Incident.objects.filter(service="shop").delete()
                result = run_scenario(name, url, token, repo, args.timeout)
                rows.append((round_number, name, exception_type, result))
                fixed = f"fix passed on attempt {result['passed_on']}" if result["passed_on"] else result["outcome"]
                print(
                    f"  {name:<26} {exception_type:<18} {result['seconds']:6.2f} s  {fixed}"
                    + (" (+ regression test)" if result["regression_test"] else ""),
                    flush=True,
                )
    finally:
        stop(processes)

    times = [result["seconds"] for *_, result in rows]
    crash_rows = [result for _, _, exception_type, result in rows if exception_type in CRASH_CLASSES]
    fixed = [result for result in crash_rows if result["passed_on"]]
    print()
    print(f"scenarios run:                 {len(rows)} ({args.rounds} round(s))")
    print(f"webhook → awaiting approval:   median {statistics.median(times):.2f} s, max {max(times):.2f} s")
    print(f"crash classes fixed offline:   {len(fixed)}/{len(crash_rows)} ({len(fixed) / max(1, len(crash_rows)):.0%})")
    if fixed:
        print(f"  median time for those:       {statistics.median(r['seconds'] for r in fixed):.2f} s")
        print(f"  with a regression test:      {sum(r['regression_test'] for r in fixed)}/{len(fixed)}")
    unfinished = [name for _, name, _, result in rows if not result["finished"]]
    if unfinished:
        print(f"not finished within {args.timeout:.0f} s: {', '.join(unfinished)}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Ingestion throughput, as in production: gunicorn workers on the embedded PostgreSQL.

Drives Quench from concurrent keep-alive clients for a fixed time with a realistic
mix (half the requests are Alertmanager batches of 10 alerts, half single generic
events; 95% of alerts repeat one of 200 fingerprints, 5% are new), then drives a
trivial authenticated endpoint (/api/v1/ping) the same way. Prints accepted alerts/s,
requests/s, p50/p99 latency for both, and their ratio: accepted alerts/s divided by
the trivial endpoint's requests/s (how close ingesting one alert comes to the cost of
the cheapest authenticated request). Each round measures both back to back; the
median round is reported, since other work on a 2-core machine moves single runs.

    .venv/bin/python bench/ingest.py [--seconds 15] [--rounds 3] [--clients 8] [--workers 4]

It uses its own database (quench_bench) on the embedded server, recreated each run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import environment, manage, recreate_database

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "quench_bench"
HOT_FINGERPRINTS = 200
REPEAT_SHARE = 0.95


def _env() -> dict:
    return environment(DB_NAME)


def prepare_database() -> dict[str, str]:
    """Recreate the bench database, migrate it and create one integration per kind used."""
    recreate_database(DB_NAME)
    manage(_env(), "migrate", "--no-input")
    tokens = {}
    for kind in ("alertmanager", "generic"):
        out = manage(_env(), "create_integration", f"bench-{kind}", "--kind", kind)
        tokens[kind] = out.strip().splitlines()[-1]
    return tokens


def start_gunicorn(port: int, workers: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=_env(),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/schema/")
            conn.getresponse().read()
            return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("gunicorn did not come up")


def _alert(rng: random.Random, now: datetime) -> dict:
    if rng.random() < REPEAT_SHARE:
        n = rng.randrange(HOT_FINGERPRINTS)
    else:
        n = HOT_FINGERPRINTS + rng.randrange(10**9)
    return {
        "status": "firing",
        "labels": {
            "alertname": f"HighLatency{n % 20}",
            "service": f"svc-{n}",
            "severity": "warning",
            "instance": f"10.0.{n % 250}.{n % 7}:9100",
        },
        "annotations": {"summary": f"p99 latency above threshold on svc-{n}"},
        # A new occurrence each time (not a retry): startsAt moves.
        "startsAt": (now - timedelta(microseconds=rng.randrange(10**9))).isoformat(),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": f"{n:016x}",
    }


def _request(rng: random.Random, tokens: dict) -> tuple[str, str, bytes, dict, int]:
    now = datetime.now(UTC)
    if rng.random() < 0.5:
        alerts = [_alert(rng, now) for _ in range(10)]
        body = {
            "version": "4",
            "groupKey": "{}:{}",
            "status": "firing",
            "receiver": "quench",
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": alerts,
        }
        return "POST", "/api/v1/ingest/alertmanager", json.dumps(body).encode(), _auth(tokens["alertmanager"]), 10
    alert = _alert(rng, now)
    event = {
        "service": alert["labels"]["service"],
        "title": f"TimeoutError calling inventory from {alert['labels']['service']}",
        "severity": "error",
        "occurred_at": alert["startsAt"],
        "labels": {"region": "eu-west-1"},
    }
    return "POST", "/api/v1/ingest/events", json.dumps(event).encode(), _auth(tokens["generic"]), 1


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def _client(args) -> tuple[list[float], int, int, int]:
    port, tokens, seconds, mode, seed = args
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies, alerts, errors = [], 0, 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if mode == "ping":
            method, path, body, headers, count = "GET", "/api/v1/ping", None, _auth(tokens["generic"]), 0
        else:
            method, path, body, headers, count = _request(rng, tokens)
        started = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        latencies.append(time.perf_counter() - started)
        if response.status in (200, 202):
            alerts += count
        else:
            errors += 1
    return latencies, alerts, errors, len(latencies)


def drive(port: int, tokens: dict, seconds: float, clients: int, mode: str) -> dict:
    with mp.Pool(clients) as pool:
        results = pool.map(_client, [(port, tokens, seconds, mode, seed) for seed in range(clients)])
    latencies = sorted(latency for result in results for latency in result[0])
    requests = sum(result[3] for result in results)
    return {
        "requests_per_s": requests / seconds,
        "alerts_per_s": sum(result[1] for result in results) / seconds,
        "errors": sum(result[2] for result in results),
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()

    tokens = prepare_database()
    server = start_gunicorn(args.port, args.workers)
    rounds = []
    try:
        drive(args.port, tokens, 3, args.clients, "ingest")  # warm-up: workers connect, hot incidents exist
        for number in range(args.rounds):
            ingest = drive(args.port, tokens, args.seconds, args.clients, "ingest")
            ping = drive(args.port, tokens, args.seconds, args.clients, "ping")
            ratio = ingest["alerts_per_s"] / ping["requests_per_s"] if ping["requests_per_s"] else float("nan")
            print(
                f"round {number + 1}: {ingest['alerts_per_s']:,.0f} alerts/s, ping {ping['requests_per_s']:,.0f} "
                f"requests/s, ratio {ratio:.2f}",
                flush=True,
            )
            rounds.append((ingest["alerts_per_s"], ingest, ping, ratio))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    _, ingest, ping, ratio = sorted(rounds, key=lambda item: item[0])[len(rounds) // 2]
    print(
        f"machine: {os.cpu_count()} cores; gunicorn {args.workers} sync workers; {args.clients} clients; "
        f"{args.rounds} rounds of {args.seconds:.0f} s each; median round:"
    )
    print(
        f"ingest: {ingest['alerts_per_s']:,.0f} accepted alerts/s  ({ingest['requests_per_s']:,.0f} requests/s)  "
        f"p50 {ingest['p50_ms']:.1f} ms  p99 {ingest['p99_ms']:.1f} ms  errors {ingest['errors']}"
    )
    print(
        f"ping:   {ping['requests_per_s']:,.0f} requests/s  p50 {ping['p50_ms']:.1f} ms  "
        f"p99 {ping['p99_ms']:.1f} ms  errors {ping['errors']}"
    )
    print(f"ratio (accepted alerts/s ÷ ping requests/s): {ratio:.2f}   targets: ≥ 1,000 alerts/s, ratio ≥ 0.5")


if __name__ == "__main__":
    main()

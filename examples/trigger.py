#!/usr/bin/env python3
"""Make the example shop fail for real and report each failure to Quench.

Each scenario sends one request through the shop's own `api.dispatch`, in this process,
with the input that breaks it in production (an order from the iOS app without a
currency, a search with no results, ...). The exception is caught and posted to Quench's
generic events endpoint with its real `traceback.format_exc()` text, so its frames point
into the copy of the shop that was imported (`--service-root`).

    python examples/trigger.py --list
    python examples/trigger.py --dry-run --scenario payment-missing-currency
    QUENCH_TOKEN=qk_... python examples/trigger.py --url http://127.0.0.1:8000 --repeat 3

The token is a generic-JSON integration's (`manage.py create_integration NAME --kind generic`).
Every occurrence gets its own `event_id`; a delivery retried after a network error or a
5xx keeps it, so Quench stores it once. Exit status: 0 when every occurrence was accepted
(or a scenario no longer fails), 1 when Quench answered an error or could not be reached,
2 for a usage error. Standard library only.
"""

import argparse
import copy
import importlib
import json
import os
import socket
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_SERVICE_ROOT = Path(__file__).resolve().parent / "shop"
INGEST_PATH = "/api/v1/ingest/events"
SERVICE = "shop"
ENVIRONMENT = "production"
ATTEMPTS = 3  # per delivery: the first try and two retries with the same event_id


@dataclass(frozen=True)
class Scenario:
    """One way the shop breaks in production: the request that does it and where it fails."""

    name: str
    summary: str
    exception_type: str  # what the request raises
    culprit_file: str  # repository-relative file of the deepest frame
    culprit_function: str  # the function of the deepest frame
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    body: dict = field(default_factory=dict)
    severity: str = "error"
    labels: dict[str, str] = field(default_factory=dict)  # request context a real error reporter sends


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            name="payment-missing-currency",
            summary="The iOS app posts an order without a currency; charge() reads order['currency'].",
            exception_type="KeyError",
            culprit_file="shop/payments.py",
            culprit_function="charge",
            method="POST",
            path="/api/orders/1042/pay",
            body={
                "customer_id": 7,
                "channel": "ios",
                "payment_token": "tok_visa",
                "items": [{"sku": "MUG-001", "price_cents": 1450, "quantity": 2}],
            },
            severity="critical",
            labels={"component": "payments", "client": "shop-ios/5.2.0"},
        ),
        Scenario(
            name="search-no-results",
            summary="A search that matches nothing; top_result() returns results[0] of an empty list.",
            exception_type="IndexError",
            culprit_file="shop/search.py",
            culprit_function="top_result",
            method="GET",
            path="/api/search",
            query={"q": "left-handed teapot"},
            labels={"component": "search", "client": "web"},
        ),
        Scenario(
            name="analytics-no-orders",
            summary="The dashboard of a shop opened today; average_order_value() divides by len(orders) == 0.",
            exception_type="ZeroDivisionError",
            culprit_file="shop/analytics.py",
            culprit_function="average_order_value",
            method="GET",
            path="/api/shops/3/dashboard",
            labels={"component": "analytics", "client": "merchant-dashboard"},
        ),
        Scenario(
            name="customer-not-found",
            summary="Resending the receipt of an erased customer's order; customer_email() reads .email of None.",
            exception_type="AttributeError",
            culprit_file="shop/customers.py",
            culprit_function="customer_email",
            method="POST",
            path="/api/orders/1017/receipt",
            labels={"component": "customers", "client": "support-console"},
        ),
        Scenario(
            name="db-statement-timeout",
            summary="The yearly sales report scans order_items for 95 s; PostgreSQL cancels it after 30 s.",
            exception_type="TimeoutError",
            culprit_file="shop/db.py",
            culprit_function="execute",
            method="GET",
            path="/api/reports/sales",
            query={"days": "365"},
            severity="critical",
            labels={"component": "reports", "client": "finance-cron", "db_host": "pg-primary-1"},
        ),
    )
}


class TriggerError(Exception):
    """A problem the command reports in one sentence and exits non-zero for."""


class ScenarioDidNotFail(TriggerError):
    """The scenario's request succeeded: the shop imported from service_root no longer has the bug."""


class QuenchError(TriggerError):
    """Quench answered an error, or could not be reached."""


def load_service(service_root: str | os.PathLike | None = None) -> ModuleType:
    """The shop's `api` module, imported from service_root (a copy imported from elsewhere is replaced)."""
    root = Path(service_root or DEFAULT_SERVICE_ROOT).resolve()
    package = root / "shop"
    if not (package / "__init__.py").is_file():
        raise TriggerError(f"{root} is not the shop's repository: {package / '__init__.py'} is missing")
    loaded = sys.modules.get("shop")
    if loaded is not None and Path(loaded.__file__ or "").resolve().parent != package:
        for name in [name for name in sys.modules if name == "shop" or name.startswith("shop.")]:
            del sys.modules[name]
    if str(root) in sys.path:
        sys.path.remove(str(root))
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    writes_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # leave no __pycache__ in the service's working tree
    try:
        return importlib.import_module("shop.api")
    finally:
        sys.dont_write_bytecode = writes_bytecode


def scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise TriggerError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None


def run_scenario(name: str, service_root: str | os.PathLike | None = None) -> tuple[BaseException, str]:
    """Send the scenario's request through the shop; (the exception it raised, its traceback text)."""
    chosen = scenario(name)
    api = load_service(service_root)
    request = api.Request(chosen.method, chosen.path, query=dict(chosen.query), body=copy.deepcopy(chosen.body))
    try:
        response = api.dispatch(request)
    except Exception as exc:  # noqa: BLE001 - the failure is what we came for
        return exc, traceback.format_exc()
    raise ScenarioDidNotFail(
        f"{name}: {chosen.method} {chosen.path} answered {response.status} without an error "
        f"(is the bug fixed in {Path(api.__file__).resolve().parent.parent}?)"
    )


def exception_name(exc: BaseException) -> str:
    """KeyError for built-ins, the dotted path for the service's own exceptions."""
    kind = type(exc)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def build_payload(scenario_name: str, service_root: str | os.PathLike | None = None) -> dict:
    """Run the scenario and describe its failure as one Quench generic event (a new occurrence each call)."""
    chosen = scenario(scenario_name)
    exc, traceback_text = run_scenario(scenario_name, service_root)
    exc_type = exception_name(exc)
    value = str(exc)
    release = getattr(sys.modules.get("shop"), "__version__", "")
    return {
        "service": SERVICE,
        "environment": ENVIRONMENT,
        "title": f"{exc_type}: {value}" if value else exc_type,
        "message": f"Unhandled {exc_type} in {chosen.method} {chosen.path}",
        "severity": chosen.severity,
        "exception_type": exc_type,
        "traceback": traceback_text,
        "path": chosen.path,
        "method": chosen.method,
        "trace_id": uuid.uuid4().hex,
        "event_id": f"shop-{uuid.uuid4()}",
        "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "labels": {
            **chosen.labels,
            "scenario": chosen.name,
            "release": release,
            "host": socket.gethostname(),
            "python": "{}.{}.{}".format(*sys.version_info[:3]),
        },
    }


def post_event(url: str, token: str, payload: dict, *, timeout: float = 10.0) -> tuple[int, dict]:
    """POST one event to Quench; (status, answer). Retries network errors, 429 and 5xx with the same event_id."""
    endpoint = url.rstrip("/") + INGEST_PATH
    if urllib.parse.urlsplit(endpoint).scheme not in ("http", "https"):
        raise TriggerError(f"--url must be an http(s) URL, not {url!r}")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        endpoint,
        data=json.dumps(payload).encode("utf-8"),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            "User-Agent": "quench-shop-trigger/1.0",
        },
    )
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return response.status, _json_or_text(response.read())
        except urllib.error.HTTPError as exc:
            answer = _json_or_text(exc.read())
            if (exc.code >= 500 or exc.code == 429) and attempt < ATTEMPTS:
                time.sleep(0.5 * attempt)
                continue
            raise QuenchError(f"Quench answered {exc.code} {exc.reason}: {_describe_error(answer)}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            if attempt < ATTEMPTS:
                time.sleep(0.5 * attempt)
                continue
            reason = getattr(exc, "reason", exc)
            raise QuenchError(f"could not reach Quench at {url}: {reason}") from None
    raise AssertionError("unreachable")


def _json_or_text(body: bytes) -> dict:
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        return {"text": body.decode("utf-8", "replace")[:500]}
    return answer if isinstance(answer, dict) else {"answer": answer}


def _describe_error(answer: dict) -> str:
    message = answer.get("error") or answer.get("detail") or answer.get("text") or answer
    detail = answer.get("detail") if answer.get("error") else None
    if isinstance(detail, dict) and detail:
        message = f"{message} ({'; '.join(f'{key}: {value}' for key, value in detail.items())})"
    return str(message)


def _describe_result(answer: dict) -> str:
    results = answer.get("results") or []
    if not results:
        return json.dumps(answer)[:200]
    result = results[0]
    incident = f" incident #{result['incident_id']}" if result.get("incident_id") else ""
    return f"{result.get('outcome', '?')}{incident}"


def _positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trigger.py",
        description="Run the example shop's failing code paths and report the exceptions to Quench.",
    )
    parser.add_argument("--url", default=DEFAULT_URL, help=f"Quench's base URL (default {DEFAULT_URL})")
    parser.add_argument("--token", help="a generic-JSON integration token (default: $QUENCH_TOKEN)")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        metavar="NAME",
        help="run only this scenario (repeatable; default: all of them; see --list)",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--repeat", type=_positive_int, default=1, metavar="N", help="occurrences per scenario (default 1)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the payloads as a JSON array; send nothing")
    parser.add_argument(
        "--service-root",
        type=Path,
        default=DEFAULT_SERVICE_ROOT,
        metavar="PATH",
        help="the shop repository whose `shop` package is imported (default: the examples/shop next to this script)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per HTTP request (default 10)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        for item in SCENARIOS.values():
            print(f"{item.name:<26} {item.exception_type:<18} {item.culprit_file}:{item.culprit_function}")
            print(f"{'':<26} {item.summary}")
        return 0
    token = args.token or os.environ.get("QUENCH_TOKEN", "")
    if not token and not args.dry_run:
        parser.error("a token is required: pass --token or set QUENCH_TOKEN (or use --dry-run)")
    if not (args.service_root / "shop" / "__init__.py").is_file():
        parser.error(f"--service-root {args.service_root} does not contain the shop package (shop/__init__.py)")
    names = list(dict.fromkeys(args.scenario or SCENARIOS))
    payloads = []
    try:
        for name in names:
            for occurrence in range(1, args.repeat + 1):
                try:
                    payload = build_payload(name, args.service_root)
                except ScenarioDidNotFail as exc:
                    print(f"{exc}; nothing sent", file=sys.stderr)
                    break
                if args.dry_run:
                    payloads.append(payload)
                    continue
                status, answer = post_event(args.url, token, payload, timeout=args.timeout)
                print(f"{name} [{occurrence}/{args.repeat}] {payload['title']} → {status} {_describe_result(answer)}")
    except TriggerError as exc:
        print(f"trigger.py: error: {exc}", file=sys.stderr)
        return 1
    if args.dry_run:
        print(json.dumps(payloads, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

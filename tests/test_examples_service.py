"""The example shop that Quench diagnoses and fixes, and the script that makes it fail (examples/).

The shop is a small service repository with five production bugs; examples/trigger.py
runs each failing code path in-process and posts the real traceback to Quench.
"""

import builtins
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from incidents.models import Event, Incident
from incidents.sources.traceback import parse_python_traceback

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SHOP = EXAMPLES / "shop"
TRIGGER = EXAMPLES / "trigger.py"
URL = "/api/v1/ingest/events"

# scenario → the culprit line (the deepest frame's source line): one line a minimal patch changes.
CULPRIT_LINES = {
    "payment-missing-currency": 'currency = order["currency"]',
    "search-no-results": "return results[0]",
    "analytics-no-orders": "return revenue(orders) / len(orders)",
    "customer-not-found": "return find_customer(customer_id).email",
    "db-statement-timeout": 'raise TimeoutError("canceling statement due to statement timeout")',
}

# The guard a reviewer would accept for each code bug (the database timeout is a playbook's job).
MINIMAL_FIXES = {
    "shop/payments.py": ('currency = order["currency"]', 'currency = order.get("currency", "USD")'),
    "shop/search.py": ("return results[0]", "return results[0] if results else None"),
    "shop/analytics.py": (
        "return revenue(orders) / len(orders)",
        "return revenue(orders) / len(orders) if orders else 0.0",
    ),
    "shop/customers.py": (
        "return find_customer(customer_id).email",
        "customer = find_customer(customer_id)\n    return customer.email if customer else None",
    ),
}


def _copy_service(destination: Path) -> Path:
    shutil.copytree(SHOP, destination, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.pyc"))
    return destination


def _service_env() -> dict:
    """The environment of a plain developer shell: no Django settings of ours leak into the shop's run."""
    env = {key: value for key, value in os.environ.items() if key not in ("DJANGO_SETTINGS_MODULE", "PYTEST_ADDOPTS")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run_service_suite(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        env=_service_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def trigger():
    """examples/trigger.py imported from its path; the shop modules it imports are forgotten afterwards."""
    saved_path = list(sys.path)
    spec = importlib.util.spec_from_file_location("quench_examples_trigger", TRIGGER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path[:] = saved_path
    for name in [name for name in sys.modules if name == "shop" or name.startswith("shop.")]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def service_copy(tmp_path_factory):
    """A copy of the shop's working tree, as `make run` copies it before `git init`."""
    return _copy_service(tmp_path_factory.mktemp("service") / "shop")


def test_the_service_suite_passes_as_shipped(tmp_path):
    result = _run_service_suite(_copy_service(tmp_path / "shop"))

    assert result.returncode == 0, result.stdout + result.stderr
    summary = re.search(r"(\d+) passed in ([\d.]+)s", result.stdout)
    assert summary, result.stdout
    assert 10 <= int(summary.group(1)) <= 25
    assert float(summary.group(2)) < 5


def test_the_working_tree_is_ready_to_be_copied_and_git_inited():
    assert not (SHOP / ".git").exists()
    assert {"pyproject.toml", "README.md", ".gitignore", "shop", "tests"} <= {path.name for path in SHOP.iterdir()}
    pyproject = (SHOP / "pyproject.toml").read_text()
    assert 'testpaths = ["tests"]' in pyproject and 'pythonpath = ["."]' in pyproject


@pytest.mark.parametrize("name", list(CULPRIT_LINES))
def test_each_scenario_raises_its_exception_at_the_culprit_line(trigger, service_copy, name):
    scenario = trigger.SCENARIOS[name]
    exc, text = trigger.run_scenario(name, service_copy)

    assert type(exc) is getattr(builtins, scenario.exception_type)
    exc_type, _, frames = parse_python_traceback(text)
    assert exc_type == scenario.exception_type
    deepest = frames[-1]
    assert Path(deepest.filename) == service_copy / scenario.culprit_file
    assert deepest.function == scenario.culprit_function
    assert deepest.in_app
    assert deepest.context_line == CULPRIT_LINES[name]
    assert deepest.lineno == _line_of(service_copy / scenario.culprit_file, CULPRIT_LINES[name])
    # Every service frame points into the copy that was imported, none into examples/shop.
    service_frames = [frame for frame in frames if "/shop/" in frame.filename]
    assert all(Path(frame.filename).is_relative_to(service_copy) for frame in service_frames)


def test_the_scenario_list_covers_the_five_bugs(trigger):
    assert list(trigger.SCENARIOS) == list(CULPRIT_LINES)
    assert trigger.DEFAULT_SERVICE_ROOT == SHOP


def test_the_default_service_root_is_the_shop_next_to_the_script(trigger):
    bytecode_before = set(SHOP.rglob("*.pyc"))
    payload = trigger.build_payload("search-no-results")

    frames = parse_python_traceback(payload["traceback"])[2]
    assert Path(frames[-1].filename) == SHOP / "shop" / "search.py"
    assert set(SHOP.rglob("*.pyc")) == bytecode_before, "the scenarios must not write bytecode into examples/shop"


def test_failing_inputs_are_reconstructible_from_the_culprit_parameters(trigger, service_copy):
    """What an offline analyzer's regression test does: call the culprit function with the bad input."""
    trigger.load_service(service_copy)
    from shop import analytics, customers, db, payments, reports, search

    with pytest.raises(KeyError, match="currency"):
        payments.charge({"id": 1, "items": [{"sku": "MUG-001", "price_cents": 1450}]})
    with pytest.raises(IndexError):
        search.top_result([])
    with pytest.raises(ZeroDivisionError):
        analytics.average_order_value([])
    with pytest.raises(AttributeError, match="email"):
        customers.customer_email(999_999)
    with pytest.raises(TimeoutError, match="statement timeout"):
        db.fetch_all(reports.SALES_BY_DAY_SQL, ("2023-01-01", "2024-01-01"))


def test_minimal_guards_fix_the_code_bugs_and_keep_the_suite_green(trigger, tmp_path):
    root = _copy_service(tmp_path / "shop")
    for relative, (before, after) in MINIMAL_FIXES.items():
        path = root / relative
        source = path.read_text()
        assert source.count(before) == 1, relative
        path.write_text(source.replace(before, after))

    result = _run_service_suite(root)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in CULPRIT_LINES:
        if name == "db-statement-timeout":
            continue  # no code fix: killing the long query or recycling the pool is the remedy
        with pytest.raises(trigger.ScenarioDidNotFail):
            trigger.run_scenario(name, root)


def test_payload_is_a_complete_generic_event(trigger, service_copy):
    payload = trigger.build_payload("payment-missing-currency", service_copy)

    assert payload["service"] == "shop" and payload["environment"] == "production"
    assert payload["title"] == "KeyError: 'currency'"
    assert payload["exception_type"] == "KeyError"
    assert payload["traceback"].startswith("Traceback (most recent call last):")
    assert payload["path"] == "/api/orders/1042/pay" and payload["method"] == "POST"
    assert payload["severity"] in ("critical", "error")
    assert payload["labels"]["scenario"] == "payment-missing-currency"
    assert all(isinstance(value, str) for value in payload["labels"].values())
    assert payload["event_id"] != trigger.build_payload("payment-missing-currency", service_copy)["event_id"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(CULPRIT_LINES))
def test_every_scenario_is_accepted_by_the_ingest_endpoint(trigger, service_copy, make_integration, post_json, name):
    scenario = trigger.SCENARIOS[name]
    token = make_integration("generic").raw_token
    payload = trigger.build_payload(name, service_copy)

    response = post_json(URL, payload, token)

    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == 1
    incident = Incident.objects.get()
    assert incident.service == "shop"
    assert incident.environment == "production"
    assert incident.exception_type == scenario.exception_type
    assert incident.culprit.endswith(scenario.culprit_function)
    event = Event.objects.get()
    assert event.frames[-1]["function"] == scenario.culprit_function
    assert event.source_id == payload["event_id"]

    retry = post_json(URL, payload, token)

    assert retry.status_code == 202, retry.content
    assert retry.json()["duplicates"] == 1
    assert Event.objects.count() == 1
    incident.refresh_from_db()
    assert incident.event_count == 1


@pytest.mark.django_db
def test_repeated_occurrences_group_into_one_incident(trigger, service_copy, make_integration, post_json):
    token = make_integration("generic").raw_token

    for _ in range(3):
        assert post_json(URL, trigger.build_payload("analytics-no-orders", service_copy), token).status_code == 202

    incident = Incident.objects.get()
    assert incident.event_count == 3
    assert Event.objects.count() == 3


def _run_trigger(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TRIGGER), *args],
        env={**_service_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dry_run_prints_the_payloads_without_a_token(service_copy):
    result = _run_trigger("--dry-run", "--repeat", "2", "--service-root", str(service_copy))

    assert result.returncode == 0, result.stderr
    payloads = json.loads(result.stdout)
    assert [payload["labels"]["scenario"] for payload in payloads] == [name for name in CULPRIT_LINES for _ in (1, 2)]
    assert len({payload["event_id"] for payload in payloads}) == len(payloads)


def test_list_and_usage_errors():
    listing = _run_trigger("--list")
    assert listing.returncode == 0
    assert all(name in listing.stdout for name in CULPRIT_LINES)

    no_token = _run_trigger("--scenario", "search-no-results", env={"QUENCH_TOKEN": ""})
    assert no_token.returncode == 2
    assert "--token" in no_token.stderr

    unknown = _run_trigger("--dry-run", "--scenario", "nope")
    assert unknown.returncode == 2


@pytest.mark.django_db(transaction=True)
def test_trigger_reports_a_scenario_to_a_live_quench(live_server, make_integration, service_copy):
    token = make_integration("generic").raw_token

    result = _run_trigger(
        "--url",
        live_server.url,
        "--token",
        token,
        "--scenario",
        "customer-not-found",
        "--repeat",
        "2",
        "--service-root",
        str(service_copy),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "202 opened" in result.stdout
    incident = Incident.objects.get()
    assert incident.service == "shop"
    assert incident.exception_type == "AttributeError"
    assert incident.event_count == 2
    assert Path(Event.objects.first().frames[-1]["filename"]) == service_copy / "shop" / "customers.py"


@pytest.mark.django_db(transaction=True)
def test_trigger_exits_non_zero_when_quench_refuses(live_server, service_copy):
    result = _run_trigger(
        "--url",
        live_server.url,
        "--token",
        "qk_not-a-real-token",
        "--scenario",
        "search-no-results",
        "--service-root",
        str(service_copy),
    )

    assert result.returncode == 1
    assert "Quench answered 401" in result.stderr
    assert not Incident.objects.exists()


def test_trigger_exits_non_zero_when_quench_is_unreachable(service_copy):
    result = _run_trigger(
        "--url",
        "http://127.0.0.1:9",
        "--token",
        "qk_x",
        "--scenario",
        "search-no-results",
        "--service-root",
        str(service_copy),
        "--timeout",
        "2",
    )

    assert result.returncode == 1
    assert "could not reach Quench" in result.stderr


def _line_of(path: Path, text: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if line.strip() == text)

"""`manage.py fingerprint`: templates streamed from stdin, and one signal's fingerprint from JSON."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from incidents.fingerprinting import compute_fingerprint, normalize_message
from incidents.sources.base import Frame, Signal, SignalKind

ROOT = Path(__file__).resolve().parent.parent

LINES = [
    "Charge 8812 failed for customer 1042 after 3 retries",
    "",
    "KeyError: 'sku'",
    "   ",
    "connection to 10.0.0.5:5432 refused at 2024-01-02T03:04:05Z",
]


def run(stdin, monkeypatch, *args) -> str:
    monkeypatch.setattr(sys, "stdin", stdin)
    out = io.StringIO()
    call_command("fingerprint", *args, stdout=out)
    return out.getvalue()


def test_stdin_prints_one_template_per_line_in_order(monkeypatch):
    raw = ("\n".join(LINES) + "\n").encode()
    output = run(io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"), monkeypatch, "--stdin")
    assert output.split("\n")[:-1] == [normalize_message(line) for line in LINES]
    assert output.split("\n")[:-1] == [
        "Charge <num> failed for customer <num> after <num> retries",
        "",
        "KeyError: 'sku'",
        "",
        "connection to <ip> refused at <ts>",
    ]


def test_stdin_replaces_invalid_utf8_and_keeps_line_count(monkeypatch):
    raw = b"bad \xff\xfe bytes in order 7\r\nform\x0cfeed and a lone \r in a line\nno newline at the end 9"
    output = run(io.TextIOWrapper(io.BytesIO(raw)), monkeypatch, "--stdin")
    assert output.split("\n")[:-1] == [
        "bad \ufffd\ufffd bytes in order <num>",
        "form feed and a lone in a line",
        "no newline at the end <num>",
    ]


def test_stdin_without_a_byte_buffer(monkeypatch):
    output = run(io.StringIO("user 42 logged in\n\n"), monkeypatch, "--stdin")
    assert output == "user <str> logged in\n\n"


def test_empty_stdin_prints_nothing(monkeypatch):
    assert run(io.TextIOWrapper(io.BytesIO(b"")), monkeypatch, "--stdin") == ""


def signal_document() -> dict:
    return {
        "source": "sentry",
        "kind": "error",
        "service": "orders-api",
        "exception_type": "KeyError",
        "exception_value": "'sku'",
        "frames": [{"module": "orders.views", "function": "create_order", "lineno": 42}],
        "path": "/api/orders/12",
        "occurred_at": "2024-01-02T03:04:05+00:00",
    }


def test_json_file_prints_the_fingerprint(tmp_path, monkeypatch):
    path = tmp_path / "signal.json"
    path.write_text(json.dumps(signal_document()), encoding="utf-8")
    output = json.loads(run(io.StringIO(""), monkeypatch, "--json", str(path)))
    expected = compute_fingerprint(
        Signal(
            source="sentry",
            kind=SignalKind.ERROR,
            service="orders-api",
            exception_type="KeyError",
            exception_value="'sku'",
            frames=[Frame(module="orders.views", function="create_order", lineno=42)],
            path="/api/orders/12",
        )
    )
    assert output == expected.as_dict()


def test_json_from_stdin(monkeypatch):
    output = json.loads(run(io.StringIO(json.dumps(signal_document())), monkeypatch, "--json", "-"))
    assert output["strategy"] == "default:error"


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("[1, 2]", "must be an object"),
        ('{"colour": "red"}', "Unknown Signal field(s): colour"),
        ('{"frames": [{"line": 3}]}', "frames[0]: unknown Frame field(s): line"),
        ('{"frames": "x"}', "frames must be a list"),
        ('{"occurred_at": "yesterday"}', "occurred_at is not an ISO 8601"),
        ("{not json", "is not valid JSON"),
    ],
)
def test_json_errors_say_what_is_wrong(monkeypatch, document, problem):
    with pytest.raises(CommandError, match=problem.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        run(io.StringIO(document), monkeypatch, "--json", "-")


def test_json_file_that_does_not_exist(monkeypatch, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        run(io.StringIO(""), monkeypatch, "--json", str(tmp_path / "missing.json"))


def test_one_mode_is_required():
    with pytest.raises(CommandError):
        call_command("fingerprint")


def test_stdin_through_manage_py():
    """The real entry point: bytes in, one template per line out, through a pipe."""
    lines = [f"order {n} failed after {n % 7} retries on 10.0.{n % 250}.1" for n in range(2000)]
    stdin = ("\n".join(lines) + "\n\n" + "tail \xe9 \n").encode() + b"\xff\n"
    env = {**os.environ, "DEBUG": "true", "QUENCH_INSECURE_DEV_KEY": "true", "PYTHONIOENCODING": "utf-8"}
    result = subprocess.run(
        [sys.executable, "manage.py", "fingerprint", "--stdin"],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    output = result.stdout.decode("utf-8").split("\n")
    assert output[-1] == ""
    output = output[:-1]
    assert len(output) == 2003
    assert set(output[:2000]) == {"order <num> failed after <num> retries on <ip>"}
    assert output[2000:] == ["", "tail \xe9", "\ufffd"]


def test_learn_prints_the_group_each_line_gets_as_the_book_learns(monkeypatch):
    users = ["alice", "bob", "carol", "dave", "erin", "frank"]
    raw = "".join(f"password check failed for {user} on shard 3\n" for user in users).encode()
    output = run(io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"), monkeypatch, "--stdin", "--learn")
    keys = output.split("\n")[:-1]
    first = "password check failed for alice on shard <num>"
    # Four users are four groups until the position has earned being a variable (5 values).
    assert keys[:4] == [f"password check failed for {user} on shard <num>" for user in users[:4]]
    assert keys[4:] == [first, first]


def test_learn_needs_stdin(monkeypatch):
    with pytest.raises(CommandError, match="--learn goes with --stdin"):
        run(io.StringIO(""), monkeypatch, "--json", "-", "--learn")

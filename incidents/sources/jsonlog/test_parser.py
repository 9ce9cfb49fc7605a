"""JSON log records → Signals for the log tailer (pure: no database)."""

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incidents.sources.base import SignalKind
from incidents.sources.jsonlog import parse_record

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/billing/tasks.py", line 57, in send_invoice\n'
    "    pdf = render_invoice(invoice)\n"
    '  File "/usr/lib/python3.11/site-packages/weasyprint/__init__.py", line 252, in write_pdf\n'
    "    return self.render().write_pdf(target)\n"
    "MemoryError"
)


def parse(record, **options):
    defaults = {"service": "billing", "environment": "production", "count_error_levels": True, "count_http_5xx": True}
    return parse_record(record, **{**defaults, **options})


def test_python_json_logger_record_with_exc_info():
    record = {
        "asctime": "2024-05-14 09:41:07,318",
        "levelname": "ERROR",
        "name": "billing.tasks",
        "message": "Invoice rendering failed for invoice 8812",
        "exc_info": TRACEBACK,
    }
    signal = parse(record)

    assert signal.source == "log"
    assert signal.kind == SignalKind.ERROR
    assert signal.title == "Invoice rendering failed for invoice 8812"
    assert signal.severity == "error"
    assert signal.service == "billing"
    assert signal.environment == "production"
    assert signal.exception_type == "MemoryError"
    assert [(f.module, f.in_app) for f in signal.frames] == [("billing.tasks", True), ("weasyprint", False)]
    assert signal.traceback == TRACEBACK
    assert signal.labels == {"logger": "billing.tasks"}
    assert signal.occurred_at == datetime(2024, 5, 14, 9, 41, 7, 318000, tzinfo=UTC)
    assert signal.source_id == ""
    assert signal.payload is record


def test_structlog_record_with_dict_tracebacks():
    record = {
        "event": "payment capture failed",
        "level": "error",
        "logger": "payments.capture",
        "timestamp": "2024-05-14T09:41:07.318Z",
        "exception": [
            {
                "exc_type": "ConnectionError",
                "exc_value": "gateway unreachable",
                "exc_notes": [],
                "syntax_error": None,
                "is_cause": False,
                "frames": [
                    {"filename": "/app/payments/capture.py", "lineno": 31, "name": "capture", "locals": None},
                    {"filename": "", "lineno": -1, "name": "Skipped frames: 4"},
                    {
                        "filename": "/usr/local/lib/python3.12/site-packages/httpx/_client.py",
                        "lineno": 1015,
                        "name": "send",
                    },
                ],
            },
            {"exc_type": "OSError", "exc_value": "[Errno 111] Connection refused", "is_cause": False, "frames": []},
        ],
    }
    signal = parse(record)

    assert signal.kind == SignalKind.ERROR
    assert signal.title == "payment capture failed"
    assert signal.exception_type == "ConnectionError"
    assert signal.exception_value == "gateway unreachable"
    assert [(f.function, f.lineno, f.in_app) for f in signal.frames] == [("capture", 31, True), ("send", 1015, False)]
    assert signal.traceback.endswith("ConnectionError: gateway unreachable")
    assert signal.occurred_at == datetime(2024, 5, 14, 9, 41, 7, 318000, tzinfo=UTC)


def test_ecs_record_nested():
    record = {
        "@timestamp": "2024-05-14T09:41:07.318Z",
        "log": {"level": "error", "logger": "app.checkout"},
        "message": "Unhandled exception",
        "error": {"type": "ValueError", "message": "bad amount", "stack_trace": TRACEBACK},
        "service": {"name": "checkout", "environment": "staging"},
        "trace": {"id": "4bf92f3577b34da6a3ce929d0e0e4736"},
        "http": {"request": {"method": "post"}, "response": {"status_code": 500}},
        "url": {"path": "/api/checkout", "original": "/api/checkout?x=1"},
    }
    signal = parse(record)

    assert signal.service == "checkout"
    assert signal.environment == "staging"
    assert signal.exception_type == "MemoryError"  # the stack trace text is the full story
    assert signal.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert signal.method == "POST"
    assert signal.path == "/api/checkout"
    assert signal.labels == {"logger": "app.checkout", "status_code": "500"}


def test_ecs_record_flattened_with_error_type_only():
    record = {"log.level": "ERROR", "message": "rejected", "error": {"type": "PermissionDenied", "message": "no"}}
    signal = parse(record)
    assert signal.kind == SignalKind.ERROR
    assert signal.exception_type == "PermissionDenied"
    assert signal.exception_value == "no"


def test_an_access_log_5xx_counts_even_at_info_level():
    record = {
        "level": "info",
        "msg": "",
        "status": 503,
        "method": "GET",
        "path": "/health?full=1",
        "time": 1715679667.5,
    }
    signal = parse(record)
    assert signal.kind == SignalKind.LOG
    assert signal.title == "HTTP 503 GET /health"
    assert signal.severity == "error"
    assert signal.labels == {"status_code": "503"}
    assert signal.occurred_at == datetime.fromtimestamp(1715679667.5, tz=UTC)


@pytest.mark.parametrize(
    "record",
    [
        {"level": "info", "message": "ok"},
        {"level": "warning", "message": "slow"},
        {"levelname": "DEBUG", "message": "x", "status_code": 404},
        {"level": "info", "status": "error"},
        {"message": "no level at all"},
    ],
)
def test_records_that_do_not_count(record):
    assert parse(record) is None


def test_switches_turn_each_rule_off():
    error = {"level": "error", "message": "boom"}
    five_hundred = {"level": "info", "status_code": 500}
    assert parse(error, count_error_levels=False) is None
    assert parse(five_hundred, count_http_5xx=False) is None
    assert parse(error, count_http_5xx=False) is not None


@pytest.mark.parametrize(
    ("record", "severity"),
    [
        ({"levelno": 40, "message": "x"}, "error"),
        ({"levelno": 50, "message": "x"}, "critical"),
        ({"level": "CRITICAL", "message": "x"}, "critical"),
        ({"severity": "fatal", "message": "x"}, "critical"),
        ({"level": "exception", "message": "x"}, "error"),
    ],
)
def test_levels(record, severity):
    assert parse(record).severity == severity


def test_an_unreadable_time_is_left_empty():
    assert parse({"level": "error", "message": "x", "timestamp": "yesterday-ish"}).occurred_at is None


def test_message_first_line_is_the_title():
    signal = parse({"level": "error", "message": "Job failed\ndetails follow"})
    assert signal.title == "Job failed"
    assert signal.message == "Job failed\ndetails follow"


def test_exception_type_is_the_title_when_there_is_no_message():
    assert parse({"level": "error", "exc_info": TRACEBACK}).title == "MemoryError"


@settings(max_examples=500, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "level",
                "levelno",
                "message",
                "event",
                "status",
                "status_code",
                "exc_info",
                "exception",
                "timestamp",
                "time",
                "path",
                "url",
                "method",
                "log",
                "error",
                "service",
                "http",
            ]
        ),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
            lambda children: (
                st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=3)
            ),
            max_leaves=10,
        ),
    )
)
def test_any_record_gives_a_signal_or_none(record):
    signal = parse(record)
    assert signal is None or signal.service

"""Python traceback text → (exception type, value, frames), and frames → text."""

import sys
import time
import traceback

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incidents.sources.base import Frame
from incidents.sources.traceback import format_python_traceback, module_for_filename, parse_python_traceback

DJANGO_TRACEBACK = """\
Traceback (most recent call last):
  File "/usr/local/lib/python3.12/site-packages/django/core/handlers/exception.py", line 55, in inner
    response = get_response(request)
               ^^^^^^^^^^^^^^^^^^^^^
  File "/usr/local/lib/python3.12/site-packages/django/core/handlers/base.py", line 197, in _get_response
    response = wrapped_callback(request, *callback_args, **callback_kwargs)
               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/app/src/shop/orders/views.py", line 42, in checkout
    order = Order.objects.get(pk=order_id)
            ~~~~~~~~~~~~~~~~~^^^^^^^^^^^^^
  File "/usr/local/lib/python3.12/site-packages/django/db/models/manager.py", line 87, in manager_method
    return getattr(self.get_queryset(), name)(*args, **kwargs)
  File "/usr/local/lib/python3.12/site-packages/django/db/models/query.py", line 649, in get
    raise self.model.DoesNotExist(
shop.orders.models.Order.DoesNotExist: Order matching query does not exist."""

CHAINED = """\
Traceback (most recent call last):
  File "/app/billing/gateway.py", line 20, in charge
    response = session.post(url, json=body, timeout=5)
  File "/usr/lib/python3/dist-packages/requests/sessions.py", line 637, in post
    return self.request("POST", url, data=data, json=json, **kwargs)
TimeoutError: The read operation timed out

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/billing/views.py", line 11, in pay
    gateway.charge(order)
  File "/app/billing/gateway.py", line 24, in charge
    raise PaymentFailed(f"charge failed for {order.id}") from None
billing.errors.PaymentFailed: charge failed for 81723"""

CAUSE = """\
Traceback (most recent call last):
  File "/app/a.py", line 1, in f
KeyError: 'x'

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/app/b.py", line 2, in g
RuntimeError: config broken"""

GROUP = """\
  + Exception Group Traceback (most recent call last):
  |   File "/app/jobs/runner.py", line 17, in run_all
  |     async with asyncio.TaskGroup() as group:
  |   File "/usr/lib/python3.12/asyncio/taskgroups.py", line 145, in __aexit__
  |     raise me from None
  | ExceptionGroup: unhandled errors in a TaskGroup (2 sub-exceptions)
  +-+---------------- 1 ----------------
    | Traceback (most recent call last):
    |   File "/app/jobs/sync.py", line 10, in sync_orders
    |     raise ValueError("bad order")
    | ValueError: bad order
    +---------------- 2 ----------------
    | TypeError: nope
    +------------------------------------"""

SYNTAX = """\
Traceback (most recent call last):
  File "/app/manage.py", line 22, in <module>
    main()
  File "/app/shop/settings.py", line 31
    DEBUG = (
            ^
SyntaxError: '(' was never closed"""

MULTILINE = """\
Traceback (most recent call last):
  File "/app/etl/load.py", line 88, in load
    validate(rows)
pydantic_core._pydantic_core.ValidationError: 2 validation errors for Row
amount
  Input should be a valid number [type=float_parsing, input_value='12,5', input_type=str]
currency
  Field required [type=missing, input_value={'amount': '12,5'}, input_type=dict]"""

NO_SOURCE_LINES = """\
Traceback (most recent call last):
  File "<frozen runpy>", line 198, in _run_module_as_main
  File "<string>", line 1, in <module>
  File "/app/tools/report.py", in build
  File "/app/tools/report.py", line None, in write
OSError: [Errno 28] No space left on device"""


def test_a_django_traceback():
    exc_type, exc_value, frames = parse_python_traceback(DJANGO_TRACEBACK)

    assert exc_type == "shop.orders.models.Order.DoesNotExist"
    assert exc_value == "Order matching query does not exist."
    assert [(f.module, f.function, f.lineno, f.in_app) for f in frames] == [
        ("django.core.handlers.exception", "inner", 55, False),
        ("django.core.handlers.base", "_get_response", 197, False),
        ("shop.orders.views", "checkout", 42, True),
        ("django.db.models.manager", "manager_method", 87, False),
        ("django.db.models.query", "get", 649, False),
    ]
    assert frames[2].context_line == "order = Order.objects.get(pk=order_id)"  # carets are not source
    assert frames[2].filename == "/app/src/shop/orders/views.py"


def test_chained_exceptions_report_the_last_one():
    exc_type, exc_value, frames = parse_python_traceback(CHAINED)
    assert exc_type == "billing.errors.PaymentFailed"
    assert exc_value == "charge failed for 81723"
    assert [f.function for f in frames] == ["pay", "charge"]


def test_direct_cause_reports_the_last_one():
    exc_type, exc_value, frames = parse_python_traceback(CAUSE)
    assert (exc_type, exc_value) == ("RuntimeError", "config broken")
    assert [f.filename for f in frames] == ["/app/b.py"]


def test_an_exception_group_reports_the_group_and_its_own_frames():
    exc_type, exc_value, frames = parse_python_traceback(GROUP)
    assert exc_type == "ExceptionGroup"
    assert exc_value == "unhandled errors in a TaskGroup (2 sub-exceptions)"
    assert [(f.function, f.in_app) for f in frames] == [("run_all", True), ("__aexit__", False)]
    assert frames[0].context_line == "async with asyncio.TaskGroup() as group:"


def test_syntax_error_tail_is_a_frame():
    exc_type, exc_value, frames = parse_python_traceback(SYNTAX)
    assert (exc_type, exc_value) == ("SyntaxError", "'(' was never closed")
    assert [(f.module, f.function, f.lineno) for f in frames] == [("manage", "<module>", 22), ("shop.settings", "", 31)]
    assert frames[1].context_line == "DEBUG = ("


def test_a_syntax_error_printed_without_a_header():
    text = '  File "/app/x.py", line 3\n    def f(:\n          ^\nSyntaxError: invalid syntax'
    exc_type, _, frames = parse_python_traceback(text)
    assert exc_type == "SyntaxError"
    assert frames[0].lineno == 3


def test_multi_line_messages_are_kept_whole():
    exc_type, exc_value, _ = parse_python_traceback(MULTILINE)
    assert exc_type == "pydantic_core._pydantic_core.ValidationError"
    assert exc_value.startswith("2 validation errors for Row\namount\n  Input should be")
    assert exc_value.endswith("input_type=dict]")


def test_frames_without_source_lines_or_line_numbers():
    exc_type, exc_value, frames = parse_python_traceback(NO_SOURCE_LINES)
    assert (exc_type, exc_value) == ("OSError", "[Errno 28] No space left on device")
    assert [(f.module, f.lineno, f.in_app, f.context_line) for f in frames] == [
        ("runpy", 198, False, ""),
        ("", 1, False, ""),
        ("tools.report", None, True, ""),
        ("tools.report", None, True, ""),
    ]


def test_an_exception_without_a_message():
    text = 'Traceback (most recent call last):\n  File "/app/w.py", line 5, in loop\n    time.sleep(1)\nKeyboardInterrupt\n'
    assert parse_python_traceback(text)[:2] == ("KeyboardInterrupt", "")


def test_repeated_frames_marker_is_skipped():
    text = (
        "Traceback (most recent call last):\n"
        '  File "/app/r.py", line 2, in r\n    return r(n + 1)\n'
        "  [Previous line repeated 996 more times]\n"
        "RecursionError: maximum recursion depth exceeded"
    )
    exc_type, _, frames = parse_python_traceback(text)
    assert exc_type == "RecursionError"
    assert len(frames) == 1


def test_windows_line_endings():
    exc_type, _, frames = parse_python_traceback(CHAINED.replace("\n", "\r\n"))
    assert exc_type == "billing.errors.PaymentFailed"
    assert len(frames) == 2


def test_a_real_traceback_from_this_interpreter():
    def inner():
        return {}["missing"]

    try:
        inner()
    except KeyError:
        text = traceback.format_exc()
    exc_type, exc_value, frames = parse_python_traceback(text)
    assert (exc_type, exc_value) == ("KeyError", "'missing'")
    assert frames[-1].function == "inner"
    assert frames[-1].context_line == 'return {}["missing"]'


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups")
def test_a_real_exception_group_from_this_interpreter():
    try:
        raise ExceptionGroup("two", [ValueError("a"), TypeError("b")])  # noqa: F821
    except ExceptionGroup:  # noqa: F821
        text = traceback.format_exc()
    assert parse_python_traceback(text)[:2] == ("ExceptionGroup", "two (2 sub-exceptions)")


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "hello world",
        "File",
        "Traceback",
        "ValueError: bad",
        None,
        42,
        ["Traceback"],
        "\x00\x01" * 50,
        'File "x", line',
    ],
)
def test_garbage_gives_nothing(garbage):
    exc_type, exc_value, frames = parse_python_traceback(garbage)
    assert frames == [] or isinstance(frames[0], Frame)
    assert isinstance(exc_type, str) and isinstance(exc_value, str)


def test_text_that_is_not_a_traceback_gives_empty_results():
    assert parse_python_traceback("ValueError: bad") == ("", "", [])
    assert parse_python_traceback("just a log line") == ("", "", [])


@pytest.mark.parametrize(
    ("filename", "module", "in_app"),
    [
        ("/usr/local/lib/python3.12/site-packages/django/db/models/query.py", "django.db.models.query", False),
        ("/usr/lib/python3/dist-packages/requests/__init__.py", "requests", False),
        ("/home/deploy/.venv/lib/python3.11/site-packages/celery/app/task.py", "celery.app.task", False),
        ("/usr/lib/python3.11/json/decoder.py", "json.decoder", False),
        ("/root/.pyenv/versions/3.12.3/lib/python3.12/asyncio/tasks.py", "asyncio.tasks", False),
        ("C:\\Python311\\Lib\\site-packages\\flask\\app.py", "flask.app", False),
        ("<frozen importlib._bootstrap>", "importlib._bootstrap", False),
        ("<string>", "", False),
        ("<stdin>", "", False),
        ("/app/src/shop/orders/views.py", "shop.orders.views", True),
        ("/app/shop/__init__.py", "shop", True),
        ("/srv/www/releases/20240514093000/shop/views.py", "shop.views", True),
        ("shop/payments/gateway.py", "shop.payments.gateway", True),
        ("/opt/services/payments/api/handlers.py", "services.payments.api.handlers", True),
        ("/data/jobs/etl/load.py", "jobs.etl.load", True),
        ("manage.py", "manage", True),
        ("", "", True),
    ],
)
def test_module_and_in_app_from_the_filename(filename, module, in_app):
    assert module_for_filename(filename) == (module, in_app)


def test_formatting_frames_gives_text_that_parses_back():
    frames = [
        Frame(module="shop.views", function="checkout", filename="/app/shop/views.py", lineno=10, context_line="pay()"),
        Frame(
            module="requests.api",
            function="post",
            filename="/usr/lib/python3/dist-packages/requests/api.py",
            lineno=None,
            in_app=False,
        ),
    ]
    text = format_python_traceback("ConnectionError", "refused", frames)
    assert parse_python_traceback(text) == ("ConnectionError", "refused", frames)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            DJANGO_TRACEBACK.splitlines() + GROUP.splitlines() + CHAINED.splitlines() + ["", "  ^^^", "|", "+-"]
        )
        | st.text(max_size=40),
        max_size=30,
    )
)
def test_any_text_parses_without_raising(lines):
    exc_type, exc_value, frames = parse_python_traceback("\n".join(lines))
    assert isinstance(exc_type, str) and isinstance(exc_value, str)
    assert all(isinstance(frame, Frame) for frame in frames)


@pytest.mark.parametrize(
    "text",
    [
        "Traceback (most recent call last):\n  +" + "-" * 100_000 + "x",
        'Traceback (most recent call last):\n  File "x", line 1, in ' + " " * 100_000 + "x",
        "Traceback (most recent call last):\n" + "^ " * 50_000 + "x",
        "Traceback (most recent call last):\n" + '  File "/app/x.py", line 1, in f\n    y\n' * 10_000 + "E: e",
        "  + Exception Group Traceback (most recent call last):\n" + ("  | " * 5_000 + "\n") * 20,
    ],
    ids=["rule-line", "trailing-spaces", "carets", "deep-stack", "group-bars"],
)
def test_adversarial_text_parses_in_linear_time(text):
    started = time.perf_counter()
    parse_python_traceback(text)
    assert time.perf_counter() - started < 1.0

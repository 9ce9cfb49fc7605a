"""libcst fixes for crash classes: each rewrite parses, stops the crash, and leaves other code untouched.

Also the failing input the replay test rebuilds from a function's code (`replay`), for single files.
"""

import ast
import asyncio
import textwrap

import pytest

from remediation.llm.offline import inputs, replay, rewrites, sites
from remediation.llm.offline.contracts import Sources


def _source(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def _plan(source: str, line: int, exception_type: str, exception_value: str = "", **kwargs) -> rewrites.Plan:
    found = rewrites.plan(source, line, exception_type, exception_value, **kwargs)
    assert found is not None, "no crash site found"
    return found


def _fixes(source: str, line: int, exception_type: str, exception_value: str = "", **kwargs) -> dict:
    return {fix.strategy.name: fix for fix in _plan(source, line, exception_type, exception_value, **kwargs).fixes}


def _run(source: str, expression: str, namespace: dict | None = None):
    """Execute `source` as a module and evaluate `expression` in it."""
    scope = dict(namespace or {})
    exec(compile(source, "<snippet>", "exec"), scope)  # noqa: S102 — the snippets are ours
    return eval(expression, scope)  # noqa: S307


def _check(original: str, patched: str, expression: str, exception: type, namespace: dict | None = None):
    """The original raises `exception` on `expression`; the patched code parses and does not."""
    with pytest.raises(exception):
        _run(original, expression, namespace)
    ast.parse(patched)
    return _run(patched, expression, namespace)


def _changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """Lines only in `before`, lines only in `after` (order kept)."""
    old, new = before.splitlines(), after.splitlines()
    return [line for line in old if line not in new], [line for line in new if line not in old]


# --- KeyError -------------------------------------------------------------------------

CHARGE = _source(
    '''
    """Payments."""

    class PaymentError(Exception):
        """A payment cannot be made."""


    def charge(order, rate=1):
        # amount in cents;   odd   spacing stays
        amount = order['amount'] * rate
        return f"{amount} {order['currency'].upper()}"
    '''
)


def test_key_default_uses_get_with_a_default_that_fits_the_use():
    fix = _fixes(CHARGE, 10, "KeyError", "'currency'")["key_default"]
    assert fix.site.expression == "order['currency']"
    assert fix.site.description == "reads order['currency'] but order has no 'currency' key"
    # '' because .upper() follows, in single quotes because the f-string uses double ones.
    assert "order.get('currency', '').upper()" in fix.new_source
    assert _check(CHARGE, fix.new_source, "charge({'amount': 2})", KeyError) == "2 "
    removed, added = _changed_lines(CHARGE, fix.new_source)
    assert removed == ["    return f\"{amount} {order['currency'].upper()}\""]
    assert len(added) == 1


def test_key_default_outside_an_fstring_uses_double_quotes():
    source = _source(
        """
        def label(order):
            return order['currency'].lower()
        """
    )
    fix = _fixes(source, 2, "KeyError", "'currency'")["key_default"]
    assert "order.get('currency', \"\").lower()" in fix.new_source
    assert _check(source, fix.new_source, "label({})", KeyError) == ""


def test_key_guards_return_early_or_raise_the_modules_own_error():
    fixes = _fixes(CHARGE, 10, "KeyError", "'currency'")
    early = fixes["key_guard_return"].new_source
    assert "    if 'currency' not in order:\n        return None\n    return f" in early
    assert _check(CHARGE, early, "charge({'amount': 2})", KeyError) is None

    raising = fixes["key_guard_raise"].new_source
    assert "raise PaymentError(\"charge(): order is missing 'currency'\")" in raising
    with pytest.raises(Exception) as error:
        _check(CHARGE, raising, "charge({'amount': 2})", KeyError)
    assert type(error.value).__name__ == "PaymentError"
    assert "'currency'" in str(error.value)


def test_key_picks_the_subscript_whose_key_the_exception_names():
    source = _source(
        """
        def total(prices, taxes):
            return prices["net"] + taxes["vat"]
        """
    )
    fix = _fixes(source, 2, "KeyError", "'vat'")["key_default"]
    assert fix.site.expression == 'taxes["vat"]'
    assert 'prices["net"] + taxes.get("vat", 0)' in fix.new_source
    assert _check(source, fix.new_source, "total({'net': 5}, {})", KeyError) == 5


def test_key_augmented_assignment_starts_from_a_default():
    source = _source(
        """
        def count(words):
            counts = {}
            for word in words:
                counts[word] += 1
            return counts
        """
    )
    fixes = _fixes(source, 4, "KeyError", "'a'")
    assert "counts[word] = counts.get(word, 0) + 1" in fixes["key_default"].new_source
    assert _check(source, fixes["key_default"].new_source, "count(['a', 'a'])", KeyError) == {"a": 2}
    # In a loop, the early-return strategy skips the item instead of leaving the function.
    assert "        if word not in counts:\n            continue\n" in fixes["key_guard_return"].new_source


def test_key_default_is_refused_when_none_would_crash_further_on():
    source = _source(
        """
        def name(user):
            return user["profile"].display()
        """
    )
    found = _plan(source, 2, "KeyError", "'profile'")
    assert "key_default" in found.skipped
    assert [fix.strategy.name for fix in found.fixes] == ["key_guard_return", "key_guard_raise"]


def test_a_missing_environment_variable_is_configuration_not_a_code_default():
    source = 'import os\n\nDSN = os.environ["DATABASE_URL"]\n'
    found = _plan(source, 3, "KeyError", "'DATABASE_URL'")
    assert found.fixes == []
    assert "environment variable" in found.site.description
    assert all("configuration" in why for why in found.skipped.values())


# --- IndexError -----------------------------------------------------------------------

FIRST = _source(
    """
    def first_email(users):
        # the oldest account first
        return users[0]["email"].lower()
    """
)


def test_index_default_wraps_the_whole_expression_in_a_conditional():
    fixes = _fixes(FIRST, 3, "IndexError", "list index out of range")
    fix = fixes["index_default"]
    assert fix.site.description == "reads users[0] but users is empty"
    assert 'return (users[0]["email"].lower() if users else None)' in fix.new_source
    assert _check(FIRST, fix.new_source, "first_email([])", IndexError) is None
    assert _run(fix.new_source, "first_email([{'email': 'A@B'}])") == "a@b"
    early = fixes["index_guard_return"].new_source
    # The comment above the statement stays attached above the guard.
    assert "    # the oldest account first\n    if not users:\n        return None\n    return users[0]" in early
    assert _check(FIRST, early, "first_email([])", IndexError) is None


@pytest.mark.parametrize(
    ("expression", "condition", "call"),
    [
        ("items[-1]", "if items else None", "last([])"),
        ("items[2]", "if len(items) > 2 else None", "last([1, 2])"),
        ("items[-3]", "if len(items) >= 3 else None", "last([1, 2])"),
        ("items[i]", "if -len(items) <= i < len(items) else None", "last([1, 2])"),
    ],
)
def test_index_conditions_match_the_index(expression, condition, call):
    source = f"def last(items, i=5):\n    return {expression}\n"
    fix = _fixes(source, 2, "IndexError", "list index out of range")["index_default"]
    assert f"return ({expression} {condition})" in fix.new_source
    assert _check(source, fix.new_source, call, IndexError) is None


def test_index_on_a_call_result_uses_next_iter_instead_of_calling_twice():
    source = "def newest(load):\n    return load()[0]\n"
    fix = _fixes(source, 2, "IndexError", "list index out of range")["index_default"]
    assert "return next(iter(load()), None)" in fix.new_source
    assert _check(source, fix.new_source, "newest(list)", IndexError) is None


def test_pop_from_an_empty_list():
    source = "def take(queue):\n    job = queue.pop()\n    return job\n"
    fixes = _fixes(source, 2, "IndexError", "pop from empty list")
    assert "job = (queue.pop() if queue else None)" in fixes["index_default"].new_source
    assert _check(source, fixes["index_default"].new_source, "take([])", IndexError) is None


# --- ZeroDivisionError ------------------------------------------------------------------

AVERAGE = _source(
    """
    def average(values):
        total = sum(values)
        return round(total / len(values), 2)
    """
)


def test_zero_division_guards_the_denominator():
    fixes = _fixes(AVERAGE, 3, "ZeroDivisionError", "division by zero")
    fix = fixes["zero_default"]
    assert fix.site.description == "divides by len(values) in total / len(values), and values was empty"
    assert "return round((total / len(values) if values else 0), 2)" in fix.new_source
    assert _check(AVERAGE, fix.new_source, "average([])", ZeroDivisionError) == 0
    assert _run(fix.new_source, "average([1, 2])") == 1.5
    early = fixes["zero_guard_return"].new_source
    assert "    if not values:\n        return None\n" in early
    assert _check(AVERAGE, early, "average([])", ZeroDivisionError) is None
    raising = fixes["zero_guard_raise"].new_source
    with pytest.raises(ValueError, match="values was empty"):
        _check(AVERAGE, raising, "average([])", ZeroDivisionError)


@pytest.mark.parametrize(
    ("line", "message", "replacement"),
    [
        ("return a // b", "integer division or modulo by zero", "return (a // b if b else 0)"),
        ("return '%d items' % a, a % b", "integer modulo by zero", "return '%d items' % a, (a % b if b else 0)"),
        ("return a / 2 + a / b", "division by zero", "return a / 2 + (a / b if b else 0)"),
    ],
)
def test_zero_division_finds_the_operation_that_can_be_zero(line, message, replacement):
    source = f"def ratio(a, b):\n    {line}\n"
    fix = _fixes(source, 2, "ZeroDivisionError", message)["zero_default"]
    assert replacement in fix.new_source
    _check(source, fix.new_source, "ratio(4, 0)", ZeroDivisionError)


def test_division_by_a_nonzero_literal_is_not_the_culprit():
    assert rewrites.plan("def half(a):\n    return a / 2\n", 2, "ZeroDivisionError", "division by zero") is None


# --- None --------------------------------------------------------------------------------


def test_attribute_on_none_is_guarded_for_the_object_named_in_the_expression():
    source = _source(
        """
        def display_name(user):
            return user.profile.name.title()
        """
    )
    fixes = _fixes(source, 2, "AttributeError", "'NoneType' object has no attribute 'name'")
    fix = fixes["none_default"]
    assert fix.site.subject == "user.profile"
    assert "return (user.profile.name.title() if user.profile is not None else None)" in fix.new_source

    class User:
        profile = None

    _check(source, fix.new_source, "display_name(User())", AttributeError, {"User": User})
    early = fixes["none_guard_return"].new_source
    assert "    if user.profile is None:\n        return None\n" in early
    raising = fixes["none_guard_raise"].new_source
    assert 'raise ValueError("display_name(): user.profile is None")' in raising


@pytest.mark.parametrize(
    ("body", "message", "replacement", "call", "exception"),
    [
        (
            "return settings['port']",
            "'NoneType' object is not subscriptable",
            "return (settings['port'] if settings is not None else None)",
            "f(None)",
            TypeError,
        ),
        (
            "return len(settings)",
            "object of type 'NoneType' has no len()",
            "return len(settings or ())",
            "f(None)",
            TypeError,
        ),
        (
            "return [x for x in settings]",
            "'NoneType' object is not iterable",
            "return [x for x in (settings or ())]",
            "f(None)",
            TypeError,
        ),
        (
            "return settings + 1",
            "unsupported operand type(s) for +: 'NoneType' and 'int'",
            "return (settings or 0) + 1",
            "f(None)",
            TypeError,
        ),
    ],
)
def test_type_errors_on_none(body, message, replacement, call, exception):
    source = f"def f(settings):\n    {body}\n"
    fix = _fixes(source, 2, "TypeError", message)["none_default"]
    assert replacement in fix.new_source
    _check(source, fix.new_source, call, exception)


def test_guards_are_refused_where_they_would_change_the_meaning():
    source = _source(
        """
        def pick(users, fallback):
            if fallback:
                return None
            elif users[0].active:
                return users[0]
            return [u.name for u in users if u.tags[0]]
        """
    )
    in_elif = _plan(source, 4, "IndexError", "list index out of range")
    assert "elif" in in_elif.skipped["index_guard_return"]
    in_comprehension = _plan(source, 6, "IndexError", "list index out of range")
    assert "comprehension" in in_comprehension.skipped["index_guard_return"]
    assert "u.tags[0] if u.tags else None" in in_comprehension.fixes[0].new_source


# --- Timeouts -----------------------------------------------------------------------------


def test_timeout_keyword_is_added_keeping_a_multiline_call_layout():
    source = _source(
        """
        import requests


        def fetch(url):
            response = requests.get(
                url,
                params={"page": 1},
            )
            return response.json()
        """
    )
    fixes = _fixes(source, 5, "requests.exceptions.ReadTimeout", "HTTPSConnectionPool: Read timed out.")
    assert list(fixes) == ["timeout_keyword", "timeout_generous"]
    assert '        params={"page": 1},\n        timeout=10,\n    )\n' in fixes["timeout_keyword"].new_source
    assert "timeout=30," in fixes["timeout_generous"].new_source


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("socket.create_connection((host, 5432))", "socket.create_connection((host, 5432), timeout=10)"),
        ("urllib.request.urlopen(host)", "urllib.request.urlopen(host, timeout=10)"),
        ("httpx.post(host, json={})", "httpx.post(host, json={}, timeout=10)"),
        ("psycopg.connect(host)", "psycopg.connect(host, connect_timeout=10)"),
        ("self.session.get(host, timeout=None)", "self.session.get(host, timeout=10)"),
        ("client.execute(host)", "client.execute(host, timeout=10)"),
    ],
)
def test_timeout_keyword_for_known_and_local_calls(call, expected):
    source = f"def work(self, client, host):\n    return {call}\n"
    local = {"execute": ("timeout", 1)}
    fix = _fixes(source, 2, "TimeoutError", "timed out", local_timeouts=local)["timeout_keyword"]
    assert f"return {expected}\n" in fix.new_source


def test_a_call_that_already_has_a_timeout_gets_no_patch():
    source = "import requests\n\ndef fetch(url):\n    return requests.get(url, timeout=5)\n"
    found = _plan(source, 4, "requests.exceptions.ReadTimeout", "Read timed out.")
    assert found.site.has_timeout
    assert found.fixes == []
    positional = _plan("import socket\nsocket.create_connection(('db', 1), 3)\n", 2, "TimeoutError", "timed out")
    assert positional.site.has_timeout and positional.fixes == []


def test_timeout_functions_reads_parameters_of_local_definitions():
    found = sites.timeout_functions(
        [
            "def fetch(url, timeout=None):\n    pass\n",
            "class Client:\n    def query(self, sql, *, statement_timeout=5):\n        pass\n",
            "def broken(:\n",
        ]
    )
    assert found == {"fetch": ("timeout", 1), "query": ("statement_timeout", None)}


# --- What gets no patch, and what stays untouched --------------------------------------------


@pytest.mark.parametrize(
    ("source", "line", "exception_type", "exception_value"),
    [
        ("def f(d):\n    return d.lookup('x')\n", 2, "KeyError", "'x'"),  # nothing subscripted on the line
        ("def f(d):\n    return d['x']\n", 9, "KeyError", "'x'"),  # no such line
        ("def f(d):\n    return d['x']\n", 2, "KeyError", "'y'"),  # a literal key that is not the missing one
        ("def f(d:\n    return d['x']\n", 2, "KeyError", "'x'"),  # does not parse
        ("def f(d):\n    return int(d)\n", 2, "ValueError", "invalid literal"),  # no strategy for the class
        ("def f(d):\n    return d.x\n", 2, "AttributeError", "'Foo' object has no attribute 'x'"),  # not None
    ],
)
def test_no_matching_construct_gives_no_plan(source, line, exception_type, exception_value):
    assert rewrites.plan(source, line, exception_type, exception_value) is None


def test_formatting_elsewhere_is_preserved_byte_for_byte():
    source = (
        "import os  # keep this comment\n"
        "\n"
        "\n"
        "CONFIG = { 'a' :1,'b':[ 1,2 ] }\n"
        "\n"
        "def  lookup( d ,key ):\n"
        "    '''Odd   spacing.'''\n"
        "    value = d['missing']   # trailing comment\n"
        "    return ( value\n"
        "             + 1 )\r\n"
    )
    for fix in _plan(source, 8, "KeyError", "'missing'").fixes:
        new_lines = fix.new_source.splitlines(keepends=True)
        old_lines = source.splitlines(keepends=True)
        for line in old_lines:
            if "d['missing']" not in line:
                assert line in new_lines, (fix.strategy.name, line)
        assert "# trailing comment" in fix.new_source


def test_crash_class_mapping():
    assert sites.crash_class("KeyError", "'x'") == sites.MISSING_KEY
    assert sites.crash_class("builtins.IndexError") == sites.INDEX_OUT_OF_RANGE
    assert sites.crash_class("ZeroDivisionError") == sites.ZERO_DIVISION
    assert sites.crash_class("AttributeError", "'NoneType' object has no attribute 'id'") == sites.NONE_VALUE
    assert sites.crash_class("AttributeError", "'User' object has no attribute 'id'") is None
    assert sites.crash_class("socket.timeout", "timed out") == sites.MISSING_TIMEOUT
    assert sites.crash_class("httpx.ConnectTimeout", "") == sites.MISSING_TIMEOUT
    assert sites.crash_class("psycopg.errors.QueryCanceled", "canceling statement due to statement timeout") is None


# --- The failing input, rebuilt for the replay test -----------------------------------------


def _replay(source: str, line: int, exception_type: str, exception_value: str, function: str, **kwargs):
    """The replay of a crash in a one-file service at `svc/mod.py` (its entry point is the culprit)."""
    path = kwargs.pop("path", "svc/mod.py")
    _, target = sites.locate(source, line, exception_type, exception_value, None)
    return replay.plan_replay(
        Sources({path: source}),
        [inputs.Frame(path, line, function)],
        target,
        event=kwargs.pop("event", {}),
        expect=kwargs.pop("expect", replay.SERVE),
        why="",
        must_name=(),
        exception=exception_type,
        exception_value=exception_value,
    )


def _call(planned) -> str:
    """The entry call as code that runs in the snippet's own namespace."""
    return planned.entry.call.replace("entry_mod.", "")


def test_regression_input_keeps_the_other_keys_the_function_reads():
    source = _source(
        """
        def invoice(order, customer, note=""):
            lines = [f"{item['sku']} x{item['qty'] + 0}" for item in order["items"]]
            total = order["amount"] * 100
            return customer["name"].upper(), lines, total, order["currency"]
        """
    )
    planned = _replay(source, 4, "KeyError", "'currency'", "invoice")
    assert planned.entry.call == "entry_mod.invoice(order={'items': [], 'amount': 1}, customer={'name': 'x'})"
    with pytest.raises(KeyError):
        _run(source, _call(planned))
    fix = _fixes(source, 4, "KeyError", "'currency'")["key_default"]
    assert _run(fix.new_source, _call(planned))[3] is None


def test_regression_input_through_a_loop_variable():
    source = _source(
        """
        def totals(orders):
            result = []
            for order in orders:
                result.append(order["amount"] * order["rate"])
            return result
        """
    )
    planned = _replay(source, 4, "KeyError", "'rate'", "totals")
    assert planned.entry.call == "entry_mod.totals(orders=[{'amount': 1}])"
    with pytest.raises(KeyError):
        _run(source, _call(planned))
    fix = _fixes(source, 4, "KeyError", "'rate'")["key_guard_return"]
    assert fix.skips_item
    assert _run(fix.new_source, _call(planned)) == []


def test_replay_test_file_imports_the_entry_module_by_its_path():
    planned = _replay(FIRST, 3, "IndexError", "list index out of range", "first_email", path="src/accounts/users.py")
    path, content = replay.replay_test_file(
        planned, Sources({"src/accounts/users.py": FIRST}), test_command="pytest -q tests/unit"
    )
    assert path == "tests/unit/test_quench_replay_first_email.py"
    assert 'entry_users = importlib.import_module("accounts.users")' in content
    assert 'Path(__file__).resolve().parents[2] / "src"' in content
    assert "lambda: entry_users.first_email(users=[])" in content
    ast.parse(content)


def test_what_cannot_be_replayed_says_why():
    method = _source(
        """
        class Cart:
            def total(self, items):
                return sum(items) / len(items)
        """
    )
    assert "method" in _replay(method, 3, "ZeroDivisionError", "division by zero", "total")
    local = _replay("def f():\n    d = {}\n    return d['x']\n", 3, "KeyError", "'x'", "f")
    assert "does not come from a parameter" in local or "state" in local
    assert "not importable" in _replay(
        FIRST, 3, "IndexError", "list index out of range", "first_email", path="my-service/users.py"
    )
    assert replay.runs_code_on_import("def f(d):\n    return d['x']\n\nf({})\n")


def test_guard_uses_the_modules_own_indentation():
    source = "def first(items):\n  if items is not None:\n    return items[0]\n"
    early = _fixes(source, 3, "IndexError", "list index out of range")["index_guard_return"].new_source
    assert (
        early
        == "def first(items):\n  if items is not None:\n    if not items:\n      return None\n    return items[0]\n"
    )
    assert _check(source, early, "first([])", IndexError) is None


def test_async_functions_are_called_through_asyncio_run():
    source = "async def load(rows):\n    return rows[0]\n"
    planned = _replay(source, 2, "IndexError", "list index out of range", "load", path="jobs/load.py")
    assert planned.entry.call == "asyncio.run(entry_load.load(rows=[]))"
    path, content = replay.replay_test_file(planned, Sources({"jobs/load.py": source}))
    assert path == "tests/test_quench_replay_load.py"
    assert "import asyncio\n" in content
    fix = _fixes(source, 2, "IndexError", "list index out of range")["index_default"]
    scope = {}
    exec(compile(fix.new_source, "<snippet>", "exec"), scope)  # noqa: S102
    assert asyncio.run(scope["load"]([])) is None


def test_a_none_returned_by_a_call_is_kept_in_a_local_first():
    source = _source(
        """
        CUSTOMERS = {9: None}


        def find_customer(customer_id):
            return CUSTOMERS.get(customer_id)


        def customer_email(customer_id):
            # receipts go here
            return find_customer(customer_id).email
        """
    )
    found = _plan(source, 10, "AttributeError", "'NoneType' object has no attribute 'email'")
    assert found.site.description == "uses find_customer(customer_id).email but find_customer(customer_id) is None"
    fixes = {fix.strategy.name: fix for fix in found.fixes}
    early = fixes["none_guard_return"].new_source
    assert (
        "    # receipts go here\n"
        "    customer = find_customer(customer_id)\n"
        "    if customer is None:\n"
        "        return None\n"
        "    return customer.email\n"
    ) in early
    assert fixes["none_default"].change.startswith("find_customer(customer_id) is kept in customer first; ")
    for fix in found.fixes[:2]:
        assert _check(source, fix.new_source, "customer_email(7)", AttributeError) is None
    # The None comes from state, and there is no recorded request: nothing to replay.
    assert "state" in _replay(
        source, 10, "AttributeError", "'NoneType' object has no attribute 'email'", "customer_email"
    )


def test_the_default_fits_where_an_assigned_value_is_used_next():
    source = _source(
        """
        def label(order):
            currency = order["currency"]
            count = order["count"]
            return f"{count + 1} {currency.upper()}"
        """
    )
    fix = _fixes(source, 2, "KeyError", "'currency'")["key_default"]
    assert 'currency = order.get("currency", "")' in fix.new_source
    planned = _replay(source, 2, "KeyError", "'currency'", "label")
    assert planned.entry.call == "entry_mod.label(order={'count': 1})"
    assert _check(source, fix.new_source, _call(planned), KeyError) == "2 "


def test_frame_locals_the_source_sent_are_the_replayed_input():
    source = "def total(order):\n    return order['amount'] * order['rate']\n"
    _, target = sites.locate(source, 2, "KeyError", "'rate'", None)
    # As Sentry sends them: each local's repr; what is not a literal is left out.
    locals_sent = inputs.literal_locals({"vars": {"order": "{'amount': 5, 'note': 'gift'}", "self": "<Cart at 0x1>"}})
    assert locals_sent == {"order": {"amount": 5, "note": "gift"}}
    planned = replay.plan_replay(
        Sources({"svc/mod.py": source}),
        [inputs.Frame("svc/mod.py", 2, "total", locals_sent)],
        target,
        event={},
        expect=replay.REFUSE,
        why="",
        must_name=("rate",),
        exception="KeyError",
        exception_value="'rate'",
    )
    assert planned.entry.call == "entry_mod.total(order={'amount': 5, 'note': 'gift'})"
    with pytest.raises(KeyError):
        _run(source, _call(planned))

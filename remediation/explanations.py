"""What an exception class means, how incidents of that kind are usually caused and fixed.

`explain(exception_type, exception_value)` looks an exception up in a hand-written table
of the exceptions Python services actually die of. The type is matched by its last dotted
part (`psycopg.errors.QueryCanceled` → `QueryCanceled`), because the module prefix depends
on the library version and on how the traceback was printed; the message refines the
match where the class alone is ambiguous (an `OperationalError` may be a statement
timeout, a refused connection or a full connection pool; an `OSError` may be a timeout
or a full disk). Message rules are checked first, in order, then the class table, then a
generic fallback, so every exception gets an answer.

The category is the one the diagnosis reports: code_bug, timeout, dependency, database,
resource or configuration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CODE_BUG = "code_bug"
TIMEOUT = "timeout"
DEPENDENCY = "dependency"
DATABASE = "database"
RESOURCE = "resource"
CONFIGURATION = "configuration"
ALERT = "alert"


@dataclass(frozen=True)
class Explanation:
    """The meaning of one exception class (or one message of it) and what usually helps."""

    name: str  # the canonical name shown to people, e.g. "KeyError" or "Database statement timeout"
    category: str
    meaning: str
    usual_fix: str
    known: bool = True  # False for the generic fallback

    def text(self) -> str:
        """The explanation as the diagnosis shows it: the meaning, then what usually fixes it."""
        return f"{self.meaning} Usual fix: {self.usual_fix}"


_ENTRIES: dict[str, Explanation] = {}


def _entry(names: str, category: str, meaning: str, usual_fix: str, *, label: str = "") -> Explanation:
    explanation = Explanation(label or names.split()[0], category, meaning, usual_fix)
    for name in names.split():
        _ENTRIES[name] = explanation
    return explanation


_entry(
    "KeyError",
    CODE_BUG,
    "A mapping (a dict, a parsed JSON object, os.environ, a cache) was indexed with a key it does not "
    "contain; the code assumed the key is always present.",
    "validate the input where it enters the service and refuse it with a clear error naming the key; read a "
    "key with .get() only when the code documents its default (never a made-up price, amount or count).",
)
_entry(
    "IndexError",
    CODE_BUG,
    "A sequence was indexed past its end, most often [0] or [-1] on an empty list (no results, an empty "
    "payload, a split that found no separator).",
    "handle the empty case before indexing: return what the function documents for it (None where its "
    "annotation and callers allow it), or refuse the input with a clear error where it enters.",
)
_entry(
    "ZeroDivisionError",
    CODE_BUG,
    "A division or modulo had a zero denominator, typically an average or ratio over an empty set "
    "(len(items) == 0) or a count that can legitimately be zero.",
    "guard the denominator and decide what the result is for the empty case: the value the function "
    "documents (a rate of nothing may be None or 0 on a report), never an invented figure that is charged or "
    "shipped, else a clear error where the input enters.",
)
_entry(
    "AttributeError",
    CODE_BUG,
    "An attribute was read from an object that does not have it; with 'NoneType' in the message, a "
    "value that is usually an object was None (a lookup that found nothing, an optional field, a "
    "function that returned nothing).",
    "check for None where the value is produced or before it is used: use the default the code documents, "
    "return None only where the annotation and the callers allow it, else raise a clear error naming what was "
    "not found; or fix the attribute name.",
)
_entry(
    "TypeError",
    CODE_BUG,
    "An operation got a value of the wrong type: None where an object or number was expected "
    "('NoneType' in the message), a wrong number of arguments, or mixing str and bytes/int.",
    "check for None before the operation, or convert the value to the expected type where it enters.",
)
_entry(
    "ValueError",
    CODE_BUG,
    "A value had the right type but an unacceptable content (int('abc'), a bad date, unpacking the wrong "
    "number of items).",
    "validate or normalise the input where it enters the service and reject bad values with a clear message.",
)
_entry(
    "NameError UnboundLocalError",
    CODE_BUG,
    "A name was used before it was defined or assigned: a typo, a missing import, or a variable only "
    "assigned on some branches.",
    "define the name on every path (or import it); this is a plain code bug and a test would have caught it.",
)
_entry(
    "ModuleNotFoundError ImportError",
    DEPENDENCY,
    "A module or a name inside it could not be imported: a package missing from the deployed environment, "
    "a version that removed the name, or a circular import.",
    "pin and install the dependency in the service's environment (requirements/lock file) and redeploy.",
)
_entry(
    "RecursionError",
    CODE_BUG,
    "The call stack exceeded Python's recursion limit: a function calls itself (directly or through "
    "others) without reaching its base case, often on cyclic or unexpectedly deep data.",
    "fix the base case or the cycle (track visited items), or rewrite the recursion as a loop.",
)
_entry(
    "MemoryError",
    RESOURCE,
    "The process could not allocate memory: it loads too much at once (a whole table, a huge file or "
    "response) or the container's memory limit is too small.",
    "stream or paginate the work, and size the memory limit for the real load; restarting only buys time.",
)
_entry(
    "TimeoutError timeout ReadTimeout ConnectTimeout Timeout TimeoutException WriteTimeout PoolTimeout "
    "ReadTimeoutError ConnectTimeoutError SoftTimeLimitExceeded TimeLimitExceeded TimeoutExpired",
    TIMEOUT,
    "An operation on another system (HTTP service, socket, database, subprocess) did not finish in time: "
    "the dependency is slow or unreachable, or no timeout was set and the call hung until something else "
    "gave up.",
    "give every outbound call an explicit, bounded timeout and handle the timeout (retry with backoff, "
    "degrade, or fail fast); if the dependency itself is slow, that is where the fix is.",
    label="TimeoutError",
)
_entry(
    "ConnectionError ConnectionRefusedError ConnectionResetError ConnectionAbortedError BrokenPipeError "
    "ConnectError NewConnectionError MaxRetryError RemoteDisconnected ProtocolError gaierror "
    "ServerDisconnectedError ClientConnectorError",
    DEPENDENCY,
    "A connection to another system failed or was dropped: the dependency is down, restarting, overloaded, "
    "not resolvable by DNS, or reachable only from elsewhere.",
    "check the dependency's health and the address the service uses; retry idempotent calls with backoff "
    "and a timeout.",
    label="ConnectionError",
)
_entry(
    "HTTPError HTTPStatusError",
    DEPENDENCY,
    "An HTTP call got an error status (raise_for_status): the other service refused the request or failed.",
    "look at the status: 4xx means this service sends a bad request, 5xx means the other service failed.",
)
_entry(
    "OperationalError InterfaceError",
    DATABASE,
    "The database driver reported an operational problem: the server is unreachable or restarting, the "
    "connection was dropped, a lock or statement timed out, or the connection pool is exhausted.",
    "check the database's health and connection count; make long queries faster or move them off the request path.",
    label="OperationalError",
)
_entry(
    "QueryCanceled QueryCanceledError LockNotAvailable",
    DATABASE,
    "PostgreSQL cancelled a statement because it ran longer than statement_timeout (or waited longer than "
    "lock_timeout): the query is too slow for its data, or it waited on a lock held by another transaction.",
    "find the slow query (EXPLAIN ANALYZE, a missing index, a lock held by a long transaction) and fix it; "
    "raising the timeout only hides it.",
    label="Database statement timeout",
)
_entry(
    "IntegrityError UniqueViolation ForeignKeyViolation NotNullViolation CheckViolation",
    DATABASE,
    "The database refused a write that breaks a constraint: a duplicate unique key (often two concurrent "
    "requests creating the same row), a missing foreign key, or NULL in a NOT NULL column.",
    "make the write idempotent (get_or_create / ON CONFLICT inside a transaction) or validate before "
    "writing; for races, let the constraint decide and handle the error.",
    label="IntegrityError",
)
_entry(
    "DataError",
    DATABASE,
    "The database rejected a value: too long for its column, out of range, or not valid for its type.",
    "validate lengths and ranges before writing, or widen the column with a migration.",
)
_entry(
    "DoesNotExist ObjectDoesNotExist NoResultFound Http404",
    CODE_BUG,
    "A lookup expected exactly one row and found none (Model.objects.get on an id that was deleted, never "
    "existed, or belongs to another tenant).",
    "handle the missing row (get_object_or_404, .filter().first() with a None check) instead of assuming it exists.",
    label="DoesNotExist",
)
_entry(
    "MultipleObjectsReturned MultipleResultsFound",
    CODE_BUG,
    "A lookup expected exactly one row and found several: the filter is not unique, or duplicates were written.",
    "make the lookup use a unique key (and a unique constraint), or pick one row explicitly.",
)
_entry(
    "JSONDecodeError",
    DEPENDENCY,
    "Text that was expected to be JSON was not: usually another service answered with an HTML error "
    "page, an empty body or a truncated response, sometimes a corrupt file.",
    "check the response status and content type before decoding, and treat a non-JSON answer as a failure "
    "of that dependency.",
)
_entry(
    "UnicodeDecodeError UnicodeEncodeError UnicodeError",
    CODE_BUG,
    "Bytes were decoded (or text encoded) with the wrong character encoding: input that is not UTF-8, or "
    "a locale that defaults to ASCII.",
    "decode with the encoding the data really has (or errors='replace' for display), and set it explicitly.",
    label="UnicodeDecodeError",
)
_entry(
    "AssertionError",
    CODE_BUG,
    "An assert in the code failed: an invariant the author relied on does not hold for this input.",
    "find why the invariant broke; asserts are skipped under python -O, so real checks should raise a real error.",
)
_entry(
    "PermissionError",
    CONFIGURATION,
    "The process was not allowed to open a file, directory or port: wrong owner or mode after a deploy, a "
    "read-only file system, or a port below 1024.",
    "fix the ownership/permissions or the path in the service's configuration.",
)
_entry(
    "FileNotFoundError IsADirectoryError NotADirectoryError",
    CONFIGURATION,
    "A file or directory the code opens does not exist at that path: a missing volume or secret mount, a "
    "relative path resolved from another working directory, or a file not shipped with the release.",
    "fix the path (make it absolute or configurable) or ship/mount the file.",
    label="FileNotFoundError",
)
_entry(
    "ImproperlyConfigured",
    CONFIGURATION,
    "Django found its settings incomplete or inconsistent at start-up or first use.",
    "set the missing setting or environment variable named in the message and restart.",
)
_entry(
    "StopIteration",
    CODE_BUG,
    "next() was called on an exhausted iterator, typically next(x for x in items if ...) with no match.",
    "pass a default to next() or handle the no-match case.",
)
_entry(
    "OverflowError",
    CODE_BUG,
    "A number was too large for the operation (a float overflow, a timestamp out of range).",
    "validate the input range before computing with it.",
)
_entry(
    "NotImplementedError",
    CODE_BUG,
    "A code path that was never written was reached (an abstract method, an unhandled variant).",
    "implement the path or reject that input earlier with a clear error.",
)
_entry(
    "CalledProcessError",
    DEPENDENCY,
    "A subprocess the service runs exited with an error status.",
    "read the command's stderr; the failing tool or its input is where the fix is.",
)
_entry(
    "SSLError SSLCertVerificationError",
    CONFIGURATION,
    "A TLS handshake failed: an expired or untrusted certificate, a host name mismatch, or an outdated CA bundle.",
    "renew or fix the certificate, or update the CA bundle; never disable verification.",
)

# Message rules: (type pattern on the last dotted part, message pattern, explanation).
# Checked before the class table; the first match wins.
_STATEMENT_TIMEOUT = _ENTRIES["QueryCanceled"]
_DISK_FULL = Explanation(
    "No space left on device",
    RESOURCE,
    "A write failed because the file system is full (logs, temporary files, uploads or the database's volume).",
    "free space (rotate logs, delete temporary files) and add monitoring on disk usage; then find what grew.",
)
_TOO_MANY_FILES = Explanation(
    "Too many open files",
    RESOURCE,
    "The process hit its open-file limit: sockets or files are opened and not closed (a leak), or the "
    "limit is too low for the load.",
    "close what is opened (with-blocks, one shared HTTP session) and raise the limit only after that.",
)
_DB_CONNECTIONS = Explanation(
    "Database connection limit reached",
    DATABASE,
    "PostgreSQL refused a new connection because all its connection slots are in use: too many workers, "
    "leaked connections, or missing pooling.",
    "pool connections (pgbouncer or the driver's pool), lower per-process connections, and find leaks.",
)
_DB_UNREACHABLE = Explanation(
    "Database unreachable",
    DATABASE,
    "The database server could not be reached or dropped the connection: it is down, restarting, failing "
    "over, or the network path to it is broken.",
    "check the database's health and failover state; the service should retry the connection with backoff.",
)
_DEADLOCK = Explanation(
    "Database deadlock",
    DATABASE,
    "Two transactions waited on each other's locks and PostgreSQL aborted one of them.",
    "take locks in a consistent order, keep transactions short, and retry the aborted transaction.",
)
_NONE_ATTRIBUTE = Explanation(
    "AttributeError on None",
    CODE_BUG,
    "An attribute was read from None: a value that is normally an object was missing (a lookup that found "
    "nothing, an optional field, a function that returned without a value).",
    "handle the None case where the value is produced or before it is used.",
)
_NONE_TYPE = Explanation(
    "TypeError on None",
    CODE_BUG,
    "None was used as if it were a container, number or function ('NoneType' object is not subscriptable / "
    "iterable / callable, or an operand of arithmetic): an optional value was missing.",
    "handle the None case where the value is produced or before it is used.",
)
_OS_TIMEOUT = _ENTRIES["TimeoutError"]
_DB_CONNECT_TIMEOUT = Explanation(
    "Database connect timeout",
    DATABASE,
    "Opening a database connection took longer than the connect timeout: the server is overloaded, "
    "failing over, or unreachable from this host.",
    "check the database's health; keep a bounded connect_timeout so requests fail fast instead of hanging.",
)

_MESSAGE_RULES: list[tuple[re.Pattern, re.Pattern, Explanation]] = [
    (
        re.compile(r".*"),
        re.compile(r"canceling statement due to (?:statement|lock) timeout|statement timeout", re.I),
        _STATEMENT_TIMEOUT,
    ),
    (re.compile(r".*"), re.compile(r"deadlock detected", re.I), _DEADLOCK),
    (
        re.compile(r"OperationalError|InterfaceError|.*Connection.*"),
        re.compile(r"too many (?:clients|connections)|remaining connection slots are reserved", re.I),
        _DB_CONNECTIONS,
    ),
    (
        re.compile(r"OperationalError|InterfaceError"),
        re.compile(
            r"could not connect|connection (?:refused|timed out|to server)|server closed the connection"
            r"|connection already closed|terminating connection|the database system is (?:starting|shutting)",
            re.I,
        ),
        _DB_UNREACHABLE,
    ),
    (re.compile(r"OperationalError"), re.compile(r"timeout expired", re.I), _DB_CONNECT_TIMEOUT),
    (re.compile(r"OSError|IOError"), re.compile(r"No space left on device|\[Errno 28\]", re.I), _DISK_FULL),
    (re.compile(r".*"), re.compile(r"Too many open files|\[Errno 24\]", re.I), _TOO_MANY_FILES),
    (re.compile(r".*"), re.compile(r"\btimed out\b|\[Errno 110\]", re.I), _OS_TIMEOUT),
    (re.compile(r"AttributeError"), re.compile(r"'NoneType' object has no attribute"), _NONE_ATTRIBUTE),
    (re.compile(r"TypeError"), re.compile(r"'NoneType'"), _NONE_TYPE),
]


def short_type(exception_type: str) -> str:
    """The last dotted part of an exception type: `psycopg.errors.QueryCanceled` → `QueryCanceled`."""
    return (exception_type or "").strip().rsplit(".", 1)[-1]


def explain(exception_type: str, exception_value: str = "") -> Explanation:
    """What `exception_type` (with `exception_value`) means; a generic answer for unknown classes."""
    name = short_type(exception_type)
    value = exception_value or ""
    for type_pattern, message_pattern, explanation in _MESSAGE_RULES:
        if type_pattern.fullmatch(name) and message_pattern.search(value):
            return explanation
    if name in _ENTRIES:
        return _ENTRIES[name]
    if name.endswith(("Timeout", "TimeoutError")):
        return _ENTRIES["TimeoutError"]
    if name.endswith("ConnectionError"):
        return _ENTRIES["ConnectionError"]
    return Explanation(
        name or "Unknown error",
        CODE_BUG,
        f"The service raised {name or 'an exception'} and did not handle it; it is not one of the exception "
        "classes Quench knows, so the traceback and the message are the evidence.",
        "read the message and the culprit line; add handling (or validation) for the condition it names.",
        known=False,
    )


def is_timeout(exception_type: str, exception_value: str = "") -> bool:
    """True when the exception says that a call to another system ran out of time (not a database statement)."""
    return explain(exception_type, exception_value) in (_ENTRIES["TimeoutError"], _DB_CONNECT_TIMEOUT)

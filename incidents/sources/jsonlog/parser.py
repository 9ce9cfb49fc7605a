"""One JSON log record (one parsed line of a JSON-lines file) → a Signal, or None.

Reads the field names of the usual Python JSON loggers: python-json-logger
(`levelname`, `message`, `name`, `asctime`, `exc_info`), structlog (`level`, `event`,
`timestamp`, `exception` as text or as `dict_tracebacks` stacks), Elastic Common
Schema (`log.level`, `@timestamp`, `error.stack_trace`, `http.response.status_code`,
`url.path`, `service.name`, `trace.id`), nested or dotted. A record counts when its
level is ERROR or above (`count_error_levels`) or it logs an HTTP 5xx response
(`count_http_5xx`). Numeric levels are Python's (40 = ERROR, 50 = CRITICAL).

Mapping: kind error when the record carries an exception, else log; severity critical
for CRITICAL/FATAL records, else error; service from the record's own service /
service.name, else the log source's; title = the message's first line, else
"Type: value" of the exception, else "HTTP <status> <method> <path>"; labels carry
the logger name and the status code. A record time that cannot be read is left
empty (a log line is not a contract); a naive time is taken as UTC. source_id is left
empty: the tailer sets it from the raw line.
"""

from __future__ import annotations

from incidents.sources import _fields as f
from incidents.sources.base import Frame, Signal, SignalKind
from incidents.sources.traceback import format_python_traceback, module_for_filename, parse_python_traceback

SOURCE = "log"

ERROR_LEVEL = 40
_LEVEL_NUMBERS = {
    "trace": 5,
    "debug": 10,
    "info": 20,
    "information": 20,
    "notice": 25,
    "warn": 30,
    "warning": 30,
    "error": 40,
    "err": 40,
    "exception": 40,
    "critical": 50,
    "crit": 50,
    "fatal": 50,
    "alert": 50,
    "emergency": 50,
    "emerg": 50,
    "panic": 50,
}
LEVEL_KEYS = ("level", "levelname", "severity", "log.level", "lvl", "loglevel", "level_name", "levelno")
MESSAGE_KEYS = ("message", "msg", "event", "log.message")
LOGGER_KEYS = ("logger", "name", "logger_name", "log.logger")
TIME_KEYS = ("timestamp", "time", "@timestamp", "asctime", "ts", "datetime", "created")
EXCEPTION_KEYS = ("exc_info", "exception", "traceback", "stack_trace", "error.stack_trace", "exc_text", "stack")
STATUS_KEYS = (
    "status_code",
    "status",
    "http.response.status_code",
    "http_status",
    "response_status",
    "http.status_code",
)
PATH_KEYS = ("path", "request_path", "url.path", "http.path", "url", "request_url", "url.original", "http.url")
METHOD_KEYS = ("method", "http.request.method", "request_method", "http.method")
TRACE_KEYS = ("trace_id", "trace.id", "traceId", "otelTraceID", "dd.trace_id")
SERVICE_KEYS = ("service.name", "service", "service_name")
ENVIRONMENT_KEYS = ("environment", "env", "service.environment", "deployment.environment")


def parse_record(
    record: dict,
    *,
    service: str,
    environment: str,
    count_error_levels: bool,
    count_http_5xx: bool,
) -> Signal | None:
    """A Signal for a log record that counts (error level or 5xx), None for one that does not."""
    if not isinstance(record, dict):
        return None
    level_name, level_number = record_level(record)
    status_code = _status_code(record)
    is_error = count_error_levels and level_number >= ERROR_LEVEL
    is_5xx = count_http_5xx and status_code is not None and 500 <= status_code <= 599
    if not (is_error or is_5xx):
        return None

    exc_type, exc_value, frames, traceback = _exception(record)
    message = _first_text(record, MESSAGE_KEYS)
    method = _first_text(record, METHOD_KEYS).strip().upper()
    method = method if method in f.HTTP_METHODS else ""
    path = f.url_path(_first_text(record, PATH_KEYS))
    title = message.strip().split("\n", 1)[0].strip()
    if not title and exc_type:
        title = f"{exc_type}: {exc_value}" if exc_value else exc_type
    if not title and status_code is not None:
        title = " ".join(part for part in (f"HTTP {status_code}", method, path) if part)
    labels = {}
    logger_name = _first_text(record, LOGGER_KEYS)
    if logger_name:
        labels["logger"] = logger_name
    if status_code is not None:
        labels["status_code"] = str(status_code)
    return Signal(
        source=SOURCE,
        kind=SignalKind.ERROR if exc_type or frames or traceback else SignalKind.LOG,
        title=title,
        message=message,
        service=_first_text(record, SERVICE_KEYS).strip() or service,
        environment=_first_text(record, ENVIRONMENT_KEYS).strip() or environment,
        severity="critical" if level_number >= 50 else "error",
        labels=labels,
        exception_type=exc_type,
        exception_value=exc_value,
        frames=frames,
        traceback=traceback,
        path=path,
        method=method,
        trace_id=_first_text(record, TRACE_KEYS).strip(),
        occurred_at=_time(record),
        payload=record,
    )


def _get(record: dict, key: str) -> object:
    """record["a.b"], else record["a"]["b"]: ECS fields come both flattened and nested."""
    if key in record:
        return record[key]
    if "." not in key:
        return None
    value: object = record
    for part in key.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _first_text(record: dict, keys: tuple[str, ...]) -> str:
    for key in keys:
        value = _get(record, key)
        if isinstance(value, str) and value.strip():
            return value
    return ""


def record_level(record: dict) -> tuple[str, int]:
    for key in LEVEL_KEYS:
        value = _get(record, key)
        if isinstance(value, str) and value.strip():
            word = value.strip().lower()
            if word in _LEVEL_NUMBERS:
                return word, _LEVEL_NUMBERS[word]
            if word.isdigit():
                return word, int(word)
        elif isinstance(value, int | float) and not isinstance(value, bool) and value == value:
            return str(value), int(min(max(value, 0), 1000))
    return "", 0


def _status_code(record: dict) -> int | None:
    for key in STATUS_KEYS:
        value = _get(record, key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and 100 <= value <= 599:
            return value
        if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) == 3:
            number = int(value.strip())
            if 100 <= number <= 599:
                return number
    return None


def _time(record: dict):
    for key in TIME_KEYS:
        value = _get(record, key)
        if value is None or isinstance(value, bool):
            continue
        try:
            if isinstance(value, str):
                # logging's asctime writes a comma before the milliseconds.
                value = value.replace(",", ".", 1) if value.count(",") == 1 else value
            return f.parse_timestamp(value)
        except ValueError:
            continue
    return None


def _exception(record: dict) -> tuple[str, str, list[Frame], str]:
    """(type, value, frames, traceback text) from whichever exception field the record has."""
    for key in EXCEPTION_KEYS:
        value = _get(record, key)
        if isinstance(value, str) and value.strip():
            exc_type, exc_value, frames = parse_python_traceback(value)
            return exc_type, exc_value, frames, value
        if isinstance(value, list) and value and all(isinstance(stack, dict) for stack in value):
            return _structlog_stacks(value)
    error = _get(record, "error")
    if isinstance(error, dict) and isinstance(error.get("type"), str):
        # ECS error.type / error.message without a stack trace
        message = error.get("message")
        return error["type"], message if isinstance(message, str) else "", [], ""
    return "", "", [], ""


def _structlog_stacks(stacks: list[dict]) -> tuple[str, str, list[Frame], str]:
    """structlog's dict_tracebacks: stacks[0] is the exception raised, later ones its causes."""
    raised = stacks[0]
    exc_type = raised.get("exc_type") if isinstance(raised.get("exc_type"), str) else ""
    exc_value = raised.get("exc_value") if isinstance(raised.get("exc_value"), str) else ""
    frames = []
    raw_frames = raised.get("frames") if isinstance(raised.get("frames"), list) else []
    for raw in raw_frames:
        if not isinstance(raw, dict):
            continue
        filename = raw.get("filename") if isinstance(raw.get("filename"), str) else ""
        lineno = (
            raw.get("lineno")
            if isinstance(raw.get("lineno"), int) and not isinstance(raw.get("lineno"), bool)
            else None
        )
        if not filename and (lineno is None or lineno < 0):
            continue  # structlog's "Skipped frames: N" marker
        module, in_app = module_for_filename(filename)
        frames.append(
            Frame(
                module=module,
                function=raw.get("name") if isinstance(raw.get("name"), str) else "",
                filename=filename,
                lineno=lineno,
                in_app=in_app,
                context_line=raw.get("line").strip() if isinstance(raw.get("line"), str) else "",
            )
        )
    return exc_type, exc_value, frames, format_python_traceback(exc_type, exc_value, frames)

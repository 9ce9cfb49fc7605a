"""Small, shared pieces of payload validation for the source adapters.

Adapters collect every problem of a payload into one `Problems` mapping (field path →
what is wrong) so that a sender sees all its mistakes in one 400, not one per retry.
Readers take `(obj, key, path)` and return a clean value or a default, recording a
problem when the value is present but wrong. JSON `null` counts as absent for optional
fields: many senders (Sentry above all) write `null` for "nothing".
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from urllib.parse import urlsplit

from incidents.sources.base import PayloadError

MAX_SOURCE_ID = 255  # Event.source_id's column width
SEVERITIES = ("critical", "error", "warning", "info")
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})

# Words monitoring tools use for severity, mapped onto Quench's four. Sources with a
# free-form severity (Alertmanager labels) map unknown words to "" rather than fail.
_SEVERITY_WORDS = {
    "critical": "critical",
    "crit": "critical",
    "page": "critical",
    "p0": "critical",
    "p1": "critical",
    "fatal": "critical",
    "emergency": "critical",
    "emerg": "critical",
    "alert": "critical",
    "disaster": "critical",
    "error": "error",
    "err": "error",
    "high": "error",
    "major": "error",
    "p2": "error",
    "warning": "warning",
    "warn": "warning",
    "medium": "warning",
    "minor": "warning",
    "average": "warning",
    "p3": "warning",
    "info": "info",
    "informational": "info",
    "information": "info",
    "notice": "info",
    "low": "info",
    "none": "info",
    "debug": "info",
    "p4": "info",
    "p5": "info",
}


def normalize_severity(word: object) -> str:
    """critical/error/warning/info for a severity word a monitoring tool uses, "" when unknown."""
    if not isinstance(word, str):
        return ""
    return _SEVERITY_WORDS.get(word.strip().lower(), "")


class Problems:
    """Field path → problem, collected while reading one payload."""

    def __init__(self) -> None:
        self.detail: dict[str, str] = {}

    def add(self, path: str, problem: str) -> None:
        # The first problem of a field is the most useful one; later ones are consequences.
        self.detail.setdefault(path, problem)

    def __bool__(self) -> bool:
        return bool(self.detail)

    def raise_if_any(self, message: str) -> None:
        if self.detail:
            raise PayloadError(message, dict(self.detail))


def join(path: str, key: str | int) -> str:
    """`alerts[0].labels` style paths; the top level has no prefix."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def type_name(value: object) -> str:
    """The JSON name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def opt_str(obj: dict, key: str, path: str, problems: Problems, *, max_length: int | None = None) -> str:
    """An optional string field ("" when absent or null)."""
    value = obj.get(key)
    if value is None:
        return ""
    field_path = join(path, key)
    if not isinstance(value, str):
        problems.add(field_path, f"must be a string, not {type_name(value)}")
        return ""
    if max_length is not None and len(value) > max_length:
        problems.add(field_path, f"must be at most {max_length} characters (got {len(value)})")
        return ""
    return value


def req_str(obj: dict, key: str, path: str, problems: Problems, *, max_length: int | None = None) -> str:
    """A required, non-blank string field."""
    field_path = join(path, key)
    if obj.get(key) is None:
        problems.add(field_path, "is required")
        return ""
    value = opt_str(obj, key, path, problems, max_length=max_length)
    if field_path not in problems.detail and not value.strip():
        problems.add(field_path, "must not be empty")
    return value


def opt_dict(obj: dict, key: str, path: str, problems: Problems) -> dict:
    """An optional object field ({} when absent or null)."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(join(path, key), f"must be an object, not {type_name(value)}")
        return {}
    return value


def opt_list(obj: dict, key: str, path: str, problems: Problems) -> list:
    """An optional array field ([] when absent or null)."""
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add(join(path, key), f"must be an array, not {type_name(value)}")
        return []
    return value


def string_map(obj: dict, key: str, path: str, problems: Problems) -> dict[str, str]:
    """An object whose values must all be strings (Prometheus labels and annotations)."""
    mapping = opt_dict(obj, key, path, problems)
    result: dict[str, str] = {}
    for name, value in mapping.items():
        if isinstance(value, str):
            result[name] = value
        else:
            problems.add(join(join(path, key), name), f"must be a string, not {type_name(value)}")
    return result


def enum_str(obj: dict, key: str, path: str, problems: Problems, choices, *, required: bool, default: str = "") -> str:
    """A string field restricted to `choices` (compared case-insensitively, returned lower-case)."""
    field_path = join(path, key)
    value = obj.get(key)
    if value is None:
        if required:
            problems.add(field_path, "is required")
        return default
    if not isinstance(value, str) or value.strip().lower() not in choices:
        problems.add(field_path, f"must be one of {', '.join(choices)}")
        return default
    return value.strip().lower()


def parse_timestamp(value: object) -> datetime | None:
    """An aware datetime from ISO 8601 text or Unix seconds; None for Go's zero time.

    Naive text is taken as UTC. Raises ValueError for anything else, so that callers
    decide whether a bad time is a schema error (webhooks) or just unknown (log lines).
    """
    if isinstance(value, bool):
        raise ValueError("not a timestamp")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError("out of range") from None
    if not isinstance(value, str):
        raise ValueError("not a string")
    text = value.strip()
    if not text or len(text) > 64:
        raise ValueError("not an ISO 8601 timestamp")
    if text.startswith("0001-01-01"):
        # Go's zero time.Time: Alertmanager and Grafana send it as endsAt while firing.
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("out of range") from None


def opt_timestamp(
    obj: dict, key: str, path: str, problems: Problems, *, required: bool = False, epoch: bool = False
) -> datetime | None:
    """An optional (or required) timestamp field, recorded as a problem when unparsable.

    A number (Unix seconds) is accepted only where the source's documentation allows one
    (`epoch=True`: Sentry's event timestamp); elsewhere the format documents a string,
    and a number is a sender's mistake worth telling it about.
    """
    value = obj.get(key)
    field_path = join(path, key)
    if value is None:
        if required:
            problems.add(field_path, "is required")
        return None
    if not epoch and isinstance(value, int | float) and not isinstance(value, bool):
        problems.add(field_path, "must be an ISO 8601 timestamp string, e.g. 2024-05-01T12:00:00Z, not a number")
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        problems.add(field_path, "must be an ISO 8601 timestamp, e.g. 2024-05-01T12:00:00Z")
        return None


def canonical_sha256(value: object) -> str:
    """Hex SHA-256 of a value's canonical JSON (sorted keys, no spaces, ASCII escapes).

    ASCII escaping makes any string hashable, lone surrogates included.
    """
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def bounded_source_id(source_id: str) -> str:
    """The id itself when it fits the column, else its hash: truncation could make two ids collide."""
    if len(source_id) <= MAX_SOURCE_ID:
        return source_id
    return hashlib.sha256(source_id.encode("utf-8", "surrogatepass")).hexdigest()


def url_path(url: object) -> str:
    """The path of a URL (no scheme, host, query or fragment); a bare path is returned as is."""
    if not isinstance(url, str) or not url:
        return ""
    try:
        path = urlsplit(url.strip()).path
    except ValueError:
        return ""
    return path

"""Reading JSON from the outside world into values PostgreSQL can store, or a clear PayloadError.

Python's `json` accepts what JSON does not (NaN, Infinity) and what PostgreSQL cannot
keep (a float that overflowed to infinity, NUL characters, lone UTF-16 surrogates, values
nested thousands deep). Every ingest endpoint reads its body through `load_json`, so none
of that reaches a jsonb column as a 500 or a half-stored request:

- `NaN`, `Infinity`, `-Infinity` and numbers that overflow a double (`1e400`) → 400;
- integers beyond 64 bits → 400 (no source documents one, and they cannot reach an
  integer column or a JavaScript reader intact);
- nesting deeper than `MAX_DEPTH` → 400;
- NUL characters and lone surrogates in strings become U+FFFD: the rest of the text is
  worth keeping, and a sender cannot fix its log lines on our behalf.
"""

from __future__ import annotations

import json
import math
import re

from incidents.sources.base import PayloadError

MAX_DEPTH = 64
MAX_INTEGER = 2**64  # unsigned 64-bit ids (Sentry thread ids, ...) fit; anything bigger is not a real value
_NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


def load_json(body: bytes) -> object:
    """Parse a JSON body into storable values; PayloadError naming the problem otherwise."""
    if not body.strip():
        raise PayloadError("Empty body: send a JSON document.", {"body": "empty"})
    escaped = b"\\u" in body
    if escaped:
        body = _NUL_ESCAPE.sub(rb"\1\\ufffd", body)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("Body is not UTF-8.", {"body": "not valid UTF-8"}) from None
    if "\x00" in text:
        raise PayloadError("Body contains a NUL byte.", {"body": "NUL bytes are not allowed"})
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise PayloadError("Malformed JSON.", {"body": f"{exc.msg} at line {exc.lineno} column {exc.colno}"}) from None
    except RecursionError:
        # `[[[[...` a hundred thousand deep overflows the parser's stack: bad input, not a 500.
        raise PayloadError(
            f"JSON nested too deeply (at most {MAX_DEPTH} levels).", {"body": "nested too deeply"}
        ) from None
    _check_depth(value)
    return _storable(value) if escaped else value


def _reject_constant(name: str):
    raise PayloadError(
        f"JSON contains {name}, which is not a JSON number.",
        {"body": f"non-finite number {name}: send a finite number, or a string"},
    )


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise PayloadError(
            f"JSON number {shown} is out of range.", {"body": f"number {shown} does not fit a 64-bit float"}
        )
    return number


def _bounded_int(text: str) -> int:
    digits = text.lstrip("-")
    number = int(text) if len(digits) <= 40 else None
    if number is None or abs(number) > MAX_INTEGER:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise PayloadError(f"JSON integer {shown} is out of range.", {"body": f"integer {shown} does not fit 64 bits"})
    return number


def _check_depth(value: object) -> None:
    # Iterative, so a deep value cannot overflow our own stack either.
    stack = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict):
            children = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        if depth > MAX_DEPTH:
            raise PayloadError(f"JSON nested too deeply (at most {MAX_DEPTH} levels).", {"body": "nested too deeply"})
        stack.extend((child, depth + 1) for child in children)


def _storable(value):
    if isinstance(value, str):
        return (
            "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in value)
            if _has_surrogate(value)
            else value
        )
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False

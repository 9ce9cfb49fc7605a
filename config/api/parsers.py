"""The API's JSON parser: DRF's, minus what Python's json module lets through.

Python reads `1e400` as infinity (PostgreSQL then refuses it, or a float field stores
nonsense) and overflows its stack on `[[[[...` nested a hundred thousand deep; both are bad
input, so both are a 400 naming the body, like NaN and Infinity already are.
"""

from __future__ import annotations

import codecs
import json
import math

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
            return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
        except RecursionError:
            raise ParseError("JSON nested too deeply.") from None
        except ValueError as exc:  # also UnicodeDecodeError and over-long integers
            raise ParseError(f"JSON parse error - {exc}") from None

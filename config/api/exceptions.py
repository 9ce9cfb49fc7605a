"""One place that maps errors to HTTP answers: `{"error": "...", "detail": {...}}`.

Apps add their own domain errors with `register_domain_error` from `AppConfig.ready()`
(incidents: a payload that does not match its source's schema is a 400, a refused state
change a 409), so this module knows no app.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

# exception → (status code, message, detail)
DomainErrorAnswer = Callable[[Exception], tuple[int, str, dict]]
_domain_errors: dict[type[Exception], DomainErrorAnswer] = {}


def register_domain_error(exception_class: type[Exception], answer: DomainErrorAnswer) -> None:
    """Answer `exception_class` (and its subclasses) raised by a view with `answer(exc)`.

    Registering the same class again replaces the answer, so a second `ready()` is harmless.
    """
    _domain_errors[exception_class] = answer


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


class ApiErrorSerializer(serializers.Serializer):
    """The body of every error answer (documents it in the OpenAPI schema)."""

    error = serializers.CharField(help_text="What went wrong, in a sentence.")
    detail = serializers.DictField(
        child=serializers.CharField(), help_text="Field (or `body`, `__all__`) → its problem; may be empty."
    )


def error_response(message: str, detail: dict | None = None, *, status_code: int = 400, headers=None) -> Response:
    return Response({"error": message, "detail": detail or {}}, status=status_code, headers=headers)


def _flatten(detail, prefix: str = "") -> dict[str, str]:
    if isinstance(detail, dict):
        flat: dict[str, str] = {}
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors":
                name = prefix or "__all__"
            flat.update(_flatten(value, name))
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "__all__": " ".join(str(item) for item in detail)}
        flat = {}
        for index, item in enumerate(detail):
            flat.update(_flatten(item, f"{prefix}[{index}]"))
        return flat
    return {prefix or "__all__": str(detail)}


def _domain_answer(exc: Exception) -> DomainErrorAnswer | None:
    for klass in type(exc).__mro__:
        if klass in _domain_errors:
            return _domain_errors[klass]
    return None


def exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every API error in the `{"error", "detail"}` shape."""
    if answer := _domain_answer(exc):
        status_code, message, detail = answer(exc)
        return error_response(message, detail, status_code=status_code)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": " ".join(exc.messages)}
        return error_response("Invalid input.", _flatten(detail))
    if isinstance(exc, Http404):
        return error_response("Not found.", status_code=404)
    if isinstance(exc, DjangoPermissionDenied):  # a service refusing a user: its message says what is missing
        return error_response(str(exc) or "You do not have permission to do this.", status_code=403)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: Django's 500 handling and logging take over
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"error": "Invalid input.", "detail": _flatten(exc.detail)}
    elif isinstance(exc, exceptions.ParseError):
        response.data = {"error": "Malformed JSON.", "detail": {"body": str(exc.detail)}}
    else:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        response.data = {"error": str(message), "detail": {}}
    return response

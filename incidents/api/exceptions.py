"""One place that maps errors to HTTP answers: `{"error": "...", "detail": {...}}`."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from incidents.services.lifecycle import TransitionRefused
from incidents.sources.base import PayloadError

logger = logging.getLogger(__name__)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


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


def exception_handler(exc, context):
    if isinstance(exc, PayloadError):
        return error_response(exc.message, exc.detail)
    if isinstance(exc, TransitionRefused):
        return error_response(exc.message, {"status": exc.current_status}, status_code=409)
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

"""The OpenAPI schema's AutoSchema: every operation documents the error answers it can give.

drf-spectacular documents the success answer of a view; the 4xx answers that the project-wide
plumbing gives to every view (bad input, no or wrong credentials, unknown ids, wrong content
type) would otherwise be missing, and a client generated from the schema (or the fuzzing in
tests/test_api_fuzz.py) would meet undocumented status codes.
"""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist
from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from config.api.exceptions import ApiErrorSerializer

ERROR_DESCRIPTIONS = {
    "400": "Invalid input: `detail` names each field and its problem.",
    "401": "No or wrong credentials.",
    "403": "Authenticated, but not allowed to do this.",
    "404": "No such object (or page).",
    "415": "The body is not JSON.",
}


class AutoSchema(openapi.AutoSchema):
    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        # DRF drops `allow_blank` from read-only model fields, so a blank choice (a diagnosis
        # not finished yet has no risk level) would be documented as impossible.
        if (
            isinstance(field, serializers.ChoiceField)
            and field.read_only
            and "" not in schema.get("enum", [""])
            and _model_field_allows_blank(field)
        ):
            schema["enum"] = [*schema["enum"], ""]
        # Likewise an empty URL (no pull request yet) is not a "uri": say it may be empty.
        if field.read_only and schema.get("format") in ("uri", "email") and _model_field_allows_blank(field):
            shape = {"type": schema.pop("type"), "format": schema.pop("format")}
            schema["anyOf"] = [shape, {"type": "string", "maxLength": 0}]
        return schema

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in self._error_codes():
            if code not in responses:
                error = OpenApiResponse(ApiErrorSerializer, description=ERROR_DESCRIPTIONS[code])
                responses[code] = self._get_response_for_code(error, code, direction=direction)
        return dict(sorted(responses.items()))

    def _error_codes(self) -> list[str]:
        codes = []
        takes_body = self.method in ("POST", "PUT", "PATCH")
        parameters = self._get_parameters()
        if takes_body or parameters:
            codes.append("400")
        if self.view.get_authenticators() and not all(
            isinstance(permission, AllowAny) for permission in self.view.get_permissions()
        ):
            codes += ["401", "403"]
        if any(parameter["in"] == "path" for parameter in parameters) or (
            self._is_list_view() and self._get_paginator() is not None
        ):
            codes.append("404")
        if takes_body:
            codes.append("415")
        return codes


def _model_field_allows_blank(field) -> bool:
    model = getattr(getattr(field.parent, "Meta", None), "model", None)
    if model is None or not field.source or "." in field.source:
        return False
    try:
        return model._meta.get_field(field.source).blank
    except FieldDoesNotExist:
        return False

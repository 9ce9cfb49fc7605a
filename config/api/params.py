"""Query-string filters of list endpoints: a value given but not valid, empty included, is a 400 naming it."""

from __future__ import annotations

from rest_framework.exceptions import ValidationError


def id_param(request, name: str) -> int | None:
    """The id in `?name=`, None when the parameter is absent; present but not an id (`?incident=`) is a 400."""
    if name not in request.query_params:
        return None
    value = request.query_params[name]
    if not value.isdigit() or len(value) > 18:
        raise ValidationError({name: "Must be an id (a positive integer)."})
    return int(value)


def choice_param(request, name: str, choices) -> str | None:
    """The value of `?name=`, None when absent; present but not one of `choices` (empty too) is a 400."""
    value = request.query_params.get(name)
    if value is None:
        return None
    if value not in choices:
        raise ValidationError({name: f"Must be one of: {', '.join(choices)} (or leave `{name}` out)."})
    return value

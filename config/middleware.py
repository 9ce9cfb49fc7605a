"""Middleware of the whole site (API and admin)."""

from __future__ import annotations

from django.http import HttpResponseBadRequest

from config.api.errors import is_api, json_error


class RefuseNulInQueryString:
    """A 400 for a query string with a NUL character (`?service=%00`), before any view sees it.

    PostgreSQL cannot hold NUL in text, so a filter or search carrying one would reach the
    database and come back as a 500; no legitimate client sends one.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        bad = sorted({name for name, values in request.GET.lists() for value in [name, *values] if "\x00" in value})
        if bad:
            if is_api(request):
                detail = {name.replace("\x00", "\\u0000"): "contains a NUL character" for name in bad}
                return json_error("Query parameters cannot contain NUL characters.", detail, status=400)
            return HttpResponseBadRequest("Query parameters cannot contain NUL characters.", content_type="text/plain")
        return self.get_response(request)

"""Sentry SDK authentication: the DSN's public key names the integration, the DSN's project id must match it.

An SDK sends the key in clear with every request (`X-Sentry-Auth`, `?sentry_key=`, or the
envelope header `dsn`), so the key only says where events go; it is not the integration
token, which is never sent by SDKs and is stored hashed.
"""

from __future__ import annotations

from incidents.choices import IntegrationKind
from incidents.models import Integration
from incidents.sources.sentry.envelope import auth_key, dsn_key


def public_key_from_headers(request) -> str:
    """The DSN public key sent in the request's headers or query string; "" when none was."""
    for header in ("HTTP_X_SENTRY_AUTH", "HTTP_AUTHORIZATION"):
        value = request.META.get(header, "")
        if value:
            key = auth_key(value)
            if key:
                return key
    return request.GET.get("sentry_key", "").strip()


def public_key_from_envelope(envelope_headers: dict) -> str:
    """The public key of the envelope header's `dsn` (browser SDKs and relays send it there)."""
    return dsn_key(envelope_headers.get("dsn"))


def integration_for_public_key(public_key: str) -> Integration | None:
    """The enabled Sentry integration with this DSN public key, or None."""
    if not public_key or len(public_key) > 64:
        return None
    integration = Integration.objects.filter(public_key=public_key, kind=IntegrationKind.SENTRY, enabled=True).first()
    if integration is not None:
        integration.touch()
    return integration

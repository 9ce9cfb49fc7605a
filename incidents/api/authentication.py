"""Per-integration token authentication for the ingestion endpoints."""

from __future__ import annotations

import time

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from incidents.models import Integration, hash_token

# Token look-ups happen on every webhook; a short in-process cache keeps them cheap.
# A disabled or rotated integration stops working within this many seconds.
TOKEN_CACHE_SECONDS = 5.0
_token_cache: dict[str, tuple[float, Integration | None]] = {}


class IntegrationPrincipal:
    """The authenticated "user" of an ingestion request: the integration itself."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, integration: Integration):
        self.integration = integration
        self.pk = None
        self.username = f"integration:{integration.name}"

    def __str__(self) -> str:
        return self.username


def integration_for_token(raw_token: str) -> Integration | None:
    """The enabled integration that owns this token, or None."""
    if not raw_token:
        return None
    digest = hash_token(raw_token)
    now = time.monotonic()
    cached = _token_cache.get(digest)
    if cached and now - cached[0] < TOKEN_CACHE_SECONDS:
        integration = cached[1]
    else:
        integration = Integration.objects.filter(token_hash=digest).first()
        if len(_token_cache) > 10_000:
            _token_cache.clear()
        _token_cache[digest] = (now, integration)
    if integration is None or not integration.enabled:
        return None
    integration.touch()
    return integration


def clear_token_cache() -> None:
    _token_cache.clear()


def token_from_request(request) -> str:
    """Authorization: Bearer <token> (or Token <token>), X-Quench-Token, or ?token= for senders that can't set headers."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() in {"bearer", "token"} and value.strip():
            return value.strip()
    return request.META.get("HTTP_X_QUENCH_TOKEN", "").strip() or request.GET.get("token", "").strip()


class IntegrationTokenAuthentication(authentication.BaseAuthentication):
    """Authenticates with an integration token; unknown or disabled tokens are a 401."""

    def authenticate(self, request):
        raw = token_from_request(request)
        if not raw:
            return None
        integration = integration_for_token(raw)
        if integration is None:
            raise exceptions.AuthenticationFailed("Unknown or disabled integration token.")
        return IntegrationPrincipal(integration), integration

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="quench"'


class IntegrationTokenScheme(OpenApiAuthenticationExtension):
    target_class = "incidents.api.authentication.IntegrationTokenAuthentication"
    name = "integrationToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An integration token (`qk_...`): `Authorization: Bearer <token>`, the `X-Quench-Token` "
            "header, or `?token=<token>` for senders that cannot set headers.",
        }

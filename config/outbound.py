"""The one way Quench makes outbound HTTP requests (health checks, playbook steps, webhooks).

Every call has a timeout, a capped response body, no redirects to follow blindly, and a
guard against private addresses: a URL whose host resolves to a loopback, private,
link-local, multicast or reserved address is refused unless the caller allows it (an
operator-configured health check or playbook step targets internal hosts on purpose)
or QUENCH_ALLOW_PRIVATE_WEBHOOKS is set. Tests fake nothing here: they run local servers.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from django.conf import settings

MAX_BODY_BYTES = 64 * 1024
USER_AGENT = "Quench/1.0 (+incident autopilot)"


class OutboundError(Exception):
    """The request could not be made or did not complete; the message says why (no secrets)."""


class OutboundRefused(OutboundError):
    """Not attempted: not an http(s) URL, or a private address without permission (retrying cannot help)."""


@dataclass(frozen=True)
class OutboundResponse:
    status_code: int
    text: str  # the body, cut at MAX_BODY_BYTES
    elapsed_ms: int
    # Response headers, names lower-cased (notifications read Retry-After from a 429).
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


def _private_address(host: str, port: int) -> str | None:
    """The first non-public address `host` resolves to, or None when all are public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OutboundError(f"Cannot resolve {host}: {exc.strerror or exc}.") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global:
            return str(address)
    return None


def request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    json: object = None,
    content: bytes | str | None = None,
    timeout: float = 10.0,
    allow_private: bool = False,
    secret_path: bool = False,
) -> OutboundResponse:
    """Make one HTTP request and return its status and (capped) body; OutboundError when it fails.

    `secret_path`: the URL's path carries a secret (a Telegram bot token, a webhook key), so
    error messages name only the scheme and host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundRefused("Not an http(s) URL." if secret_path else f"Not an http(s) URL: {url[:200]!r}.")
    if not (allow_private or getattr(settings, "QUENCH_ALLOW_PRIVATE_WEBHOOKS", False)):
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if (address := _private_address(parts.hostname, port)) is not None:
            raise OutboundRefused(
                f"Refused: {parts.hostname} resolves to the private address {address} "
                "(set QUENCH_ALLOW_PRIVATE_WEBHOOKS=true to allow internal targets)."
            )
    shown = f"{method.upper()} {parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
    if not secret_path:
        shown += parts.path
    started = time.monotonic()
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, headers={"User-Agent": USER_AGENT}) as client,
            client.stream(method.upper(), url, headers=headers, json=json, content=content) as response,
        ):
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) >= MAX_BODY_BYTES:
                    body = body[:MAX_BODY_BYTES]
                    break
            text = body.decode(response.encoding or "utf-8", errors="replace")
            return OutboundResponse(
                response.status_code,
                text,
                int((time.monotonic() - started) * 1000),
                {name.lower(): value for name, value in response.headers.items()},
            )
    except httpx.TimeoutException:
        raise OutboundError(f"{shown} timed out after {timeout:g} s.") from None
    except httpx.HTTPError as exc:
        detail = str(exc).replace(url, "the URL")
        if secret_path and parts.path:
            detail = detail.replace(parts.path, "/…")
        detail = detail[:300] or type(exc).__name__
        raise OutboundError(f"{shown} failed: {detail}") from None

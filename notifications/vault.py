"""Channel secrets at rest: encrypted with Fernet (AES-128-CBC + HMAC-SHA256), or named env variables.

A secret in a channel's `config` is stored as one of
- `{"env": "NAME"}`: read from the environment variable NAME when a message is sent
  (nothing secret in the database at all), or
- `{"encrypted": "<Fernet token>"}`: typed into the admin and encrypted on save.

The key is QUENCH_NOTIFICATIONS_KEY (a Fernet key) or, when that is empty, one derived from
SECRET_KEY, so a fresh install works without another setting; rotating SECRET_KEY then
makes stored secrets unreadable (they must be typed again), which the error says.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

MASK = "********"
ENV_PREFIX = "env:"


class SecretUnavailable(Exception):
    """A secret cannot be read (variable unset, key changed); the message says which and why."""


def _fernet() -> Fernet:
    key = getattr(settings, "QUENCH_NOTIFICATIONS_KEY", "")
    if not key:
        digest = hashlib.sha256(f"quench.notifications:{settings.SECRET_KEY}".encode()).digest()
        key = base64.urlsafe_b64encode(digest).decode()
    return Fernet(key.encode() if isinstance(key, str) else key)


def encrypt(plain: str) -> dict:
    """The stored form of a secret typed into the admin."""
    return {"encrypted": _fernet().encrypt(plain.encode()).decode()}


def stored_form(value) -> dict | None:
    """What to store for a submitted secret value: "env:NAME" → a reference, text → encrypted.

    A value already in stored form is kept; an empty one means "no secret" (None).
    """
    if isinstance(value, dict) and (set(value) == {"env"} or set(value) == {"encrypted"}):
        return value
    if value in (None, ""):
        return None
    text = str(value).strip()
    if text.startswith(ENV_PREFIX):
        return {"env": text[len(ENV_PREFIX) :].strip()}
    return encrypt(text)


def reveal(stored, *, name: str) -> str:
    """The plain secret of a stored value, for the transport only; SecretUnavailable when unreadable."""
    if not isinstance(stored, dict):
        raise SecretUnavailable(f"The secret “{name}” is not set.")
    if "env" in stored:
        variable = stored["env"]
        plain = os.environ.get(variable, "")
        if not plain:
            raise SecretUnavailable(f"The environment variable {variable} (secret “{name}”) is not set.")
        return plain
    try:
        return _fernet().decrypt(stored["encrypted"].encode()).decode()
    except (InvalidToken, KeyError, AttributeError, ValueError):
        raise SecretUnavailable(
            f"The stored secret “{name}” cannot be decrypted (QUENCH_NOTIFICATIONS_KEY or SECRET_KEY changed?); "
            "type it again in the channel."
        ) from None


def masked(stored) -> str:
    """How a stored secret is shown: its env reference, or a mask (never the value or its ciphertext)."""
    if isinstance(stored, dict) and "env" in stored:
        return f"{ENV_PREFIX}{stored['env']}"
    return MASK if stored else ""

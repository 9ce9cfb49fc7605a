"""Signed action links in messages: acknowledge an incident, approve a proposal.

A link carries `{"action", "id", "nonce"}` signed with SECRET_KEY under its own salt
(`django.core.signing`), expires after QUENCH_ACTION_LINK_TTL_HOURS and is single-use: using
it records the token's SHA-256 digest (`UsedActionLink`, unique). Opening it only shows an
admin confirmation page (login and the permission required); the change is a POST with a
CSRF token, and it is done by the owning app's service (`acknowledge_incident`, `approve`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "quench.notifications.action-link"
ACKNOWLEDGE = "acknowledge"
APPROVE = "approve"
ACTIONS = (ACKNOWLEDGE, APPROVE)


class LinkInvalid(Exception):
    """The link is forged, damaged, expired or already used; the message says which."""


@dataclass(frozen=True)
class ActionLink:
    action: str
    object_id: int
    token: str

    @property
    def digest(self) -> str:
        return token_digest(self.token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def make_token(action: str, object_id: int) -> str:
    """A fresh signed token for one action on one object (a new nonce each time)."""
    if action not in ACTIONS:
        raise ValueError(f"Unknown action {action!r}.")
    return signing.dumps({"a": action, "id": int(object_id), "n": secrets.token_urlsafe(8)}, salt=SALT, compress=True)


def action_url(action: str, object_id: int) -> str:
    """The absolute URL of a fresh action link (what messages carry)."""
    return settings.SITE_URL + reverse("notifications_action", args=[make_token(action, object_id)])


def read_token(token: str) -> ActionLink:
    """The action a token grants, or LinkInvalid (bad signature, expired)."""
    max_age = settings.QUENCH_ACTION_LINK_TTL_HOURS * 3600
    try:
        payload = signing.loads(token, salt=SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise LinkInvalid(
            f"This link has expired (links are valid for {settings.QUENCH_ACTION_LINK_TTL_HOURS} hours)."
        ) from None
    except signing.BadSignature:
        raise LinkInvalid("This link is not valid (damaged or not made by this Quench).") from None
    if not isinstance(payload, dict) or payload.get("a") not in ACTIONS or not isinstance(payload.get("id"), int):
        raise LinkInvalid("This link is not valid.")
    return ActionLink(payload["a"], payload["id"], token)

"""A small newsletter job that crashes for the demo, reported by the real Sentry SDK.

Its code is plain on purpose: the traceback Quench stores (chain, frames, source lines,
locals) is what a team would see from their own service.
"""

from __future__ import annotations


class DeliveryError(Exception):
    """The newsletter could not be sent to a subscriber."""


def render_greeting(subscriber: dict) -> str:
    first_name = subscriber["profile"]["first_name"]
    return f"Hello {first_name}, here is this week's news."


def send_newsletter(subscriber: dict) -> str:
    try:
        return render_greeting(subscriber)
    except KeyError as exc:
        raise DeliveryError(f"newsletter for subscriber {subscriber['id']} could not be rendered") from exc


SUBSCRIBER_WITHOUT_PROFILE = {"id": 4711, "email": "reader@example.com", "profile": {}}

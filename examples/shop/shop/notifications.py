"""Outgoing e-mail. Production hands messages to the mail relay; here they wait in `outbox`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EmailMessage:
    to: str
    subject: str
    body: str


outbox: list[EmailMessage] = []


def send_email(to: str, subject: str, body: str) -> EmailMessage:
    """Queue one message for the relay."""
    if "@" not in to:
        raise ValueError(f"not an e-mail address: {to!r}")
    message = EmailMessage(to, subject, body)
    outbox.append(message)
    return message

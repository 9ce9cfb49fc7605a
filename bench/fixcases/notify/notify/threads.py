"""The customer portal's inbox: one line per conversation."""

from __future__ import annotations


def latest_message(messages: list[dict]) -> dict | None:
    """The newest message of a thread, or None for a thread without messages yet."""
    return messages[-1]


def preview(thread: dict) -> str:
    """The inbox line of a thread: its subject and the start of the latest message."""
    latest = latest_message(thread["messages"])
    if latest is None:
        return f"{thread['subject']} (no messages yet)"
    return f"{thread['subject']}: {latest['text'][:40]}"


def inbox(threads: list[dict]) -> list[str]:
    """The inbox lines, newest thread first (the portal sends them in that order)."""
    return [preview(thread) for thread in threads]

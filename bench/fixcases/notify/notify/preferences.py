"""What each user chose about notifications."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_FREQUENCY = "weekly"


@dataclass(frozen=True)
class Preferences:
    user_id: int
    frequency: str  # daily, weekly or never


SAVED: dict[int, Preferences] = {
    1: Preferences(1, "daily"),
    2: Preferences(2, "never"),
}


def load_preferences(user_id: int) -> Preferences | None:
    """The user's saved preferences, or None when they never saved any."""
    return SAVED.get(user_id)


def digest_frequency(user_id: int) -> str:
    """How often the user gets the digest: what they chose, else DEFAULT_FREQUENCY."""
    return load_preferences(user_id).frequency

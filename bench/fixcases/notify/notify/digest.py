"""The nightly digest job: who gets a digest, grouped by how often."""

from __future__ import annotations

from notify.preferences import digest_frequency


def plan_digests(user_ids: list[int]) -> dict[str, list[int]]:
    """The users of tonight's run, grouped by digest frequency ("never" included, so it can be audited)."""
    plan: dict[str, list[int]] = {}
    for user_id in user_ids:
        plan.setdefault(digest_frequency(user_id), []).append(user_id)
    return plan

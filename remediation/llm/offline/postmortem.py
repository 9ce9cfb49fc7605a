"""The offline analyzer's postmortem narrative: a plain story and recommendations from the facts alone.

Deterministic and local, so postmortems get a readable summary with no API key; what it
says is derived only from the facts it is given (the draft still marks it as generated).
"""

from __future__ import annotations

from incidents.postmortems import SLOW_ACKNOWLEDGEMENT_MINUTES
from remediation.llm.base import PostmortemNarrative


def _duration(seconds: int | None) -> str:
    if not seconds:
        return "a short while"
    minutes = max(1, int(seconds) // 60)
    if minutes < 120:
        return f"{minutes} minutes"
    hours = minutes / 60
    return f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.0f} days"


def postmortem_narrative(facts: dict) -> PostmortemNarrative:
    """Summary and recommendations for a postmortem, from its facts."""
    incident = facts["incident"]
    service = incident.get("service") or "an unnamed service"
    customers = facts.get("affected_customers") or []
    resolution = facts.get("resolution") or {}
    root_cause = facts.get("root_cause")
    story = [
        f"{incident['title']} affected {service}"
        + (f" in {incident['environment']}" if incident.get("environment") else "")
        + f" for {_duration(facts.get('duration_seconds'))}, with {facts.get('events', 0)} event(s) received."
    ]
    if customers:
        story.append(f"{len(customers)} customer(s) reported the problem while it lasted.")
    if root_cause:
        story.append(f"Cause ({root_cause.get('source') or 'recorded'}): {root_cause['text'].strip().rstrip('.')}.")
    else:
        story.append("No root cause was recorded.")
    kind = resolution.get("kind")
    story.append(
        {
            "code_fix": "A code fix proposed by Quench was approved and published"
            + (f" ({resolution['pull_request_url']})" if resolution.get("pull_request_url") else "")
            + ".",
            "playbook": f"The playbook “{resolution.get('playbook', '')}” was run to restore the service.",
            "human": f"It was resolved by {resolution.get('by') or 'an engineer'}.",
            "source": "The monitoring source reported it resolved.",
        }.get(kind, "It is not resolved yet.")
    )
    if facts.get("regressions"):
        story.append(f"It came back {facts['regressions']} time(s) after being resolved.")

    recommendations = []
    if incident.get("exception_type"):
        where = f" in {incident['culprit']}" if incident.get("culprit") else ""
        recommendations.append(
            f"Keep a regression test that replays the input that raised {incident['exception_type']}{where}."
        )
    if kind in ("human", "source", None) and not root_cause:
        recommendations.append("Write down what was done to resolve it, so the next responder can repeat it.")
    if kind == "playbook":
        recommendations.append("Remove the need for the playbook by fixing the underlying cause.")
    if customers:
        recommendations.append("Alert on this failure before customers notice it: customers reported it first.")
    seconds = facts.get("time_to_acknowledge_seconds")
    if seconds is None or seconds > SLOW_ACKNOWLEDGEMENT_MINUTES * 60:
        recommendations.append("Check that the alert pages the on-call engineer promptly.")
    if facts.get("regressions"):
        recommendations.append("Verify fixes over a longer quiet window before resolving.")
    if not recommendations:
        recommendations.append("No change needed beyond the follow-ups listed.")
    return PostmortemNarrative(summary=" ".join(story), recommendations=recommendations)

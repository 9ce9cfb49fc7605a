"""Handing incidents work to django-q2: one function per task, primary keys only (see remediation/queue.py).

Task names are deterministic so a doubled enqueue is easy to spot; the tasks are idempotent.
"""

from __future__ import annotations

from django_q import tasks as django_q_tasks


def enqueue_postmortem_draft(incident_id: int, *, actor: str = "quench", redraft: bool = False) -> None:
    django_q_tasks.async_task(
        "incidents.tasks.draft_postmortem",
        incident_id,
        actor,
        redraft,
        task_name=f"postmortem-{incident_id}",
        group="postmortems",
    )

"""Handing notification work to django-q2: primary keys only, deterministic task names.

A doubled enqueue is harmless: the task claims its row with a conditional update first.
"""

from __future__ import annotations

from django_q import tasks as django_q_tasks


def enqueue_delivery(notification_id: int) -> None:
    django_q_tasks.async_task(
        "notifications.tasks.deliver_notification",
        notification_id,
        task_name=f"notify-{notification_id}",
        group="notifications",
    )

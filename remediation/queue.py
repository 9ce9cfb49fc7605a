"""Handing remediation work to django-q2: one function per task, primary keys only.

Task names are deterministic (`diagnosis-7`, `fix-7-2`, `execute-3`), which makes a
redelivered or doubled enqueue easy to spot in the admin; the tasks themselves are
idempotent, so a second delivery is harmless. Tasks are named by dotted path, so this
module imports none of the code they run.
"""

from __future__ import annotations

from django_q import tasks as django_q_tasks


def enqueue_diagnosis(diagnosis_id: int) -> None:
    django_q_tasks.async_task(
        "remediation.tasks.run_diagnosis", diagnosis_id, task_name=f"diagnosis-{diagnosis_id}", group="diagnosis"
    )


def enqueue_fix_attempt(diagnosis_id: int, number: int) -> None:
    django_q_tasks.async_task(
        "remediation.tasks.run_fix_attempt",
        diagnosis_id,
        number,
        task_name=f"fix-{diagnosis_id}-{number}",
        group="diagnosis",
    )


def enqueue_execution(execution_id: int) -> None:
    django_q_tasks.async_task(
        "remediation.tasks.run_execution", execution_id, task_name=f"execute-{execution_id}", group="execution"
    )


def enqueue_auto_approval(approval_id: int) -> None:
    django_q_tasks.async_task(
        "remediation.tasks.approve_by_policy", approval_id, task_name=f"auto-approve-{approval_id}", group="execution"
    )


def enqueue_knowledge_of_fix(execution_id: int) -> None:
    django_q_tasks.async_task(
        "remediation.tasks.record_fix_knowledge",
        execution_id,
        task_name=f"fix-knowledge-{execution_id}",
        group="knowledge",
    )

"""What the remediation app tells the apps above it (notifications subscribes in its `ready()`).

Every signal is sent inside the transaction that made the change, so a receiver can write an
outbox row that commits or rolls back with it (and hand slow work to the queue with
`transaction.on_commit`). An exception in a receiver rolls the change back.

- `diagnosis_ready(diagnosis)`: a diagnosis stored its hypothesis.
- `approval_requested(approval)`: a proposal now waits for a human.
- `approval_expired(approval)`: nobody decided before `expires_at`.
- `execution_started(execution)`: an approved proposal is being carried out.
- `execution_failed(execution)`: carrying it out failed (the incident is escalated).
- `pull_request_opened(execution)`: a code fix was published (a pull request, or a branch on a plain remote).
"""

from django.dispatch import Signal

diagnosis_ready = Signal()
approval_requested = Signal()
approval_expired = Signal()
execution_started = Signal()
execution_failed = Signal()
pull_request_opened = Signal()

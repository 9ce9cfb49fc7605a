"""Enumerations of the remediation domain."""

from django.db import models


class DiagnosisStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


# A diagnosis in one of these states is "in flight": at most one per incident.
DIAGNOSIS_IN_FLIGHT = (DiagnosisStatus.QUEUED, DiagnosisStatus.RUNNING)


class RecommendedAction(models.TextChoices):
    PLAYBOOK = "playbook", "Run a playbook"
    CODE_FIX = "code_fix", "Fix the code"
    ESCALATE = "escalate", "Escalate to a human"


class RiskLevel(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class FixAttemptStatus(models.TextChoices):
    GENERATING = "generating", "Generating the patch"
    TESTING = "testing", "Testing in the sandbox"
    PASSED = "passed", "Tests passed"
    FAILED = "failed", "Tests failed"
    TIMED_OUT = "timed_out", "Test run timed out"
    INVALID_PATCH = "invalid_patch", "Patch refused or did not apply"
    NO_PATCH = "no_patch", "No patch could be written"
    ERROR = "error", "Sandbox error"


class ProposalKind(models.TextChoices):
    CODE_FIX = "code_fix", "Code fix"
    PLAYBOOK = "playbook", "Playbook run"


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    SUPERSEDED = "superseded", "Superseded by a newer proposal"


class PlaybookStepType(models.TextChoices):
    HTTP = "http", "HTTP request"
    COMMAND = "command", "Command (allow-listed)"
    TASK = "task", "Named task"
    WAIT = "wait", "Wait"
    CHECK = "check", "Check (HTTP status/body)"


class TypeCheckMode(models.TextChoices):
    AUTO = "auto", "When the changed code has type hints"
    ON = "on", "Always"
    OFF = "off", "Never"


class ExecutionStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class VerificationStatus(models.TextChoices):
    """Where a carried-out remediation stands on its way to a verified resolution."""

    PENDING = "pending", "Not started (the execution is running)"
    AWAITING_MERGE = "awaiting_merge", "Waiting for the branch to be merged"
    HEALTH_CHECK = "health_check", "Checking the service's health"
    QUIET_WINDOW = "quiet_window", "Watching for a recurrence"
    VERIFIED = "verified", "Verified: resolved"
    RECURRED = "recurred", "The fingerprint fired again"
    ABANDONED = "abandoned", "Not merged (closed or deleted)"
    FAILED = "failed", "Failed"
    ENDED = "ended", "Ended by a human"


# Verification states the watcher still acts on.
VERIFICATION_OPEN = (
    VerificationStatus.AWAITING_MERGE,
    VerificationStatus.HEALTH_CHECK,
    VerificationStatus.QUIET_WINDOW,
)

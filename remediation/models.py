"""Services, diagnoses, playbooks, fix attempts and the approvals they end in."""

from __future__ import annotations

import re
import shlex

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from incidents.models import Incident, _Matchers, _validate_regex
from remediation.choices import (
    DIAGNOSIS_IN_FLIGHT,
    ApprovalStatus,
    DiagnosisStatus,
    ExecutionStatus,
    FixAttemptStatus,
    ProposalKind,
    RecommendedAction,
    RiskLevel,
    TypeCheckMode,
    VerificationStatus,
)

# mypy (pinned in requirements/base.txt) as the Python running Quench has it: imports the
# sandbox cannot resolve are not errors, and imported modules are checked but not reported,
# so only the changed files' own errors count.
DEFAULT_TYPE_CHECK_COMMAND = "python -m mypy --ignore-missing-imports --follow-imports=silent --no-error-summary"

GITHUB_REPOSITORY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")


class Service(models.Model):
    """A service Quench looks after: where its code lives, how to test it, how to check it is healthy."""

    name = models.CharField(max_length=200, unique=True, help_text="As alerts name it (the incident's service).")
    description = models.TextField(blank=True)
    repository = models.CharField(
        max_length=1000,
        blank=True,
        help_text="Absolute path of a local git repository, or a clone URL (https://, ssh://, file://, git@).",
    )
    default_branch = models.CharField(max_length=200, default="main")
    github_repository = models.CharField(
        max_length=200,
        blank=True,
        help_text='"owner/name" on GitHub: approved fixes become pull requests there (needs QUENCH_GITHUB_TOKEN). '
        "Empty: the branch is pushed to the repository above.",
    )
    test_command = models.CharField(
        max_length=500,
        default="python -m pytest -q",
        help_text="Run in the repository root without a shell; split like a POSIX shell would.",
    )
    type_check = models.CharField(
        max_length=10,
        choices=TypeCheckMode.choices,
        default=TypeCheckMode.AUTO,
        help_text=(
            "Whether a fix must also pass the type checker on the files it changes (only new errors count). "
            "Auto: when the repository configures a type checker or the changed files have type hints."
        ),
    )
    type_check_command = models.CharField(
        max_length=500,
        blank=True,
        default=DEFAULT_TYPE_CHECK_COMMAND,
        help_text=(
            "The type checker (mypy or pyright), run in the repository root without a shell; the changed "
            "files are appended. Empty: no type check."
        ),
    )
    health_check_url = models.URLField(max_length=1000, blank=True)
    owners = models.JSONField(default=list, blank=True, help_text='People or teams, e.g. ["alice@example.com"].')
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        try:
            argv = shlex.split(self.test_command)
        except ValueError as exc:
            raise ValidationError({"test_command": f"Cannot be split into arguments: {exc}."}) from None
        if not argv:
            raise ValidationError({"test_command": "Give the command that runs the service's tests."})
        try:
            shlex.split(self.type_check_command)
        except ValueError as exc:
            raise ValidationError({"type_check_command": f"Cannot be split into arguments: {exc}."}) from None
        if not isinstance(self.owners, list) or not all(isinstance(owner, str) for owner in self.owners):
            raise ValidationError({"owners": 'Must be a list of names, e.g. ["alice@example.com"].'})
        repository = self.repository.strip()
        if repository and not (repository.startswith(("/", "https://", "http://", "ssh://", "file://", "git@"))):
            raise ValidationError({"repository": "Give an absolute local path or a clone URL."})
        if self.github_repository and not GITHUB_REPOSITORY.fullmatch(self.github_repository):
            raise ValidationError({"github_repository": 'Give it as "owner/name", e.g. "acme/shop".'})
        if self.default_branch.startswith("-") or " " in self.default_branch:
            raise ValidationError({"default_branch": "Not a valid branch name."})

    @property
    def test_argv(self) -> list[str]:
        return shlex.split(self.test_command)

    @property
    def type_check_argv(self) -> list[str]:
        """The type checker's command, or [] when fixes are not type-checked."""
        if self.type_check == TypeCheckMode.OFF:
            return []
        return shlex.split(self.type_check_command)


class Playbook(_Matchers):
    """A known remediation: when it applies, the ordered steps it runs, and how risky it is.

    Empty match fields mean "any"; the most specific enabled match wins (see
    `remediation.playbooks.best_playbook`).
    """

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=100, help_text="Breaks ties between equally specific matches.")
    match_category = models.CharField(max_length=60, blank=True, help_text="Exact incident category.")
    match_exception_type = models.CharField(
        max_length=200, blank=True, help_text="Regular expression on the exception type."
    )
    steps = models.JSONField(
        default=list,
        help_text=(
            'Ordered steps, each {"type": "http"|"command"|"task"|"wait"|"check", "name": ..., ...}; '
            "values may use {{ variables }}."
        ),
    )
    variables = models.JSONField(default=dict, blank=True, help_text="Defaults for {{ variables }} in the steps.")
    risk_level = models.CharField(max_length=10, choices=RiskLevel.choices, default=RiskLevel.MEDIUM)
    auto_approve = models.BooleanField(default=False, help_text="May run without a human approval (low risk only).")
    cooldown_minutes = models.PositiveIntegerField(
        default=30, help_text="Not proposed again for the same service within this time after it ran."
    )
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        _validate_regex(self.match_exception_type, "match_exception_type")
        from remediation.playbooks import step_problems

        if problems := step_problems(self.steps, self.variables):
            raise ValidationError({"steps": problems})
        if self.auto_approve and self.risk_level != RiskLevel.LOW:
            raise ValidationError({"auto_approve": "Only a low-risk playbook may run without approval."})


class Diagnosis(models.Model):
    """Why an incident happened, what to do about it, and how the answer was reached."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="diagnoses")
    status = models.CharField(max_length=10, choices=DiagnosisStatus.choices, default=DiagnosisStatus.QUEUED)
    trigger = models.CharField(max_length=20, help_text="What asked for it: new, regressed, spike, reanalyze, ...")
    requested_by = models.CharField(max_length=150, default="quench")
    hypothesis = models.TextField(blank=True, help_text="The root-cause hypothesis.")
    confidence = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    evidence = models.JSONField(default=list, blank=True)
    explanation = models.TextField(blank=True, help_text="What the exception class means.")
    culprit_file = models.CharField(max_length=500, blank=True)
    culprit_line = models.PositiveIntegerField(null=True, blank=True)
    culprit_function = models.CharField(max_length=200, blank=True)
    category = models.CharField(max_length=60, blank=True)
    recommended_action = models.CharField(max_length=10, choices=RecommendedAction.choices, blank=True)
    risk_level = models.CharField(max_length=10, choices=RiskLevel.choices, blank=True)
    playbook = models.ForeignKey(Playbook, null=True, blank=True, on_delete=models.SET_NULL)
    provider = models.CharField(max_length=30, blank=True)
    model = models.CharField(max_length=100, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    decision_chain = models.JSONField(
        default=list, blank=True, help_text="Each step: what ran, provider, model, prompt size, tokens, duration."
    )
    context_summary = models.JSONField(default=dict, blank=True, help_text="What the diagnosis was given.")
    outcome = models.CharField(
        max_length=200, blank=True, help_text="How it ended: proposal awaiting approval, escalated (why), ..."
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "diagnoses"
        constraints = [
            # "At most one diagnosis in flight per incident" is a database rule, so two
            # wake-ups (or a wake-up and a reanalyze click) cannot both start one.
            models.UniqueConstraint(
                fields=["incident"],
                condition=Q(status__in=DIAGNOSIS_IN_FLIGHT),
                name="one_diagnosis_in_flight_per_incident",
            ),
        ]
        indexes = [models.Index(fields=["incident", "-created_at"], name="diagnosis_incident_recent")]

    def __str__(self) -> str:
        return f"Diagnosis #{self.pk} of incident #{self.incident_id}"


class FixAttempt(models.Model):
    """One patch for a diagnosis, its sandbox test run, and the critic's verdict when it failed."""

    diagnosis = models.ForeignKey(Diagnosis, on_delete=models.CASCADE, related_name="attempts")
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="fix_attempts")
    number = models.PositiveSmallIntegerField(help_text="1 for the first attempt of this diagnosis.")
    review_round = models.PositiveSmallIntegerField(
        default=1, help_text="1 before any rejection; each reviewer's rejection starts the next round."
    )
    status = models.CharField(max_length=15, choices=FixAttemptStatus.choices, default=FixAttemptStatus.GENERATING)
    summary = models.TextField(blank=True, help_text="What the patch changes and why.")
    patch = models.TextField(blank=True, help_text="Unified diff against the default branch.")
    files_changed = models.JSONField(default=list, blank=True)
    adds_regression_test = models.BooleanField(default=False)
    risk_level = models.CharField(
        max_length=10,
        choices=RiskLevel.choices,
        blank=True,
        help_text="What this patch changes, as its writer judged it.",
    )
    feedback_used = models.TextField(blank=True, help_text="Critic or reviewer feedback this attempt was told to use.")
    provider = models.CharField(max_length=30, blank=True)
    model = models.CharField(max_length=100, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    base_commit = models.CharField(max_length=64, blank=True)
    test_command = models.CharField(max_length=500, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    output = models.TextField(blank=True, help_text="The test run's output, truncated in the middle.")
    output_truncated = models.BooleanField(default=False)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    isolated = models.BooleanField(null=True, blank=True, help_text="Whether the tests ran under bubblewrap.")
    failed_check = models.CharField(max_length=20, blank=True, help_text="Which check failed: tests or type_check.")
    type_check = models.CharField(
        max_length=10, blank=True, help_text="The type check's outcome: passed, failed, skipped, error."
    )
    type_check_message = models.CharField(max_length=500, blank=True)
    critic_what_failed = models.TextField(blank=True)
    critic_why = models.TextField(blank=True)
    critic_next = models.TextField(blank=True, help_text="What the next attempt must do.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(
        null=True, blank=True, help_text="When a worker claimed it; a stale claim is taken over."
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["diagnosis", "number"]
        constraints = [models.UniqueConstraint(fields=["diagnosis", "number"], name="one_attempt_per_number")]

    def __str__(self) -> str:
        return f"Fix attempt {self.number} for incident #{self.incident_id}"

    @property
    def critic_feedback(self) -> str:
        """The critic's verdict in its three parts, as the next attempt is given it."""
        if not (self.critic_what_failed or self.critic_why or self.critic_next):
            return ""
        return f"WHAT FAILED: {self.critic_what_failed}\nWHY: {self.critic_why}\nNEXT ATTEMPT MUST: {self.critic_next}"


class ApprovalRequest(models.Model):
    """A proposed remediation waiting for (or past) a human decision."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="approvals")
    diagnosis = models.ForeignKey(Diagnosis, on_delete=models.CASCADE, related_name="approvals")
    kind = models.CharField(max_length=10, choices=ProposalKind.choices)
    fix_attempt = models.OneToOneField(
        FixAttempt, null=True, blank=True, on_delete=models.CASCADE, related_name="approval"
    )
    playbook = models.ForeignKey(Playbook, null=True, blank=True, on_delete=models.PROTECT)
    summary = models.TextField()
    risk_level = models.CharField(max_length=10, choices=RiskLevel.choices, default=RiskLevel.MEDIUM)
    dry_run = models.JSONField(default=list, blank=True, help_text="The playbook's steps as they would run.")
    status = models.CharField(max_length=10, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    expires_at = models.DateTimeField()
    decided_by = models.CharField(max_length=150, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    feedback = models.TextField(blank=True, help_text="Why it was rejected; the next attempt must use it.")
    note = models.TextField(blank=True, help_text="The approver's note.")
    decision_reason = models.CharField(
        max_length=300, blank=True, help_text="Why Quench decided it (superseded, expired, approved by policy)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("approve_remediation", "Can approve or reject proposed remediations")]
        constraints = [
            # Creating a proposal is idempotent: one per fix attempt (the one-to-one above)
            # and one playbook proposal per diagnosis, so a redelivered task finds it.
            models.UniqueConstraint(
                fields=["diagnosis"],
                condition=Q(kind=ProposalKind.PLAYBOOK),
                name="one_playbook_proposal_per_diagnosis",
            ),
            models.UniqueConstraint(
                fields=["incident"],
                condition=Q(status=ApprovalStatus.PENDING),
                name="one_pending_approval_per_incident",
            ),
            models.CheckConstraint(
                condition=Q(kind=ProposalKind.CODE_FIX, fix_attempt__isnull=False)
                | Q(kind=ProposalKind.PLAYBOOK, playbook__isnull=False),
                name="proposal_has_its_subject",
            ),
        ]
        indexes = [models.Index(fields=["status", "expires_at"], name="approval_status_expiry")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for incident #{self.incident_id} ({self.status})"


class Execution(models.Model):
    """Carrying out one approved proposal: what ran, what it produced, and how its verification goes.

    One per approval (the one-to-one is what makes a redelivered task find the run it
    must continue instead of starting a second). A code fix publishes a branch (and a
    pull request on GitHub); a playbook runs its steps. Verification then waits for the
    merge, checks the service's health and watches a quiet window for the fingerprint.
    """

    approval = models.OneToOneField(ApprovalRequest, on_delete=models.CASCADE, related_name="execution")
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="executions")
    kind = models.CharField(max_length=10, choices=ProposalKind.choices)
    status = models.CharField(max_length=10, choices=ExecutionStatus.choices, default=ExecutionStatus.RUNNING)
    verification = models.CharField(
        max_length=20, choices=VerificationStatus.choices, default=VerificationStatus.PENDING
    )
    code_host = models.CharField(max_length=20, blank=True, help_text="git (a plain remote) or github.")
    branch = models.CharField(max_length=255, blank=True)
    commit_sha = models.CharField(max_length=64, blank=True)
    pull_request_url = models.URLField(max_length=500, blank=True)
    pull_request_number = models.PositiveIntegerField(null=True, blank=True)
    steps = models.JSONField(default=list, blank=True, help_text="Each step: name, status, output, duration.")
    output = models.TextField(blank=True)
    error = models.TextField(blank=True)
    verification_note = models.TextField(blank=True, help_text="What the watcher saw last.")
    claimed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a worker took it; a stale claim is taken over."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    merged_at = models.DateTimeField(null=True, blank=True)
    healthy_at = models.DateTimeField(null=True, blank=True)
    quiet_until = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    effectiveness = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text="How well the fix worked, 1 (not at all) to 5 (completely).",
    )
    outcome_feedback = models.TextField(blank=True, help_text="What the team says about the fix.")
    learning_notes = models.TextField(blank=True, help_text="What to remember next time (goes to the knowledge base).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["verification"], name="execution_verification")]

    def __str__(self) -> str:
        return f"Execution of proposal #{self.approval_id} for incident #{self.incident_id} ({self.status})"

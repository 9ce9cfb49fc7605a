"""Serializers of the remediation API: diagnoses with their fix attempts and proposals."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api.fields import StrictCharField
from remediation.models import ApprovalRequest, Diagnosis, Execution, FixAttempt


class FixAttemptSerializer(serializers.ModelSerializer):
    critic_feedback = serializers.CharField(read_only=True)

    class Meta:
        model = FixAttempt
        fields = [
            "id",
            "number",
            "status",
            "summary",
            "patch",
            "files_changed",
            "adds_regression_test",
            "risk_level",
            "feedback_used",
            "provider",
            "model",
            "input_tokens",
            "output_tokens",
            "base_commit",
            "test_command",
            "exit_code",
            "output",
            "output_truncated",
            "duration_ms",
            "isolated",
            "failed_check",
            "type_check",
            "type_check_message",
            "critic_feedback",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class ExecutionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Execution
        fields = [
            "id",
            "kind",
            "status",
            "verification",
            "verification_note",
            "code_host",
            "branch",
            "commit_sha",
            "pull_request_url",
            "pull_request_number",
            "steps",
            "output",
            "error",
            "started_at",
            "finished_at",
            "merged_at",
            "healthy_at",
            "quiet_until",
            "verified_at",
            "effectiveness",
            "outcome_feedback",
            "learning_notes",
        ]
        read_only_fields = fields


class ApprovalRequestSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApprovalRequest
        fields = [
            "id",
            "incident",
            "diagnosis",
            "kind",
            "fix_attempt",
            "playbook",
            "summary",
            "risk_level",
            "dry_run",
            "status",
            "expires_at",
            "decided_by",
            "decided_at",
            "note",
            "feedback",
            "decision_reason",
            "created_at",
        ]
        read_only_fields = fields


class ApprovalDetailSerializer(ApprovalRequestSerializer):
    """An approval with what it proposes (the fix attempt) and, once approved, its execution."""

    incident_title = serializers.CharField(source="incident.title", read_only=True)
    severity = serializers.CharField(source="incident.severity", read_only=True)
    root_cause = serializers.CharField(source="diagnosis.hypothesis", read_only=True)
    attempt = FixAttemptSerializer(source="fix_attempt", read_only=True, allow_null=True)
    execution = serializers.SerializerMethodField()

    class Meta(ApprovalRequestSerializer.Meta):
        fields = [
            *ApprovalRequestSerializer.Meta.fields,
            "incident_title",
            "severity",
            "root_cause",
            "attempt",
            "execution",
        ]
        read_only_fields = fields

    @extend_schema_field(ExecutionSerializer(allow_null=True))
    def get_execution(self, approval) -> dict | None:
        execution = getattr(approval, "execution", None)
        return ExecutionSerializer(execution).data if execution is not None else None


class ApproveSerializer(serializers.Serializer):
    note = StrictCharField(required=False, allow_blank=True, max_length=10_000, default="")


class RejectSerializer(serializers.Serializer):
    feedback = StrictCharField(
        max_length=10_000,
        help_text="Why the proposal is rejected; the next fix attempt is written from these words.",
        error_messages={"blank": "Say why you reject it: the next attempt is written from your feedback."},
    )


class DiagnosisSerializer(serializers.ModelSerializer):
    attempts = FixAttemptSerializer(many=True, read_only=True)
    approvals = ApprovalRequestSerializer(many=True, read_only=True)

    class Meta:
        model = Diagnosis
        fields = [
            "id",
            "incident",
            "status",
            "outcome",
            "trigger",
            "requested_by",
            "hypothesis",
            "confidence",
            "evidence",
            "explanation",
            "culprit_file",
            "culprit_line",
            "culprit_function",
            "category",
            "recommended_action",
            "risk_level",
            "playbook",
            "provider",
            "model",
            "input_tokens",
            "output_tokens",
            "decision_chain",
            "context_summary",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "attempts",
            "approvals",
        ]
        read_only_fields = fields


class ReanalyzeResponseSerializer(serializers.Serializer):
    deduplicated = serializers.BooleanField(
        help_text="True when an earlier diagnosis is returned instead of a new one."
    )
    diagnosis = DiagnosisSerializer()

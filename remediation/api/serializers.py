"""Serializers of the remediation API: diagnoses with their fix attempts and proposals."""

from __future__ import annotations

from rest_framework import serializers

from remediation.models import ApprovalRequest, Diagnosis, FixAttempt


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
            "critic_feedback",
            "created_at",
            "finished_at",
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
            "feedback",
            "created_at",
        ]
        read_only_fields = fields


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

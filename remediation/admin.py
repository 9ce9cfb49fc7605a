"""Remediation admin: services, playbooks, and the diagnoses, fix attempts and approvals Quench made."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from incidents.admin import ReadOnlyAdmin
from remediation.models import ApprovalRequest, Diagnosis, FixAttempt, Playbook, Service
from remediation.playbooks import step_problems
from remediation.rendering import diff_html, output_html


def _incident_link(incident_id: int, title: str = ""):
    url = reverse("admin:incidents_incident_change", args=[incident_id])
    return format_html('<a href="{}">#{} {}</a>', url, incident_id, title[:80])


def _pretty_json(value) -> str:
    return format_html("<pre style='font-size:12px'>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False))


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "repository", "default_branch", "test_command", "health_check_url"]
    search_fields = ["name", "repository", "description"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        from remediation.services import link_service_incidents

        link_service_incidents(obj.pk)


@admin.register(Playbook)
class PlaybookAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "enabled",
        "risk_level",
        "auto_approve",
        "match_service",
        "match_alertname",
        "match_category",
        "match_exception_type",
        "cooldown_minutes",
        "last_run_at",
    ]
    list_filter = ["enabled", "risk_level", "auto_approve"]
    list_editable = ["enabled"]
    search_fields = ["name", "description"]
    readonly_fields = ["last_run_at", "steps_check"]
    fieldsets = [
        (None, {"fields": ["name", "description", "enabled", "position", "risk_level", "auto_approve"]}),
        (
            "When it applies (empty means any)",
            {
                "fields": [
                    "match_service",
                    "match_alertname",
                    "match_category",
                    "match_exception_type",
                    "match_labels",
                ]
            },
        ),
        ("What it does", {"fields": ["steps", "variables", "steps_check", "cooldown_minutes", "last_run_at"]}),
    ]

    @admin.display(description="Steps check")
    def steps_check(self, obj):
        if obj is None or not obj.pk:
            return "–"
        problems = step_problems(obj.steps, obj.variables)
        return "; ".join(problems) if problems else "Steps are valid."


class FixAttemptInline(admin.StackedInline):
    model = FixAttempt
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["number", "status", "summary", "patch_display", "exit_code", "duration_ms", "critic_feedback"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Patch")
    def patch_display(self, obj):
        return diff_html(obj.patch)


@admin.register(Diagnosis)
class DiagnosisAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "incident_display",
        "status",
        "recommended_action",
        "confidence",
        "provider",
        "trigger",
        "outcome",
        "created_at",
    ]
    list_filter = ["status", "recommended_action", "provider", "trigger", "category"]
    search_fields = ["hypothesis", "culprit_file", "incident__title"]
    list_select_related = ["incident"]
    raw_id_fields = ["incident", "playbook"]
    inlines = [FixAttemptInline]
    fields = [
        "incident_display",
        "status",
        "outcome",
        "trigger",
        "requested_by",
        "hypothesis",
        "confidence",
        "explanation",
        "evidence_display",
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
        "decision_chain_display",
        "context_display",
        "error",
        "created_at",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields

    @admin.display(description="Incident", ordering="incident")
    def incident_display(self, obj):
        return _incident_link(obj.incident_id, obj.incident.title)

    @admin.display(description="Evidence")
    def evidence_display(self, obj):
        return _pretty_json(obj.evidence)

    @admin.display(description="Decision chain")
    def decision_chain_display(self, obj):
        return _pretty_json(obj.decision_chain)

    @admin.display(description="Context given")
    def context_display(self, obj):
        return _pretty_json(obj.context_summary)


@admin.register(FixAttempt)
class FixAttemptAdmin(ReadOnlyAdmin):
    list_display = ["id", "incident_display", "diagnosis", "number", "status", "adds_regression_test", "created_at"]
    list_filter = ["status", "adds_regression_test", "provider"]
    list_select_related = ["incident", "diagnosis"]
    fields = [
        "incident_display",
        "diagnosis",
        "number",
        "status",
        "summary",
        "files_changed",
        "adds_regression_test",
        "patch_display",
        "base_commit",
        "test_command",
        "exit_code",
        "duration_ms",
        "output_display",
        "output_truncated",
        "critic_what_failed",
        "critic_why",
        "critic_next",
        "feedback_used",
        "provider",
        "model",
        "input_tokens",
        "output_tokens",
        "created_at",
        "finished_at",
    ]
    readonly_fields = fields

    @admin.display(description="Incident", ordering="incident")
    def incident_display(self, obj):
        return _incident_link(obj.incident_id, obj.incident.title)

    @admin.display(description="Patch")
    def patch_display(self, obj):
        return diff_html(obj.patch)

    @admin.display(description="Test output")
    def output_display(self, obj):
        return output_html(obj.output)


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    list_display = ["id", "incident_display", "kind", "status", "risk_level", "summary", "expires_at", "created_at"]
    list_filter = ["status", "kind", "risk_level"]
    list_select_related = ["incident"]
    search_fields = ["summary", "incident__title"]
    fields = [
        "incident_display",
        "diagnosis",
        "kind",
        "status",
        "summary",
        "risk_level",
        "patch_display",
        "dry_run_display",
        "expires_at",
        "decided_by",
        "decided_at",
        "feedback",
        "created_at",
    ]
    readonly_fields = fields
    actions = ["expire_overdue"]

    @admin.display(description="Incident", ordering="incident")
    def incident_display(self, obj):
        return _incident_link(obj.incident_id, obj.incident.title)

    @admin.display(description="Patch")
    def patch_display(self, obj):
        return diff_html(obj.fix_attempt.patch) if obj.fix_attempt_id else "–"

    @admin.display(description="Playbook dry run")
    def dry_run_display(self, obj):
        return _pretty_json(obj.dry_run) if obj.dry_run else "–"

    @admin.action(description="Expire overdue pending approvals now")
    def expire_overdue(self, request, queryset):
        from remediation.services import expire_overdue_approvals

        count = expire_overdue_approvals()
        self.message_user(request, f"Expired {count} overdue approval(s).", messages.SUCCESS)

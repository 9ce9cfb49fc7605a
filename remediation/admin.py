"""Remediation admin: services, playbooks, and the diagnoses, fix attempts and approvals Quench made."""

from __future__ import annotations

import json
from functools import partial

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.timesince import timesince
from django.views.decorators.http import require_POST

from incidents.admin import ReadOnlyAdmin
from incidents.services import TransitionRefused
from remediation.admin_panels import approval_page_context, remediation_context
from remediation.approvals import ApprovalRefused, approve, can_approve, expire_overdue_approvals, reject
from remediation.choices import ApprovalStatus
from remediation.codehosts import CodeHostError
from remediation.execution import merge_execution
from remediation.models import ApprovalRequest, Diagnosis, Execution, FixAttempt, Playbook, Service
from remediation.playbooks import step_problems
from remediation.queries import approval_queue
from remediation.queue import enqueue_knowledge_of_fix
from remediation.rendering import diff_html, output_html
from remediation.services import link_service_incidents, reanalyze


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
    """The approval desk: the queue of proposals and, for each, one page to decide it.

    Approve and Reject are POST forms on the approval's page (and the incident's), handled
    by `approve_view` / `reject_view`, which call `remediation.approvals`; only users with
    the approve_remediation permission (the Approvers group) see and may use them.
    """

    list_display = [
        "id",
        "incident_display",
        "severity_display",
        "kind",
        "status",
        "risk_level",
        "summary_display",
        "age_display",
        "expires_at",
        "decided_by",
    ]
    list_filter = ["status", "kind", "risk_level", "incident__severity"]
    list_select_related = ["incident"]
    search_fields = ["summary", "incident__title"]
    fields = [
        "incident",
        "diagnosis",
        "kind",
        "status",
        "risk_level",
        "expires_at",
        "decided_by",
        "decided_at",
        "note",
        "feedback",
        "decision_reason",
        "created_at",
    ]
    change_form_template = "admin/remediation/approvalrequest/change_form.html"
    change_list_template = "admin/remediation/approvalrequest/change_list.html"
    actions = ["expire_overdue"]

    def get_queryset(self, request):
        return approval_queue().select_related("incident", "diagnosis", "fix_attempt", "playbook")

    def get_ordering(self, request):
        # The queue: most severe first, then the oldest waiting.
        if request.GET.get("status__exact") == ApprovalStatus.PENDING:
            return ["severity_rank", "created_at"]
        return ["-created_at"]

    @admin.display(description="Incident", ordering="incident")
    def incident_display(self, obj):
        return _incident_link(obj.incident_id, obj.incident.title)

    @admin.display(description="Severity", ordering="severity_rank")
    def severity_display(self, obj):
        return obj.incident.severity

    @admin.display(description="Proposal")
    def summary_display(self, obj):
        url = reverse("admin:remediation_approvalrequest_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.summary[:120])

    @admin.display(description="Waiting", ordering="created_at")
    def age_display(self, obj):
        return timesince(obj.created_at) if obj.status == ApprovalStatus.PENDING else "–"

    def get_urls(self):
        urls = [
            path("queue/", self.admin_site.admin_view(self.queue_view), name="remediation_approvalrequest_queue"),
            path(
                "<int:approval_id>/approve/",
                self.admin_site.admin_view(self.approve_view),
                name="remediation_approvalrequest_approve",
            ),
            path(
                "<int:approval_id>/reject/",
                self.admin_site.admin_view(self.reject_view),
                name="remediation_approvalrequest_reject",
            ),
        ]
        return urls + super().get_urls()

    def queue_view(self, request):
        """Pending approvals, most severe and oldest first."""
        return redirect(reverse("admin:remediation_approvalrequest_changelist") + "?status__exact=pending")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        approval = self.get_object(request, object_id)
        extra_context = {**(extra_context or {}), **(approval_page_context(approval, request.user) if approval else {})}
        return super().change_view(request, object_id, form_url, extra_context)

    def _back(self, request, approval_id: int):
        target = request.POST.get("next", "")
        if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            return redirect(target)
        return redirect("admin:remediation_approvalrequest_change", approval_id)

    def _decide(self, request, approval_id: int, decide) -> None:
        if request.method != "POST":
            raise PermissionDenied("Decisions are POST forms.")
        if not can_approve(request.user):
            raise PermissionDenied("You need the approve remediation permission (the Approvers group).")
        get_object_or_404(ApprovalRequest, pk=approval_id)
        try:
            message = decide()
        except ApprovalRefused as exc:
            self.message_user(request, exc.message, messages.ERROR)
        except ValueError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, message, messages.SUCCESS)

    def approve_view(self, request, approval_id: int):
        def decide():
            approval = approve(approval_id, user=request.user, note=request.POST.get("note", ""))
            if approval.kind == "code_fix":
                return f"Approved. Quench is publishing the fix for incident #{approval.incident_id}."
            return f"Approved. Quench is running the playbook for incident #{approval.incident_id}."

        self._decide(request, approval_id, decide)
        return self._back(request, approval_id)

    def reject_view(self, request, approval_id: int):
        def decide():
            approval = reject(approval_id, user=request.user, feedback=request.POST.get("feedback", ""))
            if approval.kind == "code_fix":
                return "Rejected. A new fix attempt that follows your feedback is on its way."
            return "Rejected. The incident is yours: reanalyze it for another proposal or resolve it."

        self._decide(request, approval_id, decide)
        return self._back(request, approval_id)

    @admin.action(description="Expire overdue pending approvals now")
    def expire_overdue(self, request, queryset):
        count = expire_overdue_approvals()
        self.message_user(request, f"Expired {count} overdue approval(s).", messages.SUCCESS)


EXECUTION_FIELDS = [
    "incident_display",
    "approval_display",
    "kind",
    "status",
    "code_host",
    "branch_display",
    "commit_sha",
    "steps_display",
    "output",
    "error",
    "started_at",
    "finished_at",
]
VERIFICATION_FIELDS = ["verification", "verification_note", "merged_at", "healthy_at", "quiet_until", "verified_at"]


@admin.register(Execution)
class ExecutionAdmin(admin.ModelAdmin):
    """What Quench carried out and how verification went; the outcome fields are the team's to fill in."""

    list_display = [
        "id",
        "incident_display",
        "kind",
        "status",
        "verification",
        "branch_display",
        "started_at",
        "finished_at",
        "effectiveness",
    ]
    list_filter = ["status", "verification", "kind", "code_host"]
    list_select_related = ["incident"]
    search_fields = ["incident__title", "branch", "commit_sha", "pull_request_url"]
    actions = ["merge_local_branch"]
    fieldsets = [
        (None, {"fields": EXECUTION_FIELDS}),
        ("Verification", {"fields": VERIFICATION_FIELDS}),
        ("Outcome (goes to the knowledge base)", {"fields": ["effectiveness", "outcome_feedback", "learning_notes"]}),
    ]
    # Only the outcome is the team's to edit; what ran and what verification saw is the record.
    readonly_fields = EXECUTION_FIELDS + VERIFICATION_FIELDS

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Incident", ordering="incident")
    def incident_display(self, obj):
        return _incident_link(obj.incident_id, obj.incident.title)

    @admin.display(description="Approval")
    def approval_display(self, obj):
        url = reverse("admin:remediation_approvalrequest_change", args=[obj.approval_id])
        return format_html('<a href="{}">#{}</a>', url, obj.approval_id)

    @admin.display(description="Branch / pull request")
    def branch_display(self, obj):
        if obj.pull_request_url:
            return format_html(
                '<a href="{}">PR #{}</a> ({})', obj.pull_request_url, obj.pull_request_number, obj.branch
            )
        return obj.branch or "–"

    @admin.display(description="Steps")
    def steps_display(self, obj):
        return _pretty_json(obj.steps) if obj.steps else "–"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and form.changed_data:
            execution_id = obj.pk
            transaction.on_commit(lambda: enqueue_knowledge_of_fix(execution_id), robust=True)
            self.message_user(request, "Outcome saved; the knowledge base entry is being updated.")

    @admin.action(description="Merge the branch into the default branch (local git repositories)")
    def merge_local_branch(self, request, queryset):
        if not can_approve(request.user):
            raise PermissionDenied("Merging needs the approve remediation permission.")
        for execution in queryset.select_related("incident__service_record"):
            try:
                head = merge_execution(execution)
            except CodeHostError as exc:
                self.message_user(request, f"Execution #{execution.pk}: {exc}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"Merged {execution.branch} (now {head[:12]}); the watcher verifies it within a minute.",
                    messages.SUCCESS,
                )


# --- What remediation adds to the incident page (registered in RemediationConfig.ready()) ---


def incident_remediation_panel(incident, request) -> dict:
    return remediation_context(incident, request.user)


def incident_reanalyze_urls(model_admin) -> list:
    view = model_admin.admin_site.admin_view(require_POST(partial(reanalyze_view, model_admin)))
    return [path("<int:incident_id>/reanalyze/", view, name="incidents_incident_reanalyze")]


def reanalyze_view(model_admin, request, incident_id: int):
    """The incident page's "Reanalyze" button: ask for a fresh diagnosis (POST; deduplicated for minutes)."""
    if not model_admin.has_change_permission(request):
        raise PermissionDenied
    _reanalyze(model_admin, request, [incident_id])
    return redirect("admin:incidents_incident_change", incident_id)


@admin.action(description="Reanalyze selected incidents", permissions=["change"])
def reanalyze_selected(model_admin, request, queryset):
    _reanalyze(model_admin, request, list(queryset.values_list("pk", flat=True)))


def _reanalyze(model_admin, request, incident_ids) -> None:
    for incident_id in incident_ids:
        try:
            diagnosis, created = reanalyze(incident_id, actor=request.user.get_username())
        except TransitionRefused as exc:
            model_admin.message_user(request, exc.message, messages.WARNING)
            continue
        if created:
            model_admin.message_user(request, f"Diagnosis #{diagnosis.pk} of incident #{incident_id} requested.")
        else:
            model_admin.message_user(
                request,
                f"Incident #{incident_id} already has diagnosis #{diagnosis.pk} "
                f"({diagnosis.get_status_display().lower()}, requested {diagnosis.created_at:%H:%M}); not asked again.",
                messages.WARNING,
            )

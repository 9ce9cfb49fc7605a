"""The knowledge admin: entries with a rendered preview, dead letters to retry, signatures to inspect."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from incidents.admin import ReadOnlyAdmin
from knowledge.models import DeadLetter, IncidentSignature, KnowledgeEntry
from knowledge.rendering import render_markdown
from knowledge.services import reembed_entries, replay_dead_letter


def _embedding_summary(vector, provider: str, dimension) -> str:
    if vector is None:
        return "not embedded"
    head = ", ".join(f"{value:.3f}" for value in list(vector)[:6])
    return f"{provider or '?'} · {dimension or len(vector)} dimensions · [{head}, …]"


def _incident_link(incident_id):
    if not incident_id:
        return "-"
    url = reverse("admin:incidents_incident_change", args=[incident_id])
    return format_html('<a href="{}">#{}</a>', url, incident_id)


class EmbeddedFilter(admin.SimpleListFilter):
    title = "embedded"
    parameter_name = "embedded"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(embedding__isnull=False)
        if self.value() == "no":
            return queryset.filter(embedding__isnull=True)
        return queryset


@admin.register(KnowledgeEntry)
class KnowledgeEntryAdmin(admin.ModelAdmin):
    list_display = ["title", "kind", "path_type", "incident_link", "service_list", "embedding_provider", "updated_at"]
    list_filter = ["kind", "path_type", "embedding_provider", EmbeddedFilter]
    search_fields = ["title", "body"]
    raw_id_fields = ["incident"]
    readonly_fields = ["preview", "embedding_info", "path_type", "source_path", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["title", "kind", "body", "services", "tags"]}),
        ("Preview", {"fields": ["preview"]}),
        ("Origin", {"fields": ["path_type", "source_path", "incident", "approval_id", "created_at", "updated_at"]}),
        ("Embedding", {"fields": ["embedding_info"]}),
    ]
    actions = ["reembed_selected"]

    def get_queryset(self, request):
        # The list never shows the vector or the tsvector: don't fetch them for every row.
        return super().get_queryset(request).defer("embedding", "lexemes")

    @admin.display(description="Incident", ordering="incident_id")
    def incident_link(self, obj):
        return _incident_link(obj.incident_id)

    @admin.display(description="Services")
    def service_list(self, obj):
        return ", ".join(obj.services) or "-"

    @admin.display(description="Rendered")
    def preview(self, obj):
        if not obj.pk:
            return "Save to see the rendered Markdown."
        return format_html('<div class="quench-markdown" style="max-width:60em">{}</div>', render_markdown(obj.body))

    @admin.display(description="Vector")
    def embedding_info(self, obj):
        if not obj.pk:
            return "-"
        entry = KnowledgeEntry.objects.only("embedding", "embedding_provider", "embedding_dimension").get(pk=obj.pk)
        return _embedding_summary(entry.embedding, entry.embedding_provider, entry.embedding_dimension)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # An edited title or body must be findable by what it now says.
        reembed_entries([obj])

    @admin.action(description="Re-embed with the current provider", permissions=["change"])
    def reembed_selected(self, request, queryset):
        count = reembed_entries(list(queryset))
        self.message_user(request, f"Re-embedded {count} entries.", messages.SUCCESS)


class ResolvedFilter(admin.SimpleListFilter):
    title = "resolved"
    parameter_name = "resolved"

    def lookups(self, request, model_admin):
        return [("no", "Unresolved"), ("yes", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    """Audit rows: read-only, except that an engineer may replay them now."""

    list_display = ["id", "operation", "state", "attempts", "short_reason", "created_at", "last_attempt_at"]
    list_filter = [ResolvedFilter, "operation"]
    search_fields = ["reason"]
    readonly_fields = ["operation", "payload", "reason", "attempts", "created_at", "last_attempt_at", "resolved_at"]
    actions = ["retry_now"]

    @admin.display(description="State", ordering="resolved_at")
    def state(self, obj):
        label, colour = ("resolved", "#16a34a") if obj.resolved_at else ("unresolved", "#dc2626")
        return format_html('<span style="color:{};font-weight:600">{}</span>', colour, label)

    @admin.display(description="Reason")
    def short_reason(self, obj):
        return obj.reason if len(obj.reason) <= 100 else obj.reason[:99] + "…"

    @admin.action(description="Retry now", permissions=["change"])
    def retry_now(self, request, queryset):
        outcomes = [
            replay_dead_letter(pk) for pk in queryset.filter(resolved_at__isnull=True).values_list("pk", flat=True)
        ]
        resolved, failed = outcomes.count(True), outcomes.count(False)
        busy = outcomes.count(None)
        level = messages.SUCCESS if not failed else messages.WARNING
        text = f"{resolved} resolved, {failed} failed again"
        if busy:
            text += f", {busy} being retried elsewhere"
        self.message_user(request, text + ".", level)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(IncidentSignature)
class IncidentSignatureAdmin(ReadOnlyAdmin):
    """What each incident was embedded as; written by the embed task only."""

    list_display = ["incident_link", "embedding_provider", "short_text", "updated_at"]
    list_filter = ["embedding_provider"]
    search_fields = ["text", "incident__title"]
    list_select_related = ["incident"]
    fields = ["incident_link", "text", "embedding_info", "created_at", "updated_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).defer("embedding", "lexemes")

    @admin.display(description="Incident", ordering="incident_id")
    def incident_link(self, obj):
        return _incident_link(obj.incident_id)

    @admin.display(description="Signature")
    def short_text(self, obj):
        first_line = obj.text.splitlines()[0] if obj.text else ""
        return first_line[:120]

    @admin.display(description="Vector")
    def embedding_info(self, obj):
        return _embedding_summary(obj.embedding, obj.embedding_provider, None)

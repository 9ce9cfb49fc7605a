"""Admin pages for postmortems (editor with preview, review/publish, export, customer replies) and the dashboard."""

from __future__ import annotations

from functools import partial

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from incidents import analytics, charts, queue
from incidents.analytics import duration_text
from incidents.choices import PostmortemStatus
from incidents.models import CustomerReply, Incident, Postmortem
from incidents.postmortems import PostmortemRefused, mark_reviewed, publish, save_edit
from incidents.rendering import render_markdown

PREVIEW_MAX_CHARS = 200_000


class CustomerReplyInline(admin.StackedInline):
    """Draft answers to the customers who complained: edit, copy, send yourself (Quench never sends them)."""

    model = CustomerReply
    extra = 0
    can_delete = False
    fields = ["customer", "complaints", "body", "copy_button", "edited_by"]
    readonly_fields = ["customer", "complaints", "copy_button", "edited_by"]
    verbose_name_plural = "Customer replies (drafts: copy them into your support tool; Quench never sends them)"

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="Customer")
    def customer(self, obj):
        return f"{obj.customer_name} ({obj.customer_id})" if obj.customer_name else obj.customer_id

    @admin.display(description="")
    def copy_button(self, obj):
        return format_html(
            '<button type="button" class="button copy-reply" data-reply="{}">Copy reply</button>'
            ' <span class="copy-status" aria-live="polite"></span>',
            obj.pk,
        )


@admin.register(Postmortem)
class PostmortemAdmin(admin.ModelAdmin):
    list_display = ["incident_link", "title", "status", "narrative_by", "drafted_at", "updated_at"]
    list_filter = ["status"]
    search_fields = ["title", "body", "=incident__id"]
    list_select_related = ["incident"]
    fields = [
        "incident_link",
        "status",
        "title",
        "body",
        "generated_sections",
        "narrative_by",
        "drafted_by",
        "drafted_at",
        "edited_by",
        "reviewed_by",
        "reviewed_at",
        "published_by",
        "published_at",
    ]
    readonly_fields = [field for field in fields if field not in ("title", "body")]
    inlines = [CustomerReplyInline]

    def has_add_permission(self, request):
        return False  # drafted from an incident (its page's button, or on resolution)

    @admin.display(description="Incident", ordering="incident")
    def incident_link(self, obj):
        return format_html(
            '<a href="{}">#{} {}</a>',
            reverse("admin:incidents_incident_change", args=[obj.incident_id]),
            obj.incident_id,
            obj.incident.title[:80],
        )

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "body":
            field.widget.attrs.update({"rows": 30, "style": "width:100%;font-family:monospace", "id": "id_body"})
        return field

    def save_model(self, request, obj, form, change):
        save_edit(obj, actor=request.user.get_username())

    def save_formset(self, request, form, formset, change):
        replies = formset.save(commit=False)
        for reply in replies:
            reply.edited_by = request.user.get_username()
            reply.save()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        postmortem = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if postmortem is not None:
            context.update(
                {
                    "preview_html": render_markdown(postmortem.body),
                    "markdown_url": reverse("incident-postmortem-markdown", args=[postmortem.incident_id]),
                }
            )
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("preview/", wrap(require_POST(self.preview_view)), name="incidents_postmortem_preview"),
            path(
                "<int:postmortem_id>/review/",
                wrap(require_POST(partial(self.step_view, mark_reviewed))),
                name="incidents_postmortem_review",
            ),
            path(
                "<int:postmortem_id>/publish/",
                wrap(require_POST(partial(self.step_view, publish))),
                name="incidents_postmortem_publish",
            ),
            path(
                "<int:postmortem_id>/redraft/",
                wrap(require_POST(self.redraft_view)),
                name="incidents_postmortem_redraft",
            ),
            path("<int:postmortem_id>/print/", wrap(self.print_view), name="incidents_postmortem_print"),
        ] + super().get_urls()

    # The POST-only views are wrapped in require_POST where their URLs are made (get_urls).
    def preview_view(self, request):
        """The editor's "Preview" button: the Markdown being edited, rendered and sanitized (nothing saved)."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        text = request.POST.get("body", "")
        if len(text) > PREVIEW_MAX_CHARS:
            return HttpResponse(f"Too long to preview ({len(text)} characters).", status=413)
        return HttpResponse(render_markdown(text), content_type="text/html; charset=utf-8")

    def step_view(self, step, request, postmortem_id: int):
        """Mark reviewed / publish (POST), then back to the postmortem."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        get_object_or_404(Postmortem, pk=postmortem_id)
        try:
            postmortem = step(postmortem_id, actor=request.user.get_username())
        except PostmortemRefused as exc:
            self.message_user(request, exc.message, messages.WARNING)
        else:
            self.message_user(request, f"Postmortem #{postmortem.pk} is now {postmortem.get_status_display().lower()}.")
        return redirect("admin:incidents_postmortem_change", postmortem_id)

    def redraft_view(self, request, postmortem_id: int):
        """Rewrite a draft from the records (in the queue: the narrative may be an LLM call)."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        postmortem = get_object_or_404(Postmortem, pk=postmortem_id)
        if postmortem.status != PostmortemStatus.DRAFT:
            self.message_user(request, "Only a draft can be redrafted.", messages.WARNING)
        else:
            queue.enqueue_postmortem_draft(postmortem.incident_id, actor=request.user.get_username(), redraft=True)
            self.message_user(request, "Redrafting from the records; reload this page in a moment.")
        return redirect("admin:incidents_postmortem_change", postmortem_id)

    def print_view(self, request, postmortem_id: int):
        """A printable page of the postmortem: just the document, no admin chrome."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        postmortem = get_object_or_404(Postmortem.objects.select_related("incident"), pk=postmortem_id)
        return TemplateResponse(
            request,
            "admin/incidents/postmortem/print.html",
            {"postmortem": postmortem, "body_html": render_markdown(postmortem.body)},
        )


# --- the incident page's "Postmortem" button ---------------------------------------------------


def draft_postmortem_view(model_admin, request, incident_id: int):
    """Draft the incident's postmortem on demand (queued), or open the existing one."""
    if not model_admin.has_change_permission(request):
        raise PermissionDenied
    incident = get_object_or_404(Incident, pk=incident_id)
    existing = Postmortem.objects.filter(incident=incident).first()
    if existing is not None:
        return redirect("admin:incidents_postmortem_change", existing.pk)
    queue.enqueue_postmortem_draft(incident.pk, actor=request.user.get_username())
    model_admin.message_user(request, f"Drafting the postmortem of incident #{incident.pk}; reload in a moment.")
    return redirect("admin:incidents_incident_change", incident.pk)


def incident_postmortem_urls(model_admin) -> list:
    wrap = model_admin.admin_site.admin_view
    return [
        path(
            "<int:incident_id>/postmortem/",
            wrap(require_POST(partial(draft_postmortem_view, model_admin))),
            name="incidents_incident_postmortem",
        ),
        path("dashboard/", wrap(partial(dashboard_view, model_admin)), name="incidents_dashboard"),
    ]


# --- the dashboard -------------------------------------------------------------------------------

DASHBOARD_WINDOWS = (7, 30, 90)


def dashboard_view(model_admin, request):
    """Trends of the last 7/30/90 days as server-side SVG charts (readable in light and dark mode)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    try:
        days = int(request.GET.get("days", 30))
    except ValueError:
        days = 30
    if days not in DASHBOARD_WINDOWS:
        days = 30
    data = analytics.figures(days)
    by_day = data["incidents"]["by_day"]
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Dashboard: the last {days} days",
        "opts": model_admin.model._meta,
        "days": days,
        "windows": DASHBOARD_WINDOWS,
        "figures": data,
        "mtta_text": duration_text(data["mtta_seconds"]),
        "mttr_text": duration_text(data["mttr_seconds"]),
        "incidents_chart": charts.stacked_bars(
            [row["date"][5:] for row in by_day],
            {severity: [row[severity] for row in by_day] for severity in ("P0", "P1", "P2", "P3")},
            colours=charts.SEVERITY_COLOURS,
            title="Incidents per day by severity",
        ),
        "trend_chart": charts.lines(
            [row["date"][5:] for row in data["trend"]],
            {
                "MTTA (min)": [
                    None if row["mtta_seconds"] is None else row["mtta_seconds"] / 60 for row in data["trend"]
                ],
                "MTTR (min)": [
                    None if row["mttr_seconds"] is None else row["mttr_seconds"] / 60 for row in data["trend"]
                ],
            },
            title="MTTA and MTTR per day (minutes)",
        ),
        "endings_chart": charts.hbars(
            [(name.replace("_", " "), count) for name, count in data["endings"].items()], title="How incidents ended"
        ),
        "approvals_chart": charts.hbars(
            [(name, count) for name, count in data.get("approvals", {}).items()], title="Approvals"
        ),
        "attempts_chart": charts.hbars(
            [
                (f"{bucket} attempt(s)", count)
                for bucket, count in data.get("fix_attempts", {}).get("distribution", {}).items()
            ],
            title="Fix attempts per incident",
        ),
        "fingerprints_chart": charts.hbars(
            [(f"#{row['incident_id']} {row['title'][:40]}", row["events"]) for row in data["noisiest_fingerprints"]],
            title="Noisiest fingerprints (events)",
        ),
        "services_chart": charts.hbars(
            [(row["service"] or "(no service)", row["events"]) for row in data["noisiest_services"]],
            title="Noisiest services (events)",
        ),
    }
    return TemplateResponse(request, "admin/incidents/dashboard.html", context)

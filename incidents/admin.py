"""The incidents admin: the on-call engineer's main screen."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from incidents import queue
from incidents.admin_postmortems import incident_postmortem_urls
from incidents.choices import IncidentStatus, IntegrationKind, Severity
from incidents.fingerprinting import TemplateBook
from incidents.models import (
    Activity,
    ClassificationRule,
    Complaint,
    Event,
    FingerprintRule,
    Incident,
    Integration,
    LearnedTemplates,
    LogSource,
    Postmortem,
    Silence,
    WatchdogCondition,
)
from incidents.services import TransitionRefused, acknowledge_incident, resolve_incident

SEVERITY_COLOURS = {Severity.P0: "#7f1d1d", Severity.P1: "#dc2626", Severity.P2: "#d97706", Severity.P3: "#2563eb"}
STATUS_COLOURS = {
    IncidentStatus.TRIGGERED: "#dc2626",
    IncidentStatus.REGRESSED: "#9333ea",
    IncidentStatus.ESCALATED: "#7f1d1d",
    IncidentStatus.RESOLVED: "#16a34a",
    IncidentStatus.SUPPRESSED: "#6b7280",
}


def badge(text: str, colour: str):
    return format_html(
        '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;font-weight:600;'
        'white-space:nowrap">{}</span>',
        colour,
        text,
    )


def _endpoint(kind: str) -> str:
    return {IntegrationKind.EVENTS_V2: "events-v2", IntegrationKind.GENERIC: "events"}.get(kind, kind)


class ReadOnlyAdmin(admin.ModelAdmin):
    """An audit record: listed and inspected in the admin, never added, edited or deleted there."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "enabled", "token_hint", "default_service", "last_used_at", "created_at"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "default_service"]
    readonly_fields = ["token_hint", "created_at", "token_rotated_at", "last_used_at", "webhook_url", "sentry_dsn"]
    actions = ["rotate_tokens"]

    @admin.display(description="Webhook URL")
    def webhook_url(self, obj):
        if not obj.kind:
            return "-"
        return f"{settings.SITE_URL}/api/v1/ingest/{_endpoint(obj.kind)}"

    @admin.display(description="Sentry SDK DSN")
    def sentry_dsn(self, obj):
        if not obj.dsn:
            return "-" if obj.kind != IntegrationKind.SENTRY else "Save the integration to get its DSN."
        return format_html("<code>{}</code><br>sentry_sdk.init(dsn=&quot;{}&quot;)", obj.dsn, obj.dsn)

    def save_model(self, request, obj, form, change):
        if not change:
            # The raw token exists only in this request: it is shown once and never stored.
            request._quench_new_tokens = [(obj, obj.set_new_token())]
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        tokens = getattr(request, "_quench_new_tokens", None)
        if tokens:
            return self._token_page(request, tokens, created=True)
        return super().response_add(request, obj, post_url_continue)

    @admin.action(description="Rotate token (the old one stops working)", permissions=["change"])
    def rotate_tokens(self, request, queryset):
        from django.utils import timezone

        from incidents.api.authentication import clear_token_cache

        tokens = []
        for integration in queryset:
            raw = integration.set_new_token()
            integration.token_rotated_at = timezone.now()
            integration.save(update_fields=["token_hash", "token_hint", "token_rotated_at"])
            tokens.append((integration, raw))
        clear_token_cache()
        return self._token_page(request, tokens, created=False)

    def _token_page(self, request, tokens, *, created: bool):
        context = {
            **self.admin_site.each_context(request),
            "title": "Integration token" if len(tokens) == 1 else "Integration tokens",
            "opts": self.model._meta,
            "created": created,
            "tokens": [
                {
                    "integration": integration,
                    "token": raw,
                    "url": self.webhook_url(integration),
                    "dsn": integration.dsn,
                }
                for integration, raw in tokens
            ],
        }
        response = TemplateResponse(request, "admin/incidents/integration/token.html", context)
        response["Cache-Control"] = "no-store"
        return response


class ActivityInline(admin.TabularInline):
    model = Activity
    extra = 0
    can_delete = False
    fields = ["created_at", "kind", "message", "actor", "from_status", "to_status"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]
    verbose_name_plural = "Timeline"

    def has_add_permission(self, request, obj=None):
        return False


class RecentEventInline(admin.TabularInline):
    model = Event
    extra = 0
    can_delete = False
    fields = ["event_link", "received_at", "source", "outcome", "status", "title", "severity"]
    readonly_fields = fields
    verbose_name_plural = "Recent events (latest 20)"
    show_change_link = False

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        incident_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        if not incident_id:
            return queryset.none()
        ids = list(queryset.filter(incident_id=incident_id).order_by("-received_at").values_list("pk", flat=True)[:20])
        return queryset.filter(pk__in=ids).order_by("-received_at")

    @admin.display(description="Event")
    def event_link(self, obj):
        return format_html('<a href="../../../event/{}/change/">#{}</a>', obj.pk, obj.pk)

    def has_add_permission(self, request, obj=None):
        return False


class AffectedCustomerInline(admin.TabularInline):
    """Who complained about the incident: one row per customer, showing their latest complaint."""

    model = Complaint
    fk_name = "incident"
    extra = 0
    can_delete = False
    fields = ["customer", "complaint_count", "reported_at", "channel", "latest_message", "correlation"]
    readonly_fields = fields
    verbose_name = "affected customer"
    verbose_name_plural = "Affected customers (latest complaint of each, 50 most recent)"
    MAX_ROWS = 50

    def get_queryset(self, request):
        from incidents.complaints import affected_customers

        queryset = super().get_queryset(request)
        incident_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        if not incident_id:
            return queryset.none()
        # One summary query for the counts; the inline instance lives for this request only.
        self._customers = {row["customer_id"]: row for row in affected_customers(incident_id)[: self.MAX_ROWS]}
        latest = (
            queryset.filter(incident_id=incident_id, customer_id__in=list(self._customers))
            .order_by("customer_id", "-reported_at", "-id")
            .distinct("customer_id")
            .values("pk")
        )
        return queryset.filter(pk__in=latest).order_by("-reported_at", "-id")

    @admin.display(description="Customer")
    def customer(self, obj):
        # The name from any of their complaints: the latest one may not carry it.
        name = getattr(self, "_customers", {}).get(obj.customer_id, {}).get("customer_name") or obj.customer_name
        return f"{name} ({obj.customer_id})" if name else obj.customer_id

    @admin.display(description="Latest complaint")
    def latest_message(self, obj):
        return obj.message[:300] + ("…" if len(obj.message) > 300 else "")

    @admin.display(description="Complaints")
    def complaint_count(self, obj):
        count = getattr(self, "_customers", {}).get(obj.customer_id, {}).get("complaints", 1)
        return format_html(
            '<a href="../../../complaint/?incident__id__exact={}&customer_id={}">{}</a>',
            obj.incident_id,
            obj.customer_id,
            count,
        )

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "severity_badge",
        "status_badge",
        "title",
        "service",
        "category",
        "event_count",
        "regression_count",
        "last_seen",
    ]
    list_display_links = ["id", "title"]
    list_filter = ["status", "severity", "category", "source", "kind", "environment"]
    search_fields = ["title", "service", "exception_type", "alertname", "=fingerprint"]
    list_select_related = ["integration"]
    date_hierarchy = "last_seen"
    actions = ["acknowledge_selected", "resolve_selected", "draft_postmortems"]
    # What the apps above add to this page, registered in their AppConfig.ready() (incidents
    # never imports them): template-context panels `(incident, request) -> dict`, URL
    # patterns `(model_admin) -> [path]`, and bulk actions that change incidents.
    page_panels: list = []
    extra_urls: list = []
    extra_actions: list = []
    inlines = [ActivityInline, RecentEventInline, AffectedCustomerInline]
    fieldsets = [
        (None, {"fields": ["title", "status", "severity", "severity_reason", "category", "service", "environment"]}),
        (
            "Occurrences",
            {"fields": ["event_count", "frequency_display", "regression_count", "first_seen", "last_seen"]},
        ),
        (
            "What fired",
            {
                "fields": [
                    "kind",
                    "source",
                    "integration",
                    "alertname",
                    "exception_type",
                    "culprit",
                    "route",
                    "labels",
                    "message",
                    "latest_traceback",
                ]
            },
        ),
        (
            "Fingerprint",
            {
                "fields": [
                    "fingerprint",
                    "fingerprint_version",
                    "fingerprint_strategy",
                    "fingerprint_display",
                    "dedup_key",
                ]
            },
        ),
        ("Lifecycle", {"fields": ["acknowledged_at", "resolved_at", "regressed_at", "last_wakeup_at"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        # Status changes go through the state machine (actions), never through a form field.
        return [field for fieldset in self.fieldsets for field in fieldset[1]["fields"] if field != "severity"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="Severity", ordering="severity")
    def severity_badge(self, obj):
        return badge(obj.severity, SEVERITY_COLOURS.get(obj.severity, "#6b7280"))

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return badge(obj.get_status_display(), STATUS_COLOURS.get(obj.status, "#0f766e"))

    @admin.display(description="Frequency")
    def frequency_display(self, obj):
        frequency = obj.frequency()
        return f"{frequency['1h']} in the last hour · {frequency['24h']} in 24 h · {frequency['7d']} in 7 days"

    @admin.display(description="Latest traceback")
    def latest_traceback(self, obj):
        event = obj.events.exclude(traceback="").only("traceback", "received_at").first()
        if event is None:
            return "-"
        return format_html(
            '<pre style="white-space:pre-wrap;max-height:32em;overflow:auto;margin:0">{}</pre>'
            '<div class="help">from event #{} at {}</div>',
            event.traceback,
            event.pk,
            event.received_at.strftime("%Y-%m-%d %H:%M:%S %Z"),
        )

    @admin.display(description="Components")
    def fingerprint_display(self, obj):
        rows = format_html_join(
            "",
            "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            (
                (
                    component.get("name", ""),
                    "✔ contributes" if component.get("contributes") else "– ignored",
                    ", ".join(str(value) for value in component.get("values", []))[:300],
                    component.get("hint", ""),
                )
                for component in obj.fingerprint_components or []
            ),
        )
        return format_html(
            '<table class="fingerprint-components"><thead><tr><th>Component</th><th>Used</th><th>Values</th>'
            "<th>Why</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        incident = self.get_object(request, object_id)
        panels = {}
        if incident is not None:
            panels["postmortem"] = Postmortem.objects.filter(incident=incident).first()
            for panel in self.page_panels:
                panels.update(panel(incident, request))
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **panels})

    def get_urls(self):
        own = incident_postmortem_urls(self)  # the postmortem button and the dashboard
        return own + [url for add_urls in self.extra_urls for url in add_urls(self)] + super().get_urls()

    def get_actions(self, request):
        actions = super().get_actions(request)
        if actions is not None and self.has_change_permission(request):
            for action in self.extra_actions:
                actions[action.__name__] = (action, action.__name__, action.short_description)
        return actions

    def save_model(self, request, obj, form, change):
        if change and "severity" in form.changed_data:
            from incidents.services.lifecycle import change_severity

            change_severity(obj.pk, obj.severity, actor=request.user.get_username())
            return
        super().save_model(request, obj, form, change)

    def _act(self, request, queryset, service_function, verb: str):
        done, refused = 0, []
        for incident_id in queryset.values_list("pk", flat=True):
            try:
                service_function(incident_id, actor=request.user.get_username())
                done += 1
            except TransitionRefused as exc:
                refused.append(exc.message)
        if done:
            self.message_user(request, f"{verb} {done} incident(s).", messages.SUCCESS)
        for reason in refused:
            self.message_user(request, reason, messages.WARNING)

    @admin.action(description="Acknowledge selected incidents", permissions=["change"])
    def acknowledge_selected(self, request, queryset):
        self._act(request, queryset, acknowledge_incident, "Acknowledged")

    @admin.action(description="Resolve selected incidents", permissions=["change"])
    def resolve_selected(self, request, queryset):
        self._act(request, queryset, resolve_incident, "Resolved")

    @admin.action(description="Draft postmortems for selected incidents", permissions=["change"])
    def draft_postmortems(self, request, queryset):
        """Queue a draft for each selected incident that has no postmortem yet (the narrative may be an LLM call)."""
        missing = list(queryset.filter(postmortem__isnull=True).values_list("pk", flat=True))
        for incident_id in missing:
            queue.enqueue_postmortem_draft(incident_id, actor=request.user.get_username())
        skipped = queryset.count() - len(missing)
        self.message_user(
            request,
            f"Drafting {len(missing)} postmortem(s); reload in a moment."
            + (f" {skipped} incident(s) already have one." if skipped else ""),
        )


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    """Events are an audit record: read-only."""

    list_display = ["id", "received_at", "source", "outcome", "status", "title", "incident_link"]
    list_filter = ["source", "outcome", "status", "kind"]
    search_fields = ["title", "source_id", "exception_type", "trace_id"]
    list_select_related = ["incident"]
    raw_id_fields = ["incident", "integration", "log_source"]
    date_hierarchy = "received_at"

    @admin.display(description="Incident")
    def incident_link(self, obj):
        return format_html(
            '<a href="../incident/{}/change/">#{} {}</a>', obj.incident_id, obj.incident_id, obj.incident.title[:60]
        )


@admin.register(Silence)
class SilenceAdmin(admin.ModelAdmin):
    list_display = [
        "comment",
        "active",
        "match_service",
        "match_alertname",
        "match_fingerprint",
        "starts_at",
        "ends_at",
    ]
    search_fields = ["comment", "match_service", "match_alertname", "match_fingerprint"]
    readonly_fields = ["created_by", "created_at"]

    @admin.display(boolean=True)
    def active(self, obj):
        return obj.is_active()

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user.get_username()
        super().save_model(request, obj, form, change)


@admin.register(ClassificationRule)
class ClassificationRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "position", "enabled", "category", "severity_override", "match_alertname", "match_message"]
    list_editable = ["position", "enabled"]
    list_filter = ["enabled", "category", "severity_override"]
    search_fields = ["name", "category", "match_alertname", "match_message"]


@admin.register(FingerprintRule)
class FingerprintRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "position", "enabled", "service", "alertname", "exception_type", "group_by", "static_key"]
    list_editable = ["position", "enabled"]
    search_fields = ["name", "service", "alertname", "exception_type"]


@admin.register(LogSource)
class LogSourceAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "path",
        "service",
        "enabled",
        "offset",
        "lines_read",
        "signals_sent",
        "last_tailed_at",
        "last_error",
    ]
    list_filter = ["enabled"]
    search_fields = ["name", "path", "service"]
    readonly_fields = ["offset", "inode", "device", "lines_read", "signals_sent", "last_tailed_at", "last_error"]
    actions = ["tail_now"]

    @admin.action(description="Read new lines now", permissions=["change"])
    def tail_now(self, request, queryset):
        from incidents.logtail import tail_log_source

        for source in queryset:
            result = tail_log_source(source.pk)
            level = messages.WARNING if result.error else messages.SUCCESS
            self.message_user(
                request, f"{source.name}: {result.lines} lines, {result.signals} signals {result.error}".strip(), level
            )


class ComplaintLinkedFilter(admin.SimpleListFilter):
    title = "linked to an incident"
    parameter_name = "linked"

    def lookups(self, request, model_admin):
        return [("yes", "Linked"), ("no", "Not linked")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(incident__isnull=self.value() == "no")
        return queryset


class ComplaintImpactFilter(admin.SimpleListFilter):
    title = "impact"
    parameter_name = "impact"

    def lookups(self, request, model_admin):
        from incidents.complaints import IMPACT_PATTERNS

        return [(kind, kind.capitalize()) for kind in IMPACT_PATTERNS]

    def queryset(self, request, queryset):
        return queryset.filter(keywords__contains=[self.value()]) if self.value() else queryset


@admin.register(Complaint)
class ComplaintAdmin(ReadOnlyAdmin):
    """What customers reported, and the incident each was linked to: a record, not edited here."""

    list_display = ["reported_at", "customer", "service", "channel", "incident_link", "keywords_display", "excerpt"]
    list_filter = [ComplaintLinkedFilter, ComplaintImpactFilter, "channel", "service", "integration"]
    search_fields = ["customer_id", "customer_name", "message", "=source_id"]
    list_select_related = ["incident"]
    raw_id_fields = ["incident", "integration"]
    date_hierarchy = "reported_at"

    def has_delete_permission(self, request, obj=None):
        # Deleting stays possible (with the permission) so a customer's data can be erased on request.
        return admin.ModelAdmin.has_delete_permission(self, request, obj)

    @admin.display(description="Customer", ordering="customer_id")
    def customer(self, obj):
        return f"{obj.customer_name} ({obj.customer_id})" if obj.customer_name else obj.customer_id

    @admin.display(description="Incident", ordering="incident")
    def incident_link(self, obj):
        if obj.incident_id is None:
            return "-"
        return format_html(
            '<a href="../incident/{}/change/">#{} {}</a>', obj.incident_id, obj.incident_id, obj.incident.title[:60]
        )

    @admin.display(description="Impact")
    def keywords_display(self, obj):
        return ", ".join(obj.keywords) or "-"

    @admin.display(description="Message")
    def excerpt(self, obj):
        return obj.message[:120] + ("…" if len(obj.message) > 120 else "")


@admin.register(LearnedTemplates)
class LearnedTemplatesAdmin(ReadOnlyAdmin):
    """What each service's log grouping has learned: read-only (ingestion alone writes it, under a row lock)."""

    list_display = ["service", "template_count", "variant_count", "learned_variables", "updated_at"]
    search_fields = ["service"]
    fields = ["service", "template_count", "variant_count", "updated_at", "learned_patterns"]
    readonly_fields = fields

    @admin.display(description="Learned variables")
    def learned_variables(self, obj):
        return len(TemplateBook.from_state(obj.state).learned())

    @admin.display(description="Groups with learned variables (key, then pattern)")
    def learned_patterns(self, obj):
        learned = TemplateBook.from_state(obj.state).learned()
        if not learned:
            return "None yet."
        return format_html_join(
            "", "<p><code>{}</code><br><code>{}</code></p>", ((key, pattern) for key, pattern in learned[:200])
        )


@admin.register(WatchdogCondition)
class WatchdogConditionAdmin(ReadOnlyAdmin):
    """The watchdog's last verdict on each condition (see incidents.watchdog): a record, not edited here."""

    list_display = ["name", "failing", "problem", "since", "checked_at", "incident_link"]
    list_filter = ["failing"]

    @admin.display(description="Incident")
    def incident_link(self, obj):
        if obj.incident_id is None:
            return "-"
        return format_html('<a href="../incident/{}/change/">#{}</a>', obj.incident_id, obj.incident_id)

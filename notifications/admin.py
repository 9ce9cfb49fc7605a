"""Admin for channels (secrets masked, send test), the outbox (resend dead ones) and delivery attempts."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html

from notifications import services, vault
from notifications.choices import ROUTABLE_EVENTS, NotificationStatus
from notifications.models import CONFIG_HELP, SECRET_KEYS, Channel, Delivery, Notification, UsedActionLink


class ChannelForm(forms.ModelForm):
    """Edits a channel's config without ever showing a stored secret.

    A secret key shows `********` (kept as it is when left so), `env:NAME` for an
    environment reference; typing a new value stores it encrypted, "env:NAME" stores a
    reference, an empty string removes it.
    """

    config = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80, "spellcheck": "false"}),
        help_text="JSON. "
        + " · ".join(f"{kind}: {example}" for kind, example in CONFIG_HELP.items())
        + '. Secrets: type the value (stored encrypted) or "env:VARIABLE"; ******** keeps the stored one.',
    )
    events = forms.MultipleChoiceField(
        choices=[(event, event.replace("_", " ")) for event in ROUTABLE_EVENTS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: all events.",
    )

    class Meta:
        model = Channel
        fields = ["name", "kind", "enabled", "config", "min_severity", "services", "events", "is_escalation"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["config"] = self.instance.public_config()

    def clean_config(self):
        submitted = self.cleaned_data.get("config") or {}
        if not isinstance(submitted, dict):
            raise forms.ValidationError("Must be a JSON object.")
        kind = self.cleaned_data.get("kind") or self.instance.kind
        stored = dict(self.instance.config or {}) if self.instance.pk else {}
        result = {}
        for key, value in submitted.items():
            if key in SECRET_KEYS.get(kind, ()):
                if value == vault.MASK and key in stored:
                    result[key] = stored[key]  # unchanged: keep what is stored
                elif (kept := vault.stored_form(value)) is not None:
                    result[key] = kept
            else:
                result[key] = value
        return result


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = [
        "name",
        "kind",
        "enabled_display",
        "min_severity",
        "routing_display",
        "is_escalation",
        "sent",
        "dead",
    ]
    list_filter = ["kind", "enabled", "is_escalation"]
    search_fields = ["name"]
    readonly_fields = ["disabled_reason", "disabled_at", "created_at", "updated_at"]
    actions = ["send_test", "enable_channels"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                sent_count=Count("notifications", filter=Q(notifications__status=NotificationStatus.SENT)),
                dead_count=Count("notifications", filter=Q(notifications__status=NotificationStatus.DEAD)),
            )
        )

    @admin.display(description="Enabled", boolean=False, ordering="enabled")
    def enabled_display(self, obj):
        if obj.enabled:
            return format_html('<span style="color:{}">yes</span>', "#16A34A")
        return format_html(
            '<span style="color:#B91C1C" title="{}">no: {}</span>',
            obj.disabled_reason,
            obj.disabled_reason[:80] or "off",
        )

    @admin.display(description="Routing")
    def routing_display(self, obj):
        events = ", ".join(obj.events) if obj.events else "all events"
        services_ = ", ".join(obj.services) if obj.services else "all services"
        return f"{events}; {services_}"

    @admin.display(description="Sent", ordering="sent_count")
    def sent(self, obj):
        return obj.sent_count

    @admin.display(description="Dead", ordering="dead_count")
    def dead(self, obj):
        if not obj.dead_count:
            return 0
        url = (
            reverse("admin:notifications_notification_changelist") + f"?channel__id__exact={obj.pk}&status__exact=dead"
        )
        return format_html('<a href="{}" style="color:#B91C1C">{}</a>', url, obj.dead_count)

    @admin.action(description="Send a test message")
    def send_test(self, request, queryset):
        for channel in queryset:
            services.send_test(channel.pk)
        messages.success(
            request,
            f"Test queued for {queryset.count()} channel(s); see Notifications for how each delivery went.",
        )

    @admin.action(description="Enable (after fixing what disabled them)")
    def enable_channels(self, request, queryset):
        count = queryset.update(enabled=True, disabled_reason="", disabled_at=None)
        messages.success(request, f"{count} channel(s) enabled.")


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = [
        "attempt",
        "status",
        "response_code",
        "duration_ms",
        "error",
        "response_body",
        "next_retry_at",
        "created_at",
    ]
    readonly_fields = fields
    ordering = ["attempt"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "event",
        "channel",
        "incident_link",
        "status_display",
        "attempts",
        "next_attempt_at",
        "last_error_short",
        "created_at",
    ]
    list_filter = ["status", "event", "channel"]
    list_select_related = ["channel"]
    search_fields = ["dedup_key", "incident__title"]
    raw_id_fields = ["incident", "approval", "execution", "diagnosis"]
    inlines = [DeliveryInline]
    actions = ["resend_notifications"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Notification._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.display(description="Incident")
    def incident_link(self, obj):
        if obj.incident_id is None:
            return "–"
        return format_html(
            '<a href="{}">#{}</a>', reverse("admin:incidents_incident_change", args=[obj.incident_id]), obj.incident_id
        )

    @admin.display(description="Status", ordering="status")
    def status_display(self, obj):
        colour = {"sent": "#16A34A", "dead": "#B91C1C", "retrying": "#CA8A04", "skipped": "#6B7280"}.get(
            obj.status, "#2563EB"
        )
        return format_html('<strong style="color:{}">{}</strong>', colour, obj.get_status_display())

    @admin.display(description="Last error")
    def last_error_short(self, obj):
        return obj.last_error[:120]

    @admin.action(description="Resend (dead or skipped only)")
    def resend_notifications(self, request, queryset):
        resent = sum(services.resend(pk) for pk in queryset.values_list("pk", flat=True))
        messages.success(request, f"{resent} notification(s) queued again.")


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "notification", "attempt", "status", "response_code", "duration_ms", "error", "created_at"]
    list_filter = ["status"]
    list_select_related = ["notification__channel"]
    raw_id_fields = ["notification"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Delivery._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(UsedActionLink)
class UsedActionLinkAdmin(admin.ModelAdmin):
    list_display = ["action", "object_id", "used_by", "used_at"]
    readonly_fields = ["token_digest", "action", "object_id", "used_by", "used_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def incident_notifications_panel(incident, request) -> dict:
    """Incident page: who was told what and how each delivery went (for users who may view notifications)."""
    if not request.user.has_perm("notifications.view_notification"):
        return {"incident_notifications": None}
    rows = Notification.objects.filter(incident=incident).select_related("channel").order_by("created_at")[:50]
    return {"incident_notifications": list(rows)}

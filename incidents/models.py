"""The incident record and everything around it: sources, events, timeline, rules."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from incidents.choices import (
    ActivityKind,
    EventOutcome,
    IncidentStatus,
    IntegrationKind,
    LogLevel,
    PostmortemStatus,
    Severity,
)

TOKEN_PREFIX = "qk_"


def hash_token(raw_token: str) -> str:
    """Tokens are long random strings, so one round of SHA-256 is enough (no dictionary to attack)."""
    return hashlib.sha256(raw_token.encode()).hexdigest()


def _validate_regex(value: str, field: str) -> None:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValidationError({field: f"Not a valid regular expression: {exc}."}) from None


def _validate_label_matchers(value, field: str) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValidationError({field: 'Must be an object of label name → regular expression, e.g. {"env": "prod"}.'})
    for pattern in value.values():
        _validate_regex(pattern, field)


LAST_USED_RESOLUTION_SECONDS = 60


class Integration(models.Model):
    """A monitoring source allowed to post alerts, with its own token (stored hashed)."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=IntegrationKind.choices)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_hint = models.CharField(
        max_length=12, editable=False, help_text="The token's first characters, to tell tokens apart."
    )
    enabled = models.BooleanField(default=True)
    default_service = models.CharField(
        max_length=200, blank=True, help_text="Used when an alert does not name its service."
    )
    default_environment = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    token_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The DSN's public key of a Sentry integration. Sentry SDKs send it in clear with every
    # event, so it is stored as is (and shown in the admin); it is not the token, whose
    # hash alone is kept, and it only allows posting events to this integration.
    public_key = models.CharField(max_length=32, unique=True, null=True, blank=True, editable=False)
    rate_limit_per_minute = models.PositiveIntegerField(
        default=0,
        blank=True,
        help_text="Most events per minute accepted from this integration's Sentry SDKs; "
        "0 uses QUENCH_INGEST_RATE_LIMIT_PER_MINUTE. Above it, SDKs get Sentry's 429 and back off.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def save(self, *args, **kwargs):
        if self.kind == IntegrationKind.SENTRY and not self.public_key:
            self.public_key = secrets.token_hex(16)
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "public_key"}
        super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        if self.rate_limit_per_minute is None:  # a cleared admin field means "the default"
            self.rate_limit_per_minute = 0

    @property
    def dsn(self) -> str:
        """The Sentry DSN that points a stock Sentry SDK at this integration ("" for other kinds).

        The project id is the integration's id; the host is QUENCH's public URL.
        """
        return self.dsn_for(settings.SITE_URL)

    def dsn_for(self, base_url: str) -> str:
        """The DSN for a Quench reached at `base_url` (scheme and host, e.g. "http://127.0.0.1:8000")."""
        if not self.public_key or self.pk is None:
            return ""
        scheme, _, rest = base_url.rstrip("/").partition("://")
        return f"{scheme}://{self.public_key}@{rest}/{self.pk}"

    def touch(self) -> None:
        """Record that the integration is in use: `last_used_at`, written at most once a minute.

        Every authenticated request calls this; one UPDATE per request would cost more than
        the request, and "in use" needs no finer clock.
        """
        now = timezone.now()
        if self.last_used_at is None or (now - self.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS:
            self.last_used_at = now
            Integration.objects.filter(pk=self.pk).update(last_used_at=now)

    def events_per_minute_limit(self) -> int:
        """The per-minute event limit in force for this integration; 0 means none."""
        return self.rate_limit_per_minute or settings.QUENCH_INGEST_RATE_LIMIT_PER_MINUTE

    def set_new_token(self) -> str:
        """Give the integration a fresh token and return it; only its hash is kept."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.token_hash = hash_token(raw)
        self.token_hint = raw[:10]
        return raw


class Incident(models.Model):
    """One deduplicated problem: every event with the same fingerprint lands here."""

    fingerprint = models.CharField(max_length=64, db_index=True)
    fingerprint_version = models.PositiveSmallIntegerField()
    fingerprint_strategy = models.CharField(max_length=120)
    fingerprint_components = models.JSONField(default=list, help_text="Which components made the fingerprint, and why.")
    title = models.CharField(max_length=500)
    message = models.TextField(blank=True)
    kind = models.CharField(max_length=10)
    source = models.CharField(max_length=20, help_text="The kind of source that opened it.")
    integration = models.ForeignKey(Integration, null=True, blank=True, on_delete=models.SET_NULL)
    service = models.CharField(max_length=200, blank=True, db_index=True)
    service_record = models.ForeignKey(
        "remediation.Service",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="incidents",
        help_text="The Service record named like `service`, linked when it is diagnosed or the service is saved.",
    )
    environment = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=20, choices=IncidentStatus.choices, default=IncidentStatus.TRIGGERED)
    severity = models.CharField(max_length=2, choices=Severity.choices, default=Severity.P2)
    severity_reason = models.CharField(max_length=300, blank=True)
    category = models.CharField(max_length=60, blank=True, db_index=True)
    alertname = models.CharField(max_length=200, blank=True)
    exception_type = models.CharField(max_length=200, blank=True)
    culprit = models.CharField(max_length=500, blank=True, help_text="Deepest in-app frame: module.function.")
    route = models.CharField(max_length=500, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    dedup_key = models.CharField(max_length=255, blank=True)
    open_alert_keys = models.JSONField(
        default=list, blank=True, editable=False, help_text="Alerts of this incident still firing at their source."
    )
    event_count = models.PositiveBigIntegerField(default=0)
    regression_count = models.PositiveIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    # Current-hour counter kept on the row (updated with it anyway) so that spike
    # detection costs no extra query per event.
    hour_started_at = models.DateTimeField(null=True, blank=True)
    hour_count = models.PositiveIntegerField(default=0)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    regressed_at = models.DateTimeField(null=True, blank=True)
    last_wakeup_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-last_seen"]
        constraints = [
            # The one-open-incident rule lives in the database so that concurrent
            # requests for one fingerprint cannot both create an incident.
            models.UniqueConstraint(
                fields=["fingerprint"],
                condition=~Q(status=IncidentStatus.RESOLVED),
                name="one_open_incident_per_fingerprint",
            ),
        ]
        # No index on last_seen on purpose: it changes with every event, and leaving the
        # counters unindexed lets PostgreSQL update the row in place (HOT) on the hot path.
        indexes = [models.Index(fields=["status", "severity"], name="incident_status_severity")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    @property
    def is_open(self) -> bool:
        return self.status != IncidentStatus.RESOLVED

    def frequency(self, now=None) -> dict[str, int]:
        """Events in the last hour, day and week, from the 5-minute counters."""
        now = now or timezone.now()
        windows = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}
        aggregates = {
            name: models.Sum("count", filter=Q(bucket_start__gt=now - span), default=0)
            for name, span in windows.items()
        }
        return self.counters.filter(bucket_start__gt=now - windows["7d"]).aggregate(**aggregates)


class IncidentCounter(models.Model):
    """Events per incident per 5-minute bucket; serves the 1h/24h/7d frequency figures."""

    BUCKET_SECONDS = 300

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="counters")
    bucket_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["incident", "bucket_start"], name="one_counter_per_bucket")]

    def __str__(self) -> str:
        return f"incident #{self.incident_id} at {self.bucket_start:%Y-%m-%d %H:%M}: {self.count}"


class Event(models.Model):
    """One received occurrence, as stored (secrets redacted)."""

    # Events are the hottest insert: every index costs. The incident is covered by the
    # (incident, -received_at) index; log sources are looked up the other way round.
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events", db_index=False)
    integration = models.ForeignKey(Integration, null=True, blank=True, on_delete=models.SET_NULL)
    log_source = models.ForeignKey("LogSource", null=True, blank=True, on_delete=models.SET_NULL, db_index=False)
    source = models.CharField(max_length=20)
    source_id = models.CharField(max_length=255, blank=True, help_text="The occurrence's id at the source.")
    # The incident's regression_count when this event arrived: a retried delivery is a
    # duplicate only within one life of the incident, so a source that re-fires the
    # same alert after a resolution reopens it instead of being swallowed.
    generation = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=12, choices=EventOutcome.choices)
    status = models.CharField(max_length=15)
    kind = models.CharField(max_length=10)
    title = models.CharField(max_length=500)
    message = models.TextField(blank=True)
    severity = models.CharField(max_length=10, blank=True)
    service = models.CharField(max_length=200, blank=True)
    environment = models.CharField(max_length=100, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    exception_type = models.CharField(max_length=200, blank=True)
    exception_value = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    frames = models.JSONField(default=list, blank=True)
    path = models.CharField(max_length=1000, blank=True)
    method = models.CharField(max_length=10, blank=True)
    trace_id = models.CharField(max_length=100, blank=True)
    url = models.URLField(max_length=2000, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    payload = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "generation", "source_id"],
                condition=~Q(source_id=""),
                name="one_event_per_source_id",
            ),
        ]
        indexes = [models.Index(fields=["incident", "-received_at"], name="event_incident_received")]

    def __str__(self) -> str:
        return f"{self.source} event for incident #{self.incident_id}"


class Activity(models.Model):
    """A timeline entry: every change to an incident writes one."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timeline")
    kind = models.CharField(max_length=20, choices=ActivityKind.choices)
    message = models.TextField()
    actor = models.CharField(max_length=150, default="quench")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "activities"
        indexes = [models.Index(fields=["incident", "created_at"], name="activity_incident_created")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.message[:60]}"


class IncidentWakeup(models.Model):
    """Outbox row for the debounced "incident needs attention" task.

    Written in the same transaction as the incident change and enqueued on commit; a
    scheduled sweep re-enqueues rows whose task never ran, so a crash between commit
    and enqueue loses nothing.
    """

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="wakeups")
    reason = models.CharField(max_length=20)  # new, regressed, spike, reopened
    created_at = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["handled_at", "created_at"], name="wakeup_pending")]

    def __str__(self) -> str:
        return f"wake-up of incident #{self.incident_id} ({self.reason})"


class _Matchers(models.Model):
    """Shared matching fields of silences and rules: empty means "any"."""

    match_service = models.CharField(max_length=200, blank=True, help_text="Regular expression on the service.")
    match_alertname = models.CharField(max_length=200, blank=True, help_text="Regular expression on the alert name.")
    match_labels = models.JSONField(
        default=dict, blank=True, help_text='Label name → regular expression, all must match, e.g. {"env": "prod"}.'
    )

    class Meta:
        abstract = True

    def clean(self) -> None:
        super().clean()
        for field in ("match_service", "match_alertname"):
            _validate_regex(getattr(self, field), field)
        _validate_label_matchers(self.match_labels, "match_labels")

    def matches_basic(self, *, service: str, alertname: str, labels: dict) -> bool:
        if self.match_service and not re.fullmatch(self.match_service, service or ""):
            return False
        if self.match_alertname and not re.fullmatch(self.match_alertname, alertname or ""):
            return False
        return all(re.fullmatch(pattern, str(labels.get(name, ""))) for name, pattern in self.match_labels.items())


class Silence(_Matchers):
    """Mute matching signals for a time: they are stored, but the incident stays suppressed."""

    comment = models.CharField(max_length=300)
    match_fingerprint = models.CharField(max_length=64, blank=True, help_text="Exact incident fingerprint.")
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-ends_at"]
        indexes = [models.Index(fields=["ends_at"], name="silence_ends_at")]

    def __str__(self) -> str:
        return self.comment

    def clean(self) -> None:
        super().clean()
        if self.ends_at and self.starts_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "A silence must end after it starts."})
        if not (self.match_service or self.match_alertname or self.match_labels or self.match_fingerprint):
            raise ValidationError("A silence needs at least one matcher, or it would mute everything.")

    def is_active(self, now=None) -> bool:
        now = now or timezone.now()
        return self.starts_at <= now < self.ends_at

    def matches(self, *, service: str, alertname: str, labels: dict, fingerprint: str) -> bool:
        if self.match_fingerprint and self.match_fingerprint != fingerprint:
            return False
        return self.matches_basic(service=service, alertname=alertname, labels=labels)


class _OrderedRule(models.Model):
    """A named admin rule among others: lower positions are tried first, the first match wins."""

    name = models.CharField(max_length=100, unique=True)
    position = models.PositiveIntegerField(default=100, help_text="Lower runs first; the first match wins.")
    enabled = models.BooleanField(default=True)

    class Meta:
        abstract = True
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class ClassificationRule(_OrderedRule, _Matchers):
    """Ordered rules that give an incident its category and, optionally, its severity."""

    match_message = models.CharField(
        max_length=300, blank=True, help_text="Regular expression searched in the title, message and exception type."
    )
    category = models.CharField(max_length=60)
    severity_override = models.CharField(max_length=2, choices=Severity.choices, blank=True)

    def clean(self) -> None:
        super().clean()
        _validate_regex(self.match_message, "match_message")

    def matches(self, *, service: str, alertname: str, labels: dict, text: str) -> bool:
        if self.match_message and not re.search(self.match_message, text or "", re.IGNORECASE):
            return False
        return self.matches_basic(service=service, alertname=alertname, labels=labels)


class FingerprintRule(_OrderedRule):
    """An admin override of how matching signals are grouped (see incidents.fingerprinting)."""

    service = models.CharField(max_length=200, blank=True, help_text="Exact service name.")
    alertname = models.CharField(max_length=200, blank=True)
    exception_type = models.CharField(max_length=200, blank=True)
    message_pattern = models.CharField(max_length=300, blank=True, help_text="Regular expression.")
    label_matchers = models.JSONField(default=dict, blank=True, help_text="Label name → regular expression.")
    group_by = models.JSONField(
        default=list,
        blank=True,
        help_text='Components to group by, e.g. ["service", "alertname"] or ["service", "label:region"].',
    )
    static_key = models.CharField(max_length=200, blank=True, help_text="Group every match into one incident.")

    def clean(self) -> None:
        super().clean()
        _validate_label_matchers(self.label_matchers, "label_matchers")
        if not isinstance(self.group_by, list) or not all(isinstance(item, str) for item in self.group_by):
            raise ValidationError({"group_by": "Must be a list of component names."})
        if not self.group_by and not self.static_key:
            raise ValidationError("Set group_by or static_key, or the rule changes nothing.")
        from incidents.fingerprinting import rule_problems

        problems = rule_problems(self.to_spec())
        if problems:
            raise ValidationError(problems)

    def to_spec(self):
        from incidents.fingerprinting import FingerprintRuleSpec

        return FingerprintRuleSpec(
            name=self.name,
            service=self.service,
            alertname=self.alertname,
            exception_type=self.exception_type,
            message_pattern=self.message_pattern,
            label_matchers=tuple(sorted(self.label_matchers.items())),
            group_by=tuple(self.group_by),
            static_key=self.static_key,
        )


class LogSource(models.Model):
    """A JSON-lines log file tailed by a scheduled job; its read position lives here."""

    name = models.CharField(max_length=100, unique=True)
    path = models.CharField(max_length=1000, help_text="Absolute path of the JSON-lines file.")
    service = models.CharField(max_length=200)
    environment = models.CharField(max_length=100, blank=True)
    enabled = models.BooleanField(default=True)
    count_error_levels = models.BooleanField(default=True, help_text="Records at or above the minimum level count.")
    min_level = models.CharField(max_length=10, choices=LogLevel.choices, default=LogLevel.ERROR)
    count_http_5xx = models.BooleanField(default=True, help_text="Records with an HTTP status of 500 or more count.")
    # Read position: byte offset into the file identified by (device, inode) and the
    # hash of its first line, so that rotation and truncation are both noticed.
    offset = models.PositiveBigIntegerField(default=0, editable=False)
    inode = models.PositiveBigIntegerField(null=True, blank=True, editable=False)
    device = models.PositiveBigIntegerField(null=True, blank=True, editable=False)
    head_hash = models.CharField(max_length=64, blank=True, editable=False)
    lines_read = models.PositiveBigIntegerField(default=0, editable=False)
    signals_sent = models.PositiveBigIntegerField(default=0, editable=False)
    last_tailed_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.path and not self.path.startswith("/"):
            raise ValidationError({"path": "Give an absolute path."})


class IngestCounter(models.Model):
    """Signals received, by source and outcome, for /metrics.

    Each web process writes its own shard row so that concurrent requests never queue
    on one hot counter row; /metrics sums the shards.
    """

    source = models.CharField(max_length=20)
    outcome = models.CharField(max_length=40)  # an EventOutcome, or rejected_<reason>
    shard = models.PositiveSmallIntegerField()
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "outcome", "shard"], name="one_ingest_counter_per_shard")
        ]

    def __str__(self) -> str:
        return f"{self.source}/{self.outcome}: {self.count}"


class IngestWindow(models.Model):
    """Events accepted from one integration in one minute, for its rate limit.

    A row in the database rather than a per-process counter, so that the limit holds
    across every web process.
    """

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="+")
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["integration", "window_start"], name="one_ingest_window_per_minute")
        ]

    def __str__(self) -> str:
        return f"integration #{self.integration_id} at {self.window_start:%H:%M}: {self.count}"


class Heartbeat(models.Model):
    """Last time a scheduled job ran; /healthz reads it to tell whether the scheduler is alive."""

    name = models.CharField(max_length=50, unique=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at:%Y-%m-%d %H:%M:%S}"


class Complaint(models.Model):
    """A customer's report that something is broken, correlated to the incident it is about."""

    customer_id = models.CharField(max_length=200, help_text="The customer's id in your systems.")
    customer_name = models.CharField(max_length=200, blank=True)
    channel = models.CharField(max_length=50, blank=True, help_text="Where it came from: support, email, chat, ...")
    service = models.CharField(max_length=200, blank=True, help_text="The service it is about, when known.")
    message = models.TextField(help_text="What the customer said (secrets redacted).")
    integration = models.ForeignKey(
        Integration, null=True, blank=True, on_delete=models.SET_NULL, help_text="The source that sent it."
    )
    source_id = models.CharField(
        max_length=255, blank=True, help_text="The report's id at its source: a retried delivery is stored once."
    )
    reported_at = models.DateTimeField(default=timezone.now)
    received_at = models.DateTimeField(auto_now_add=True)
    keywords = models.JSONField(default=list, blank=True, help_text="Impact keywords found (payment, outage, ...).")
    incident = models.ForeignKey(Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="complaints")
    correlation = models.CharField(max_length=300, blank=True, help_text="Why it was linked to its incident.")

    class Meta:
        ordering = ["-reported_at"]
        constraints = [
            # Ids are unique per source only: two help desks may both have a ticket 1234.
            # The constraint, not a Python check, settles two deliveries racing each other.
            models.UniqueConstraint(
                fields=["integration", "source_id"], condition=~Q(source_id=""), name="one_complaint_per_source_id"
            ),
        ]
        indexes = [models.Index(fields=["service", "-reported_at"], name="complaint_service_recent")]

    def __str__(self) -> str:
        return f"Complaint from {self.customer_id} at {self.reported_at:%Y-%m-%d %H:%M}"


class LearnedTemplates(models.Model):
    """What Quench has learned about one service's log messages: which plain words vary inside one event.

    The state of `incidents.fingerprinting.learning.TemplateBook` for the service's log
    signals, loaded and saved under a row lock by ingestion (`services.ingest`), so that two
    batches never learn from a stale copy. Per service: one program's messages share their
    templates whichever integration or log file delivers them. The state only grows until the
    book is full (`TemplateBook.max_variants`); deleting the row makes the service start
    learning again, and new groups then get keys from scratch (existing incidents keep theirs).
    """

    service = models.CharField(max_length=200, unique=True, blank=True)
    state = models.JSONField(default=dict, blank=True)
    template_count = models.PositiveIntegerField(default=0)
    variant_count = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["service"]
        verbose_name_plural = "learned templates"

    def __str__(self) -> str:
        return f"{self.service or '(no service)'}: {self.template_count} templates"


class Postmortem(models.Model):
    """What happened in one incident, why, and what the team will change: one per incident.

    Drafted by `incidents.postmortems.draft_postmortem` (facts from the records by template,
    narrative and recommendations from the narrative writer, which `generated_sections`
    names), then edited as Markdown in the admin: draft → reviewed → published.
    """

    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, related_name="postmortem")
    status = models.CharField(max_length=10, choices=PostmortemStatus.choices, default=PostmortemStatus.DRAFT)
    title = models.CharField(max_length=300)
    body = models.TextField(help_text="Markdown. Sections marked “generated” were written by the narrative writer.")
    facts = models.JSONField(default=dict, blank=True, help_text="The records' facts the draft was built from.")
    generated_sections = models.JSONField(
        default=list, blank=True, help_text="Sections of the draft written by the narrative writer, not from records."
    )
    narrative_by = models.CharField(max_length=150, blank=True, help_text="Which writer wrote the narrative.")
    drafted_by = models.CharField(max_length=150, default="quench")
    drafted_at = models.DateTimeField()
    edited_by = models.CharField(max_length=150, blank=True)
    reviewed_by = models.CharField(max_length=150, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    published_by = models.CharField(max_length=150, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-drafted_at"]

    def __str__(self) -> str:
        return f"Postmortem of incident #{self.incident_id} ({self.status})"


class CustomerReply(models.Model):
    """A draft answer to one affected customer, from the postmortem's root cause and fix.

    Edited and copied by a person in the admin; Quench never sends it.
    """

    postmortem = models.ForeignKey(Postmortem, on_delete=models.CASCADE, related_name="customer_replies")
    customer_id = models.CharField(max_length=200)
    customer_name = models.CharField(max_length=200, blank=True)
    complaints = models.PositiveIntegerField(default=1, help_text="How many complaints they made about it.")
    body = models.TextField()
    edited_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["customer_id"]
        verbose_name_plural = "customer replies"
        constraints = [
            models.UniqueConstraint(fields=["postmortem", "customer_id"], name="one_reply_per_customer_per_postmortem")
        ]

    def __str__(self) -> str:
        return f"Reply to {self.customer_id} about incident #{self.postmortem.incident_id}"


class WatchdogCondition(models.Model):
    """The last verdict of one watchdog check (see incidents.watchdog), and the incident it raised."""

    name = models.CharField(max_length=60, unique=True)
    failing = models.BooleanField(default=False)
    problem = models.CharField(max_length=500, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    since = models.DateTimeField(null=True, blank=True, help_text="When it started failing.")
    checked_at = models.DateTimeField()
    incident = models.ForeignKey(Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name}: {'failing' if self.failing else 'ok'}"

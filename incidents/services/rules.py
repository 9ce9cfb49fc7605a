"""Admin-edited rules (fingerprint rules, classification rules, silences) as fast in-process caches.

Ingestion consults these for every signal, so they are read once and kept for a few
seconds per process. Saving or deleting a rule clears this process's cache at once;
other processes see the change within RULE_CACHE_SECONDS.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from incidents.choices import Severity
from incidents.models import ClassificationRule, FingerprintRule, Silence

RULE_CACHE_SECONDS = 5.0

_lock = threading.Lock()
_cache: dict[str, tuple[float, object]] = {}


def _cached(name: str, loader):
    now = time.monotonic()
    entry = _cache.get(name)
    if entry and now - entry[0] < RULE_CACHE_SECONDS:
        return entry[1]
    value = loader()
    with _lock:
        _cache[name] = (now, value)
    return value


def clear_rule_caches(**_kwargs) -> None:
    with _lock:
        _cache.clear()


for _model in (ClassificationRule, FingerprintRule, Silence):
    post_save.connect(clear_rule_caches, sender=_model, dispatch_uid=f"clear-rules-{_model.__name__}")
    post_delete.connect(clear_rule_caches, sender=_model, dispatch_uid=f"clear-rules-{_model.__name__}-del")


def fingerprint_rule_specs() -> tuple:
    return _cached("fingerprint", lambda: tuple(r.to_spec() for r in FingerprintRule.objects.filter(enabled=True)))


def classification_rules() -> tuple[ClassificationRule, ...]:
    return _cached("classification", lambda: tuple(ClassificationRule.objects.filter(enabled=True)))


def current_silences() -> tuple[Silence, ...]:
    # Silences that have not ended yet; is_active() is checked per match since the
    # cache may hold one that starts a moment later.
    return _cached("silences", lambda: tuple(Silence.objects.filter(ends_at__gt=timezone.now())))


# Source severities (already normalized by the adapters) → Quench priority.
SEVERITY_FROM_SOURCE = {
    "critical": Severity.P1,
    "error": Severity.P2,
    "warning": Severity.P3,
    "info": Severity.P3,
}
EXPLICIT_PRIORITY_LABELS = ("priority", "severity", "quench_priority")


@dataclass(frozen=True)
class Classification:
    category: str
    severity: str
    severity_reason: str


def classify(*, kind: str, severity: str, service: str, alertname: str, labels: dict, text: str) -> Classification:
    """Category and priority (P0–P3) of a new incident: the source's severity, then the first matching rule."""
    priority, reason = _priority_from_source(kind, severity, labels)
    category = "application" if kind == "error" else ""
    for rule in classification_rules():
        if rule.matches(service=service, alertname=alertname, labels=labels, text=text):
            category = rule.category
            if rule.severity_override:
                priority = rule.severity_override
                reason = f"rule {rule.name!r} sets {rule.severity_override}"
            break
    return Classification(category=category, severity=priority, severity_reason=reason)


def _priority_from_source(kind: str, severity: str, labels: dict) -> tuple[str, str]:
    for label in EXPLICIT_PRIORITY_LABELS:
        value = str(labels.get(label, "")).upper()
        if value in Severity.values:
            return value, f"label {label}={value}"
    if severity in SEVERITY_FROM_SOURCE:
        return SEVERITY_FROM_SOURCE[severity], f"source severity {severity}"
    if kind == "error":
        return Severity.P2, "unhandled error without a severity"
    return Severity.P2, "no severity given"


def matching_silence(*, service: str, alertname: str, labels: dict, fingerprint: str) -> Silence | None:
    now = timezone.now()
    for silence in current_silences():
        if silence.is_active(now) and silence.matches(
            service=service, alertname=alertname, labels=labels, fingerprint=fingerprint
        ):
            return silence
    return None

"""The watchdog's remediation conditions (registered in `RemediationConfig.ready()`; see incidents/watchdog.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from incidents.watchdog import DEGRADED, OK, Finding, register_watchdog_check
from remediation.choices import ApprovalStatus, DiagnosisStatus
from remediation.models import ApprovalRequest, Diagnosis
from remediation.sandbox import sandbox_health

# The approvals sweep runs every 5 minutes: an approval this far past its expiry means it is not running.
APPROVAL_EXPIRY_GRACE = timedelta(minutes=15)
DIAGNOSIS_WINDOW = timedelta(hours=24)


def check_diagnoses_failing(now: datetime) -> Finding:
    """The latest N finished diagnoses (of the last 24 h) all failed: the LLM or the pipeline is broken."""
    needed = int(getattr(settings, "QUENCH_WATCHDOG_FAILED_DIAGNOSES", 3))
    latest = list(
        Diagnosis.objects.filter(
            status__in=[DiagnosisStatus.SUCCEEDED, DiagnosisStatus.FAILED],
            finished_at__gte=now - DIAGNOSIS_WINDOW,
        )
        .order_by("-finished_at", "-id")
        .values("pk", "status", "error", "incident_id")[:needed]
    )
    if len(latest) < needed or any(row["status"] != DiagnosisStatus.FAILED for row in latest):
        return OK
    error = (latest[0]["error"] or "no error recorded").splitlines()[0][:200]
    return Finding(
        True,
        f"the last {needed} diagnoses failed; latest (#{latest[0]['pk']}): {error}",
        {"diagnoses": [row["pk"] for row in latest]},
    )


def check_approvals_not_expiring(now: datetime) -> Finding:
    """Pending approvals well past their expiry: the sweep that expires them is not running."""
    overdue = list(
        ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING, expires_at__lt=now - APPROVAL_EXPIRY_GRACE)
        .order_by("expires_at")
        .values_list("pk", flat=True)[:20]
    )
    if not overdue:
        return OK
    return Finding(
        True,
        f"{len(overdue)} pending approval(s) past their expiry and not expired (is remediation.tasks.sweep running?)",
        {"approvals": overdue},
    )


def check_sandbox_isolated(now: datetime) -> Finding:
    """Fix attempts cannot run isolated (bubblewrap missing or refused)."""
    health = sandbox_health()
    if health.get("ok"):
        return OK
    return Finding(True, f"the sandbox is not isolated: {health.get('problem', 'unknown reason')}")


def register() -> None:
    register_watchdog_check("diagnoses_failing", check_diagnoses_failing, severity="P2", health=DEGRADED)
    register_watchdog_check("approvals_not_expiring", check_approvals_not_expiring, severity="P2", health=DEGRADED)
    # /healthz already has the "sandbox" check (registered above in ready()): not reported twice there.
    register_watchdog_check("sandbox_unisolated", check_sandbox_isolated, severity="P3", health="")

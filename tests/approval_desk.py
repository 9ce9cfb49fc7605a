"""A small real service for approval-desk tests: a bare git remote, a tested patch, a pending proposal.

The service `pricing` has one bug (a KeyError on an item without a price); the proposal is
a code fix whose diff really applies to the remote's `main`, so publishing, merging and
verifying it go through real git.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from django.utils import timezone

from incidents.models import Incident
from remediation import services
from remediation.choices import DiagnosisStatus, FixAttemptStatus
from remediation.models import ApprovalRequest, Diagnosis, FixAttempt, Service

GIT = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]

FILES = {
    "pricing/__init__.py": "",
    "pricing/prices.py": (
        'def unit_price(item: dict) -> int:\n    """The price of one unit, in cents."""\n    return item["price"]\n'
    ),
    "tests/__init__.py": "",
    "tests/test_prices.py": (
        "from pricing.prices import unit_price\n\n\ndef test_unit_price():\n    assert unit_price({'price': 5}) == 5\n"
    ),
}
FIXED_PRICES = (
    "def unit_price(item: dict) -> int:\n"
    '    """The price of one unit, in cents."""\n'
    '    if "price" not in item:\n'
    '        raise ValueError("The item has no price.")\n'
    '    return item["price"]\n'
)


def run_git(cwd: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=60).stdout


def make_remote(root: Path) -> tuple[Path, str]:
    """A bare repository at root/pricing.git with the service's first commit on main; (path, patch)."""
    work = root / "pricing-work"
    work.mkdir(parents=True)
    for relative, text in FILES.items():
        (work / relative).parent.mkdir(parents=True, exist_ok=True)
        (work / relative).write_text(text)
    run_git(work, "init", "-q", "-b", "main")
    run_git(work, "add", "-A")
    run_git(work, "commit", "-q", "-m", "The pricing service")
    (work / "pricing/prices.py").write_text(FIXED_PRICES)
    patch = run_git(work, "diff")
    run_git(work, "checkout", "--", ".")
    remote = root / "pricing.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(remote)], check=True, capture_output=True)
    return remote, patch


def make_service(remote: Path, **fields) -> Service:
    return Service.objects.create(
        name="pricing",
        repository=str(remote),
        test_command="python -m pytest -q -p no:cacheprovider",
        **fields,
    )


def open_incident(
    post_json, token: str, *, title: str = "KeyError: 'price'", severity: str = "error", dedup_key: str = ""
) -> Incident:
    """Send the service's crash through the ingest API; a distinct `dedup_key` opens a distinct incident."""
    body = {
        "dedup_key": dedup_key,
        "service": "pricing",
        "title": title,
        "exception_type": "KeyError",
        "severity": severity,
        "traceback": (
            "Traceback (most recent call last):\n"
            '  File "pricing/prices.py", line 3, in unit_price\n'
            '    return item["price"]\n'
            f"{title}\n"
        ),
    }
    response = post_json("/api/v1/ingest/events", body, token)
    assert response.status_code == 202, response.content
    for service in Service.objects.filter(name="pricing"):
        services.link_service_incidents(service.pk)
    return Incident.objects.select_related("service_record").get(pk=response.json()["results"][0]["incident_id"])


def propose_fix(incident: Incident, patch: str, *, number: int = 1) -> ApprovalRequest:
    """Diagnose (by hand) and propose `patch` as a tested fix: the incident ends awaiting approval."""
    diagnosis, _ = services.request_diagnosis(incident.pk, trigger="new")
    Diagnosis.objects.filter(pk=diagnosis.pk).update(
        status=DiagnosisStatus.RUNNING,
        started_at=timezone.now(),
        hypothesis="unit_price reads item['price'] of an item that has none.",
        confidence=0.8,
        recommended_action="code_fix",
        risk_level="medium",
        provider="offline",
        culprit_file="pricing/prices.py",
        culprit_line=3,
        culprit_function="unit_price",
    )
    base = run_git(Path(incident.service_record.repository), "rev-parse", "main").strip()
    attempt = FixAttempt.objects.create(
        diagnosis=diagnosis,
        incident=incident,
        number=number,
        status=FixAttemptStatus.PASSED,
        summary="Refuse an item without a price with a clear ValueError.",
        patch=patch,
        files_changed=["pricing/prices.py"],
        base_commit=base,
        test_command="python -m pytest -q -p no:cacheprovider",
        exit_code=0,
        output="1 passed in 0.01s",
        finished_at=timezone.now(),
    )
    approval = services.request_approval(diagnosis.pk, fix_attempt_id=attempt.pk)
    assert approval is not None
    return approval


def approver(django_user_model, username: str = "approver"):
    """A staff user in the seeded Approvers group."""
    user = django_user_model.objects.create_user(username, password="pw-approver-123", is_staff=True)
    user.groups.add(approvers_group())
    return django_user_model.objects.get(pk=user.pk)  # fresh permission cache


def approvers_group():
    """The Approvers group the migration seeds (re-seeded the same way after a transactional test's flush)."""
    from importlib import import_module

    from django.contrib.auth.models import Group, Permission

    seeded = import_module("remediation.migrations.0005_approval_desk")
    group, created = Group.objects.get_or_create(name=seeded.APPROVERS)
    if created:
        for app_label, codename in seeded.APPROVER_PERMISSIONS:
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return group


def viewer(django_user_model, username: str = "viewer"):
    """A staff user who may read incidents and approvals but not decide."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user(username, password="pw-viewer-1234", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_incident", "change_incident", "view_approvalrequest", "view_execution"]
        )
    )
    return django_user_model.objects.get(pk=user.pk)

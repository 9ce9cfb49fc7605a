"""Playbooks: validation of their steps, which one fits an incident, and the dry run."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from incidents.models import Incident
from incidents.services.ingest import ingest_signals
from incidents.sources.base import Signal
from remediation.models import Playbook, Service
from remediation.playbooks import candidate_playbooks, dry_run, step_problems

RESTART = {"type": "http", "name": "Restart", "method": "POST", "url": "https://ops.example.com/{{ service }}/restart"}


def _incident(**fields):
    signal = Signal(
        source="alertmanager",
        title=fields.pop("title", "DatabaseConnectionsSaturated"),
        alertname=fields.pop("alertname", "DatabaseConnectionsSaturated"),
        service=fields.pop("service", "shop"),
        labels=fields.pop("labels", {"env": "prod", "cluster": "eu-1"}),
        **fields,
    )
    return Incident.objects.get(pk=ingest_signals([signal])[0].incident_id)


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        ([], "at least one step"),
        ("restart", "at least one step"),
        ([{"type": "reboot"}], "type must be one of"),
        ([{"type": "http", "url": "https://x"}], "needs method"),
        ([{**RESTART, "url": "ftp://x"}], "http(s) URL"),
        ([{**RESTART, "method": "BREW"}], "method must be one of"),
        ([{**RESTART, "retries": 3}], "unknown fields: retries"),
        ([{"type": "command", "command": "rm -rf /"}], "list of arguments"),
        ([{"type": "command", "command": ["rm", "-rf", "/"]}], "'rm' is not an allowed command"),
        ([{"type": "task", "task": "os.system"}], "task must be one of"),
        ([{"type": "wait", "seconds": 7200}], "seconds must be"),
        ([{"type": "check", "url": "https://x", "expect_status": 999}], "HTTP status code"),
        ([{**RESTART, "url": "https://x/{{ nope }}"}], "{{ nope }}, which is not a known variable"),
    ],
)
def test_bad_steps_are_refused_with_a_reason(steps, problem):
    problems = step_problems(steps, {})
    assert any(problem in text for text in problems), problems


def test_good_steps_pass_and_variables_may_be_declared():
    steps = [
        RESTART,
        {"type": "command", "command": ["kubectl", "rollout", "restart", "deployment/{{ deployment }}"]},
        {"type": "task", "task": "timeline_note", "kwargs": {"message": "restarted {{ labels.cluster }}"}},
        {"type": "wait", "seconds": 30},
        {"type": "check", "url": "{{ health_check_url }}", "expect_status": 200, "contains": "ok"},
    ]
    assert step_problems(steps, {"deployment": "web"}) == []


@pytest.mark.django_db
def test_model_validation_uses_the_same_rules_and_guards_auto_approve():
    playbook = Playbook(name="restart", steps=[{"type": "wait"}], risk_level="high", auto_approve=True)
    with pytest.raises(ValidationError) as caught:
        playbook.full_clean()
    assert "steps" in caught.value.message_dict
    playbook.steps = [RESTART]
    with pytest.raises(ValidationError) as caught:
        playbook.full_clean()
    assert "auto_approve" in caught.value.message_dict
    playbook.match_exception_type = "("
    with pytest.raises(ValidationError) as caught:
        playbook.full_clean()
    assert "match_exception_type" in caught.value.message_dict


@pytest.mark.django_db
def test_the_most_specific_enabled_match_wins_and_cooldown_is_respected():
    incident = _incident()
    Playbook.objects.create(name="generic restart", steps=[RESTART])
    by_service = Playbook.objects.create(name="shop restart", match_service="shop", steps=[RESTART])
    precise = Playbook.objects.create(
        name="shop db pool",
        match_service="shop",
        match_alertname="DatabaseConnections.*",
        match_labels={"env": "prod"},
        steps=[RESTART],
    )
    Playbook.objects.create(name="other service", match_service="billing", steps=[RESTART])
    Playbook.objects.create(name="disabled", match_service="shop", match_alertname=".*", enabled=False, steps=[RESTART])

    matches = candidate_playbooks(incident)
    assert [match.playbook.name for match in matches] == ["shop db pool", "shop restart", "generic restart"]
    assert "alert DatabaseConnectionsSaturated" in matches[0].why

    precise.last_run_at = timezone.now() - timedelta(minutes=5)
    precise.cooldown_minutes = 30
    precise.save()
    assert candidate_playbooks(incident)[0].playbook == by_service


@pytest.mark.django_db
def test_dry_run_renders_incident_and_playbook_variables():
    incident = _incident()
    Service.objects.create(name="shop", health_check_url="https://shop.example.com/healthz")
    from remediation.context import service_for

    service_for(incident)
    playbook = Playbook.objects.create(
        name="recycle pool",
        variables={"deployment": "shop-web"},
        steps=[
            RESTART,
            {"type": "command", "command": ["kubectl", "rollout", "restart", "deployment/{{ deployment }}"]},
            {"type": "wait", "seconds": 10},
            {"type": "check", "url": "{{ health_check_url }}", "contains": "ok"},
            {"type": "task", "task": "timeline_note", "kwargs": {"message": "cluster {{ labels.cluster }}"}},
        ],
    )
    rendered = dry_run(playbook, incident)
    assert [step["description"] for step in rendered] == [
        "POST https://ops.example.com/shop/restart",
        "run kubectl rollout restart deployment/shop-web",
        "wait 10 s",
        "check https://shop.example.com/healthz answers status 200 and body containing 'ok'",
        "task timeline_note(message='cluster eu-1')",
    ]
    # Rendering never changes the stored steps.
    playbook.refresh_from_db()
    assert playbook.steps[0]["url"].endswith("{{ service }}/restart")


@pytest.mark.django_db
def test_the_demo_playbook_runs_against_the_services_own_urls(settings):
    """No hard-wired 127.0.0.1:8000: the service's health check URL (and its origin) and QUENCH_PUBLIC_URL."""
    from remediation.context import service_for
    from remediation.management.commands.setup_demo_service import DEMO_PLAYBOOKS

    settings.SITE_URL = "https://quench.example.org"
    incident = _incident(service="shop", exception_type="TimeoutError")
    Service.objects.create(name="shop", health_check_url="https://shop.internal:8443/status/healthz")
    service_for(incident)
    playbook = Playbook.objects.create(**DEMO_PLAYBOOKS[0])
    playbook.full_clean()

    descriptions = [step["description"] for step in dry_run(playbook, incident)]

    assert (
        descriptions[0] == "POST https://shop.internal:8443/ops/shop/db/cancel-long-queries?older_than=30s (expect 200)"
    )
    assert descriptions[2] == "check https://shop.internal:8443/status/healthz answers status 200"
    assert not any("127.0.0.1" in description for description in descriptions)

    note = Playbook(name="link", steps=[{"type": "check", "url": "{{ quench_url }}/healthz"}])
    assert dry_run(note, incident)[0]["description"] == "check https://quench.example.org/healthz answers status 200"


@pytest.mark.django_db
def test_the_demo_service_is_checked_at_the_public_url(settings, tmp_path):
    from io import StringIO

    from django.core.management import call_command

    settings.SITE_URL = "http://quench.local:9000"
    call_command("setup_demo_service", target=str(tmp_path / "shop-repo"), stdout=StringIO())

    assert Service.objects.get(name="shop").health_check_url == "http://quench.local:9000/healthz"

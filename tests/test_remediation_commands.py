"""The demo's management commands: set up the shop service (idempotent) and report what Quench did."""

import subprocess
from io import StringIO

from django.core.management import call_command

from remediation.models import Playbook, Service
from tests.demo_service import drive


def test_setup_demo_service_makes_a_repository_and_registers_it_once(db, tmp_path):
    target = tmp_path / "shop-repo"
    call_command("setup_demo_service", target=str(target), stdout=StringIO())
    call_command("setup_demo_service", target=str(target), stdout=StringIO())

    log = subprocess.run(["git", "-C", str(target), "log", "--oneline", "main"], capture_output=True, text=True)
    assert len(log.stdout.splitlines()) == 1
    status = subprocess.run(["git", "-C", str(target), "status", "--porcelain"], capture_output=True, text=True)
    assert status.stdout == ""
    service = Service.objects.get()
    remote = tmp_path / "shop.git"  # the shop's bare "origin": fixes are pushed and merged there
    assert (service.name, service.repository, service.default_branch) == ("shop", str(remote), "main")
    bare = subprocess.run(
        ["git", "-C", str(remote), "rev-parse", "--is-bare-repository"], capture_output=True, text=True
    )
    assert bare.stdout.strip() == "true"
    origin = subprocess.run(["git", "-C", str(target), "remote", "get-url", "origin"], capture_output=True, text=True)
    assert origin.stdout.strip() == str(remote)
    service.full_clean()
    assert Playbook.objects.count() == 1
    Playbook.objects.get().full_clean()


def test_remediation_status_reports_each_open_incident(shop, crash):
    incident = crash("search-no-results")
    drive(incident.diagnoses.get().pk)
    out = StringIO()
    call_command("remediation_status", service="shop", stdout=out)
    report = out.getvalue()
    assert f"#{incident.pk} [awaiting_approval] IndexError" in report
    assert "fix attempt 1: passed with a regression test" in report
    assert "code fix awaiting approval" in report


def test_a_service_record_with_bad_fields_says_which_and_why(db):
    import pytest
    from django.core.exceptions import ValidationError

    bad = {
        "test_command": ("pytest 'unclosed", "Cannot be split"),
        "repository": ("relative/path", "absolute local path or a clone URL"),
        "owners": ("alice", "list of names"),
        "default_branch": ("-rf", "Not a valid branch name"),
    }
    for field, (value, message) in bad.items():
        service = Service(name=f"svc-{field}", **{field: value})
        with pytest.raises(ValidationError) as caught:
            service.full_clean()
        assert message in " ".join(caught.value.message_dict[field])
    Service(name="ok", repository="/srv/shop", test_command="python -m pytest -q").full_clean()

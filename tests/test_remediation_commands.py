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


def test_remediation_status_never_cuts_a_path_or_url(shop, crash):
    from incidents.models import Incident
    from remediation.models import Diagnosis

    incident = crash("search-no-results")  # diagnosis queued; its words are set below
    deep_path = "src/shop/catalogue/search/backends/elastic/" + "nested/" * 8 + "results_pagination.py"
    title = f"IndexError: list index out of range in {deep_path} while paging the catalogue results"
    hypothesis = (
        "The search view asks for page two of an empty result set; the paginator in "
        f"{deep_path}:42 indexes results[0] without checking, see "
        "https://docs.example.com/shop/search/pagination#empty-result-sets-and-page-numbers-beyond-the-end"
    )
    Incident.objects.filter(pk=incident.pk).update(title=title)
    Diagnosis.objects.filter(incident=incident).update(hypothesis=hypothesis)
    out = StringIO()

    call_command("remediation_status", service="shop", stdout=out)

    words = out.getvalue().split()
    incident.refresh_from_db()
    assert deep_path in words and f"{deep_path}:42" in words
    assert "https://docs.example.com/shop/search/pagination#empty-result-sets-and-page-numbers-beyond-the-end" in words
    assert f"#{incident.pk} [{incident.status}] IndexError: list index out of range in" in out.getvalue()
    assert all(len(line) <= 110 or " " not in line.strip() for line in out.getvalue().splitlines())

"""The incident page shows the diagnosis, the tested patch as a coloured diff, and reanalyzes — in Chromium."""

import os
from pathlib import Path

import pytest
from django.conf import settings

from incidents.models import Incident, IncidentWakeup
from incidents.tasks import handle_wakeup
from remediation.management.commands.setup_demo_service import create_repository
from remediation.models import Diagnosis, Service
from tests.browser import CHROMIUM, ingest_over_http, screenshot_dir
from tests.demo_service import drive, scenario_payload

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed"),
]


def test_an_engineer_reads_the_diagnosis_and_the_tested_patch(logged_in, live_server, make_integration, tmp_path):
    page = logged_in
    repo = tmp_path / "shop-repo"
    create_repository(Path(settings.BASE_DIR) / "examples" / "shop", repo)
    Service.objects.create(name="shop", repository=str(repo), test_command="python -m pytest -q -p no:cacheprovider")
    ingest_over_http(
        live_server, make_integration("generic").raw_token, scenario_payload("payment-missing-currency", repo)
    )
    incident = Incident.objects.get()
    handle_wakeup(IncidentWakeup.objects.get(incident=incident).pk)
    assert drive(Diagnosis.objects.get().pk) == "proposed"

    page.goto(f"{live_server.url}/admin/incidents/incident/{incident.pk}/change/")
    panel = page.locator("#diagnosis-panel")
    assert "KeyError" in panel.locator(".diagnosis-hypothesis").inner_text()
    assert "shop/payments.py" in panel.inner_text()
    assert "Fix the code" in panel.locator(".diagnosis-action").inner_text()
    attempt = panel.locator(".fix-attempt[data-status=passed]")
    assert attempt.count() == 1
    added = attempt.locator("pre.quench-diff span.diff-add").first
    assert added.inner_text().startswith("+")
    assert "230, 255, 237" in added.evaluate("node => getComputedStyle(node).backgroundColor")
    # The right fix refuses the order where it enters (a 400), not deep in charge().
    assert 'if "currency" not in order' in attempt.inner_text()
    assert "shop/api.py" in attempt.inner_text()
    assert "Awaiting approval" in page.locator("div.form-row.field-status").inner_text()
    assert "Code fix — Pending" in page.locator("#approval-summary").inner_text()
    page.screenshot(path=str(screenshot_dir() / "admin-diagnosis.png"), full_page=True)

    page.click("#reanalyze-button")
    page.wait_for_selector(".messagelist")
    assert "requested" in page.locator(".messagelist").inner_text()
    assert Diagnosis.objects.filter(incident=incident).count() == 2
    assert "Queued" in page.locator("#diagnosis-panel").inner_text()

    page.click("#reanalyze-button")
    page.wait_for_selector(".messagelist")
    assert "not asked again" in page.locator(".messagelist").inner_text()
    assert Diagnosis.objects.filter(incident=incident).count() == 2

"""The admin as an on-call engineer uses it, in a real headless Chromium."""

import os
import re

import pytest

from incidents.models import Incident, Integration, hash_token
from tests.browser import CHROMIUM, ingest_over_http, screenshot_dir

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed"),
]


def test_an_engineer_sees_the_incident_its_fingerprint_and_resolves_it(logged_in, live_server, make_integration):
    page = logged_in
    token = make_integration("generic").raw_token
    crash = {
        "service": "payments",
        "title": "KeyError: 'currency'",
        "exception_type": "KeyError",
        "traceback": 'Traceback (most recent call last):\n  File "/srv/shop/payments/service.py", line 112, '
        "in charge_order\n    currency = payload['currency']\nKeyError: 'currency'",
        "severity": "critical",
    }
    ingest_over_http(live_server, token, crash)
    ingest_over_http(live_server, token, crash)
    incident = Incident.objects.get()
    earlier = {
        **crash,
        "title": "KeyError: 'amount'",
        "traceback": 'Traceback (most recent call last):\n  File "/srv/shop/payments/service.py", line 160, '
        "in refund_order\n    amount = payload['amount']\nKeyError: 'amount'",
    }
    ingest_over_http(live_server, token, earlier)
    past = Incident.objects.exclude(pk=incident.pk).get()
    from knowledge.tasks import embed_incident

    embed_incident(incident.pk)
    embed_incident(past.pk)

    page.goto(f"{live_server.url}/admin/incidents/incident/?q=currency")
    row = page.locator("#result_list tbody tr").first
    assert "KeyError" in row.inner_text()
    assert "P1" in row.inner_text()

    page.goto(f"{live_server.url}/admin/incidents/incident/?severity__exact=P3")
    assert page.locator("#result_list").count() == 0 or "KeyError" not in page.content()

    page.goto(f"{live_server.url}/admin/incidents/incident/{incident.pk}/change/")
    components = page.locator("table.fingerprint-components").inner_text()
    assert "exception_type" in components and "KeyError" in components
    assert "2 in the last hour" in page.content()
    assert "Opened by generic" in page.content()
    assert "in charge_order" in page.locator("pre").first.inner_text()
    similar = page.locator("#similar-incidents").inner_text()
    assert f"#{past.pk} KeyError: 'amount'" in similar

    page.goto(f"{live_server.url}/admin/incidents/incident/")
    page.check(f"input[name=_selected_action][value='{incident.pk}']")
    page.select_option("select[name=action]", "resolve_selected")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")
    assert "Resolved 1 incident" in page.locator(".messagelist").inner_text()
    incident.refresh_from_db()
    assert incident.status == "resolved"
    page.screenshot(path=str(screenshot_dir() / "admin-incidents.png"))


def test_a_new_integration_shows_its_token_once(logged_in, live_server):
    page = logged_in
    page.goto(f"{live_server.url}/admin/incidents/integration/add/")
    page.fill("#id_name", "prometheus-prod")
    page.select_option("#id_kind", "alertmanager")
    page.click("input[name=_save]")

    token = page.locator("code.quench-token").inner_text().strip()
    assert re.fullmatch(r"qk_[A-Za-z0-9_\-]{40,}", token)
    assert "will not show" in page.content()
    integration = Integration.objects.get(name="prometheus-prod")
    assert integration.token_hash == hash_token(token)

    page.goto(f"{live_server.url}/admin/incidents/integration/{integration.pk}/change/")
    assert token not in page.content()

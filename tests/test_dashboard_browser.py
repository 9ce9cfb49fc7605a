"""The analytics dashboard and the postmortem editor in a real headless Chromium, light and dark."""

import os
import re

import pytest
from django.utils import timezone

from incidents.models import CustomerReply
from incidents.postmortems import draft_postmortem
from tests.browser import CHROMIUM, screenshot_dir
from tests.test_analytics import build_fixture_set

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed"),
]


def brightness(css_colour: str) -> float:
    """Perceived brightness 0-255 of an `rgb(r, g, b)` colour."""
    red, green, blue = (int(part) for part in re.findall(r"\d+", css_colour)[:3])
    return 0.299 * red + 0.587 * green + 0.114 * blue


def test_the_dashboard_shows_the_hand_computed_figures_in_light_and_dark(logged_in, live_server):
    page = logged_in
    build_fixture_set(timezone.now())

    page.goto(f"{live_server.url}/admin/incidents/incident/")
    page.click("#dashboard-link")
    page.click("text=7 days")
    page.wait_for_selector("#chart-endings svg")

    assert page.inner_text("#card-incidents .figure") == "6"
    assert page.inner_text("#card-resolved .figure") == "3"
    assert page.inner_text("#card-mtta .figure") == "11m"  # (10 + 20 + 5) / 3 minutes
    assert page.inner_text("#card-mttr .figure") == "1h 10m"  # (60 + 120 + 30) / 3 minutes
    assert page.inner_text("#card-attempts .figure") == "0.67"
    endings = page.locator("#chart-endings text.value")
    values = {endings.nth(i).get_attribute("data-label"): endings.nth(i).text_content() for i in range(endings.count())}
    assert values == {
        "code fix": "1",
        "playbook": "1",
        "human": "0",
        "source": "1",
        "expired": "1",
        "escalated": "1",
        "open": "1",
    }
    approvals = page.locator("#chart-approvals text.value")
    assert {approvals.nth(i).get_attribute("data-label"): approvals.nth(i).text_content() for i in range(approvals.count())} == {
        "pending": "0", "approved": "2", "rejected": "1", "expired": "1", "superseded": "0"
    }  # fmt: skip
    assert page.locator("#chart-services text.value").first.text_content() == "12"
    title = page.eval_on_selector("#chart-endings .chart-title", "node => getComputedStyle(node).fill")
    page_background = page.eval_on_selector("body", "node => getComputedStyle(node).backgroundColor")
    assert brightness(page_background) > 200 and brightness(title) < 100  # dark text on a light page
    page.screenshot(path=str(screenshot_dir() / "dashboard.png"), full_page=True)

    # Dark mode: the chart text takes the admin's dark-theme foreground, not black on black.
    page.emulate_media(color_scheme="dark")
    page.reload()
    page.wait_for_selector("#chart-endings svg")
    text_colour = page.eval_on_selector("#chart-endings .chart-title", "node => getComputedStyle(node).fill")
    background = page.eval_on_selector("body", "node => getComputedStyle(node).backgroundColor")
    assert brightness(background) < 80 and brightness(text_colour) > 150  # light text on a dark page
    bar_colour = page.eval_on_selector("#chart-endings rect.bar", "node => getComputedStyle(node).fill")
    assert brightness(bar_colour) > 100  # the bars stand out from the dark background too
    page.screenshot(path=str(screenshot_dir() / "dashboard-dark.png"), full_page=True)


def test_an_engineer_edits_previews_and_copies_a_postmortem(logged_in, live_server):
    page = logged_in
    records = build_fixture_set(timezone.now())
    incident = records["a"]
    from tests.record_factories import ComplaintFactory

    ComplaintFactory(incident=incident, customer_id="c-9", customer_name="Globex")
    postmortem = draft_postmortem(incident.pk)
    assert CustomerReply.objects.filter(postmortem=postmortem).count() == 1

    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(f"{live_server.url}/admin/incidents/incident/{incident.pk}/change/")
    page.click("#postmortem-link")
    page.wait_for_selector("#postmortem-preview h1")
    assert "What fixed it" in page.inner_text("#postmortem-preview")

    page.fill("#id_body", "# Edited\n\n<script>window.pwned = 1</script>\n\n- [ ] **follow** up")
    page.click("#preview-button")
    page.wait_for_selector("#postmortem-preview >> text=Edited")
    assert page.inner_html("#postmortem-preview").count("<script") == 0
    assert page.evaluate("window.pwned === undefined")
    assert page.locator("#postmortem-preview input[type=checkbox]").count() == 1

    page.click(".copy-reply")
    page.wait_for_selector(".copy-status >> text=Copied.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("Hello Globex,")
    page.screenshot(path=str(screenshot_dir() / "postmortem-editor.png"), full_page=True)

    page.click("input[name=_continue]")
    page.wait_for_selector("#review-button")
    postmortem.refresh_from_db()
    assert postmortem.body.startswith("# Edited") and postmortem.edited_by == "boss"
    page.click("#review-button")
    page.wait_for_selector("#publish-button")
    page.click("#publish-button")
    page.wait_for_selector("text=is now published")
    postmortem.refresh_from_db()
    assert postmortem.status == "published" and postmortem.published_by == "boss"

"""The demo's past incidents: the dashboard has two weeks of trends and one postmortem to read."""

from io import StringIO

import pytest
from django.core.management import call_command

from incidents import analytics
from incidents.demo.history import PAST_INCIDENTS, seed_history
from incidents.models import Incident, Postmortem

pytestmark = pytest.mark.django_db


def test_seed_demo_writes_the_history_once_with_a_postmortem(settings, tmp_path):
    settings.BASE_DIR = tmp_path
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())

    assert Incident.objects.filter(labels__demo_history="true").count() == len(PAST_INCIDENTS)
    postmortem = Postmortem.objects.get()
    assert postmortem.incident.title == "ReadTimeout: payment provider did not answer in 10 s"
    assert "lasted 50m" in postmortem.body and "- Events: 64; regressions: 0" in postmortem.body
    assert "Acme Corp (2)" in postmortem.body and "Globex (1)" in postmortem.body
    assert (
        "## Root cause\n\nthe payment provider's EU endpoint was degraded; failed over to the US endpoint."
        in postmortem.body
    )
    assert postmortem.customer_replies.count() == 2
    assert seed_history() == 0


def test_the_history_fills_the_dashboard():
    seed_history()
    data = analytics.figures(14)

    assert data["incidents"]["total"] == 8
    assert data["resolved"] == 7 and data["endings"]["source"] == 3 and data["endings"]["escalated"] == 1
    # MTTA over the 7 acknowledged: (4 + 9 + 3 + 25 + 12 + 6 + 2) / 7 minutes.
    assert data["mtta_seconds"] == round(61 * 60 / 7, 1)
    assert data["noisiest_fingerprints"][0]["events"] == 64

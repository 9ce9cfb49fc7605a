"""Postmortems: drafted on resolution from the records (facts) and the offline analyzer (narrative),
reviewed and published in order, exported as Markdown and HTML, handed to the knowledge writer."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from incidents import tasks as incident_tasks
from incidents.models import CustomerReply, Postmortem
from incidents.postmortems import PostmortemRefused, draft_postmortem, mark_reviewed, publish
from incidents.services import acknowledge_incident, resolve_incident
from knowledge import tasks as knowledge_tasks
from knowledge.models import KnowledgeEntry
from tests.record_factories import (
    ActivityFactory,
    ApprovalFactory,
    ComplaintFactory,
    DiagnosisFactory,
    ExecutionFactory,
    FixAttemptFactory,
    IncidentFactory,
)

pytestmark = pytest.mark.django_db

PR_URL = "https://github.com/acme/shop/pull/42"


def queued(func: str) -> list[tuple]:
    """The (args) of the tasks waiting in the real ORM broker for `func`."""
    found = []
    for row in OrmQ.objects.all():
        task = SignedPackage.loads(row.payload)
        if task["func"] == func:
            found.append(tuple(task["args"]))
    return found


@pytest.fixture
def remediated(db):
    """An incident that lasted an hour: two customers complained, a code fix was approved, published, verified."""
    started = timezone.now() - timedelta(hours=1)
    incident = IncidentFactory(
        title="ZeroDivisionError in average_line_amount",
        service="shop",
        environment="production",
        severity="P1",
        exception_type="ZeroDivisionError",
        culprit="shop.billing.average_line_amount",
        first_seen=started,
        last_seen=started + timedelta(minutes=30),
        event_count=37,
    )
    ActivityFactory(incident=incident, kind="opened", message="Opened by generic", created_at=started)
    ComplaintFactory(incident=incident, customer_id="c-1", customer_name="ACME Corp", reported_at=started)
    ComplaintFactory(incident=incident, customer_id="c-1", customer_name="ACME Corp", reported_at=started)
    ComplaintFactory(incident=incident, customer_id="c-2", customer_name="", reported_at=started)
    diagnosis = DiagnosisFactory(
        incident=incident, hypothesis="An empty invoice divides by zero lines.", confidence=0.9, provider="offline"
    )
    FixAttemptFactory(diagnosis=diagnosis, number=1, status="failed")
    ExecutionFactory(
        approval=ApprovalFactory(
            diagnosis=diagnosis, status="approved", decided_by="alice", summary="Return 0 for an empty invoice."
        ),
        pull_request_url=PR_URL,
    )
    acknowledge_incident(incident.pk, actor="bob")
    return incident


def test_a_long_incident_gets_its_draft_queued_when_it_resolves(remediated, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        resolve_incident(remediated.pk, actor="alice", note="Fix merged and deployed")

    assert queued("incidents.tasks.draft_postmortem") == [(remediated.pk, "quench", False)]


def test_a_short_incident_gets_no_draft(django_capture_on_commit_callbacks, settings):
    settings.QUENCH_POSTMORTEM_MIN_MINUTES = 10
    incident = IncidentFactory(first_seen=timezone.now() - timedelta(minutes=9))
    with django_capture_on_commit_callbacks(execute=True):
        resolve_incident(incident.pk, actor="alice")

    assert queued("incidents.tasks.draft_postmortem") == []


def test_the_draft_has_the_records_facts_and_marks_the_generated_parts(remediated):
    resolve_incident(remediated.pk, actor="alice", note="Fix merged and deployed")

    postmortem = Postmortem.objects.get(pk=incident_tasks.draft_postmortem(remediated.pk))

    remediated.refresh_from_db()
    facts = postmortem.facts
    assert facts["duration_seconds"] == int((remediated.resolved_at - remediated.first_seen).total_seconds())
    assert facts["events"] == 37
    assert facts["affected_customers"] == [
        {"customer_id": "c-1", "customer_name": "ACME Corp", "complaints": 2},
        {"customer_id": "c-2", "customer_name": "", "complaints": 1},
    ] or facts["affected_customers"] == [
        {"customer_id": "c-2", "customer_name": "", "complaints": 1},
        {"customer_id": "c-1", "customer_name": "ACME Corp", "complaints": 2},
    ]
    assert facts["root_cause"]["text"] == "An empty invoice divides by zero lines."
    assert facts["resolution"]["kind"] == "code_fix"
    assert facts["resolution"]["pull_request_url"] == PR_URL
    assert facts["fix_attempts"] == 2  # the failed one and the approved one
    body = postmortem.body
    assert body.startswith(f"# Postmortem: incident #{remediated.pk} — ZeroDivisionError in average_line_amount")
    assert "- Service: shop (production) · severity P1" in body
    assert "lasted 1h 0m" in body
    assert "- Events: 37; regressions: 0" in body
    assert "- Affected customers (complaints): 2" in body and "ACME Corp (2)" in body
    assert "An empty invoice divides by zero lines. *(source: diagnosis #" in body
    assert f"Code fix: {PR_URL}. Return 0 for an empty invoice." in body
    assert "| bob | Acknowledged by bob |" in body
    assert "| alice | Fix merged and deployed |" in body
    assert "1 fix attempt(s) failed in the sandbox" in body
    # Narrative and recommendations come from the writer, and say so.
    assert postmortem.generated_sections == ["summary", "recommendations"]
    assert postmortem.narrative_by == "the offline analyzer"
    assert "## Summary *(generated by the offline analyzer: check before publishing)*" in body
    assert "## Recommendations *(generated by the offline analyzer" in body
    assert "replays the input that raised ZeroDivisionError in shop.billing.average_line_amount" in body
    # Facts sections carry no such mark.
    assert "## Root cause\n" in body and "## Impact\n" in body


def test_each_affected_customer_gets_a_draft_reply(remediated):
    resolve_incident(remediated.pk, actor="alice")
    postmortem = draft_postmortem(remediated.pk)

    replies = {reply.customer_id: reply for reply in CustomerReply.objects.filter(postmortem=postmortem)}
    assert set(replies) == {"c-1", "c-2"}
    assert replies["c-1"].body.startswith("Hello ACME Corp,")
    assert replies["c-1"].complaints == 2
    assert "Why: An empty invoice divides by zero lines." in replies["c-1"].body
    assert "We corrected the faulty code and deployed the fix." in replies["c-1"].body
    assert replies["c-2"].body.startswith("Hello c-2,")


def test_drafting_is_idempotent_and_a_redraft_keeps_edited_replies(remediated):
    resolve_incident(remediated.pk, actor="alice")
    first = draft_postmortem(remediated.pk)
    again = draft_postmortem(remediated.pk)
    assert again.pk == first.pk and again.body == first.body and again.drafted_at == first.drafted_at
    assert Postmortem.objects.count() == 1 and CustomerReply.objects.count() == 2

    CustomerReply.objects.filter(customer_id="c-1").update(body="My own words", edited_by="carol")
    redrafted = draft_postmortem(remediated.pk, actor="carol", redraft=True)
    assert redrafted.pk == first.pk and redrafted.drafted_by == "carol"
    assert CustomerReply.objects.get(customer_id="c-1").body == "My own words"
    assert CustomerReply.objects.get(customer_id="c-2").body.startswith("Hello c-2,")


def test_draft_reviewed_published_in_order_and_published_goes_to_knowledge(
    remediated, django_capture_on_commit_callbacks
):
    resolve_incident(remediated.pk, actor="alice")
    postmortem = draft_postmortem(remediated.pk)

    with pytest.raises(PostmortemRefused, match="must be reviewed before it is published"):
        publish(postmortem.pk, actor="alice")
    mark_reviewed(postmortem.pk, actor="bob")
    with pytest.raises(PostmortemRefused, match="only a draft can be redrafted"):
        draft_postmortem(remediated.pk, redraft=True)
    with django_capture_on_commit_callbacks(execute=True):
        published = publish(postmortem.pk, actor="alice")
    assert published.status == "published" and published.published_by == "alice"

    assert queued("knowledge.tasks.write_postmortem") == [(postmortem.pk,)]
    entry = KnowledgeEntry.objects.get(pk=knowledge_tasks.write_postmortem(postmortem.pk))
    assert entry.kind == "postmortem" and entry.path_type == "postmortem_published"
    assert entry.incident_id == remediated.pk and entry.body == published.body
    assert entry.title == f"Postmortem: Incident #{remediated.pk}: ZeroDivisionError in average_line_amount"
    # A redelivered task updates the same entry.
    assert knowledge_tasks.write_postmortem(postmortem.pk) == entry.pk
    assert KnowledgeEntry.objects.filter(kind="postmortem").count() == 1


def test_a_narrative_writer_that_fails_leaves_a_facts_only_draft(remediated, monkeypatch):
    from remediation.llm.offline.analyzer import OfflineAnalyzer

    def broken(self, facts):
        raise RuntimeError("model unavailable")

    monkeypatch.setattr(OfflineAnalyzer, "write_postmortem", broken)
    resolve_incident(remediated.pk, actor="alice")
    postmortem = draft_postmortem(remediated.pk)

    assert postmortem.generated_sections == [] and postmortem.narrative_by == ""
    assert "(no narrative writer answered): write the summary yourself." in postmortem.body
    assert "generated by" not in postmortem.body
    assert "An empty invoice divides by zero lines." in postmortem.body  # the facts are all there


# --- export ------------------------------------------------------------------------------------


def test_the_markdown_export(remediated, client, engineer):
    resolve_incident(remediated.pk, actor="alice")
    postmortem = draft_postmortem(remediated.pk)
    url = f"/api/v1/incidents/{remediated.pk}/postmortem.md"

    assert client.get(url).status_code in (401, 403)
    client.force_login(engineer)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert f'filename="postmortem-incident-{remediated.pk}.md"' in response["Content-Disposition"]
    text = response.content.decode()
    assert text.startswith("<!-- Status: Draft -->\n# Postmortem: incident #")
    assert postmortem.body.strip() in text


def test_the_markdown_export_of_an_incident_without_postmortem_is_a_json_404(client, engineer):
    incident = IncidentFactory()
    client.force_login(engineer)

    response = client.get(f"/api/v1/incidents/{incident.pk}/postmortem.md")
    assert response.status_code == 404
    assert response.json() == {"error": f"Incident #{incident.pk} has no postmortem yet.", "detail": {}}
    assert client.get("/api/v1/incidents/999999/postmortem.md").status_code == 404


def test_the_preview_and_printable_page_are_sanitized(remediated, admin_client):
    resolve_incident(remediated.pk, actor="alice")
    postmortem = draft_postmortem(remediated.pk)
    postmortem.body += '\n<script>alert("x")</script>\n\n[click](javascript:alert(1)) <img src=x onerror=alert(1)>\n'
    postmortem.save()

    preview = admin_client.post("/admin/incidents/postmortem/preview/", {"body": postmortem.body})
    printable = admin_client.get(f"/admin/incidents/postmortem/{postmortem.pk}/print/")
    for response in (preview, printable):
        assert response.status_code == 200
        html = response.content.decode()
        assert "<script>" not in html and "javascript:" not in html and "onerror" not in html
        assert "<h2>Root cause</h2>" in html
        assert "<table>" in html
    assert "Status: Draft" in printable.content.decode()
    assert admin_client.get("/admin/incidents/postmortem/preview/").status_code == 405


def test_the_admin_review_and_publish_buttons(remediated, admin_client, django_capture_on_commit_callbacks):
    resolve_incident(remediated.pk, actor="alice")
    postmortem = draft_postmortem(remediated.pk)
    page = admin_client.get(f"/admin/incidents/postmortem/{postmortem.pk}/change/").content.decode()
    assert 'id="review-button"' in page and 'id="publish-button"' not in page
    assert 'class="button copy-reply"' in page and page.count("copy-reply") >= 2

    admin_client.post(f"/admin/incidents/postmortem/{postmortem.pk}/review/")
    postmortem.refresh_from_db()
    assert postmortem.status == "reviewed" and postmortem.reviewed_by == "admin"
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/admin/incidents/postmortem/{postmortem.pk}/publish/")
    postmortem.refresh_from_db()
    assert postmortem.status == "published"
    assert queued("knowledge.tasks.write_postmortem") == [(postmortem.pk,)]


def test_the_incident_page_drafts_on_demand_through_the_queue(admin_client):
    incident = IncidentFactory(status="acknowledged")
    page = admin_client.get(f"/admin/incidents/incident/{incident.pk}/change/").content.decode()
    assert 'id="draft-postmortem-button"' in page

    response = admin_client.post(f"/admin/incidents/incident/{incident.pk}/postmortem/")
    assert response.status_code == 302
    assert queued("incidents.tasks.draft_postmortem") == [(incident.pk, "admin", False)]
    incident_tasks.draft_postmortem(incident.pk, "admin", False)

    page = admin_client.get(f"/admin/incidents/incident/{incident.pk}/change/").content.decode()
    assert 'id="postmortem-link"' in page and "Postmortem (draft)" in page
    assert Postmortem.objects.get(incident=incident).drafted_by == "admin"


def test_an_engineers_root_cause_note_wins_over_the_diagnosis(remediated):
    from incidents.services.lifecycle import record_activity

    record_activity(
        remediated, "note", "Root cause: the invoice importer drops lines with a zero price.", actor="carol"
    )
    resolve_incident(remediated.pk, actor="alice")

    postmortem = draft_postmortem(remediated.pk)

    assert postmortem.facts["root_cause"] == {
        "text": "the invoice importer drops lines with a zero price.",
        "source": "note by carol",
    }
    assert "Cause (note by carol): the invoice importer drops lines with a zero price." in postmortem.body


def test_the_admin_action_queues_drafts_for_incidents_without_one(admin_client, remediated):
    other = IncidentFactory()
    resolve_incident(remediated.pk, actor="alice")
    draft_postmortem(remediated.pk)

    response = admin_client.post(
        "/admin/incidents/incident/",
        {"action": "draft_postmortems", "_selected_action": [remediated.pk, other.pk]},
        follow=True,
    )

    assert "Drafting 1 postmortem(s); reload in a moment. 1 incident(s) already have one." in response.content.decode()
    assert queued("incidents.tasks.draft_postmortem") == [(other.pk, "admin", False)]


def test_the_redraft_button_queues_a_redraft_of_a_draft_only(admin_client, remediated):
    resolve_incident(remediated.pk, actor="alice")
    postmortem = draft_postmortem(remediated.pk)

    admin_client.post(f"/admin/incidents/postmortem/{postmortem.pk}/redraft/")
    assert queued("incidents.tasks.draft_postmortem") == [(remediated.pk, "admin", True)]

    mark_reviewed(postmortem.pk, actor="bob")
    OrmQ.objects.all().delete()
    response = admin_client.post(f"/admin/incidents/postmortem/{postmortem.pk}/redraft/", follow=True)
    assert "Only a draft can be redrafted." in response.content.decode()
    assert queued("incidents.tasks.draft_postmortem") == []
    assert incident_tasks.draft_postmortem(remediated.pk, "admin", True) is None  # a late redraft is refused


def test_editing_a_published_postmortem_refreshes_its_knowledge(
    admin_client, remediated, django_capture_on_commit_callbacks
):
    resolve_incident(remediated.pk, actor="alice")
    postmortem = draft_postmortem(remediated.pk)
    mark_reviewed(postmortem.pk, actor="bob")
    publish(postmortem.pk, actor="alice")
    knowledge_tasks.write_postmortem(postmortem.pk)
    OrmQ.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/incidents/postmortem/{postmortem.pk}/change/",
            {
                "title": postmortem.title,
                "body": "# Rewritten\n\nThe importer is fixed.",
                "customer_replies-TOTAL_FORMS": "2",
                "customer_replies-INITIAL_FORMS": "2",
                "customer_replies-MIN_NUM_FORMS": "0",
                "customer_replies-MAX_NUM_FORMS": "1000",
                **{
                    f"customer_replies-{index}-{name}": value
                    for index, reply in enumerate(postmortem.customer_replies.order_by("customer_id"))
                    for name, value in (
                        ("id", reply.pk),
                        ("postmortem", postmortem.pk),
                        ("body", "Edited reply" if reply.customer_id == "c-1" else reply.body),
                    )
                },
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    postmortem.refresh_from_db()
    assert postmortem.body.startswith("# Rewritten") and postmortem.edited_by == "admin"
    assert CustomerReply.objects.get(customer_id="c-1").edited_by == "admin"
    assert queued("knowledge.tasks.write_postmortem") == [(postmortem.pk,)]
    knowledge_tasks.write_postmortem(postmortem.pk)
    assert KnowledgeEntry.objects.get(kind="postmortem").body == "# Rewritten\n\nThe importer is fixed."

"""Verification: merged → healthy → quiet → resolved; recurrence → regressed; abandoned; unhealthy."""

import http.server
import io
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from incidents.models import Incident
from incidents.services import resolve_incident
from knowledge.models import KnowledgeEntry
from remediation import approvals, services
from remediation.execution import run_execution
from remediation.learning import record_fix_knowledge
from remediation.models import Diagnosis, Execution, Service
from remediation.verification import watch_executions
from tests.approval_desk import approver, make_remote, make_service, open_incident, propose_fix, run_git


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):
        self.send_response(self.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def health():
    _Health.status = 200
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/healthz", _Health
    server.shutdown()
    server.server_close()


@pytest.fixture
def published(db, tmp_path, post_json, make_integration, django_user_model, health):
    """(execution, remote, token) of a fix published to a bare remote, awaiting its merge."""
    url, _ = health
    path, patch = make_remote(tmp_path)
    make_service(path, health_check_url=url)
    token = make_integration("generic").raw_token
    approval = propose_fix(open_incident(post_json, token), patch)
    approvals.approve(approval.pk, user=approver(django_user_model))
    execution = Execution.objects.get(approval=approval)
    assert run_execution(execution.pk) == "published"
    execution.refresh_from_db()
    return execution, path, token


def _merge(execution):
    call_command("merge_fix", str(execution.incident_id), stdout=io.StringIO())


def test_merged_healthy_and_quiet_resolves_the_incident(published, settings):
    execution, remote, _ = published
    assert watch_executions() == {"waiting": 1}  # not merged yet
    execution.refresh_from_db()
    assert execution.verification == "awaiting_merge" and "Waiting for" in execution.verification_note

    _merge(execution)  # the command merges, then runs one pass: merged → health check
    assert run_git(remote, "merge-base", "--is-ancestor", execution.commit_sha, "main") == ""
    execution.refresh_from_db()
    assert execution.verification == "health_check" and execution.merged_at is not None

    assert watch_executions() == {"quiet_window": 1}
    execution.refresh_from_db()
    assert execution.healthy_at is not None
    assert execution.quiet_until == execution.healthy_at + timedelta(seconds=settings.QUENCH_VERIFY_WINDOW_SECONDS)
    assert watch_executions() == {"quiet": 1}  # the window is still open

    assert watch_executions(now=execution.quiet_until + timedelta(seconds=1)) == {"verified": 1}
    execution.refresh_from_db()
    incident = Incident.objects.get(pk=execution.incident_id)
    assert execution.verification == "verified" and execution.verified_at is not None
    assert incident.status == "resolved"
    assert incident.timeline.filter(to_status="resolved", message__startswith="Verified: no recurrence").exists()
    assert watch_executions() == {}  # nothing left to verify


def test_the_outcome_goes_to_the_knowledge_base(published):
    execution, _, _ = published
    _merge(execution)
    watch_executions()
    execution.refresh_from_db()
    watch_executions(now=execution.quiet_until + timedelta(seconds=1))
    Execution.objects.filter(pk=execution.pk).update(
        effectiveness=5, outcome_feedback="Clean fix.", learning_notes="Validate catalogue items at import."
    )
    entry = record_fix_knowledge(execution.pk)
    assert entry.kind == "fix" and entry.incident_id == execution.incident_id
    assert "Validate catalogue items at import." in entry.body and "Effectiveness: 5/5" in entry.body
    assert "raise ValueError" in entry.body  # the patch itself
    assert record_fix_knowledge(execution.pk).pk == entry.pk  # idempotent
    assert KnowledgeEntry.objects.filter(incident_id=execution.incident_id, path_type="approval_decided").count() == 1


def test_a_recurrence_in_the_quiet_window_regresses_and_rediagnoses_with_the_failed_fix(published, post_json):
    execution, _, token = published
    _merge(execution)
    watch_executions()  # healthy → quiet window
    open_incident(post_json, token)  # the same crash fires again
    assert watch_executions() == {"recurred": 1}
    execution.refresh_from_db()
    incident = Incident.objects.get(pk=execution.incident_id)
    assert execution.verification == "recurred" and "fired again" in execution.verification_note
    assert incident.regression_count == 1
    # Back to diagnosis, and the next patch is told which fix did not hold.
    assert incident.status == "diagnosing"
    diagnosis = Diagnosis.objects.filter(incident=incident, trigger="regressed").get()
    history = services._previous_reviews(diagnosis)
    assert [record.number for record in history] == [1]
    assert "verification failed" in history[0].reviewer_feedback
    assert "Do not propose it again" in history[0].reviewer_feedback


def test_a_deleted_branch_hands_the_incident_back(published):
    execution, remote, _ = published
    run_git(remote, "branch", "-D", execution.branch)
    assert watch_executions() == {"abandoned": 1}
    incident = Incident.objects.get(pk=execution.incident_id)
    assert incident.status == "acknowledged"
    assert incident.timeline.filter(message__contains="deleted without being merged").exists()


def test_a_service_that_stays_unhealthy_fails_verification(published, health):
    execution, _, _ = published
    _, handler = health
    handler.status = 503
    _merge(execution)
    assert watch_executions() == {"unhealthy": 1}
    execution.refresh_from_db()
    assert "Not healthy yet" in execution.verification_note and "503" in execution.verification_note
    later = timezone.now() + timedelta(minutes=16)
    assert watch_executions(now=later) == {"failed": 1}
    assert Incident.objects.get(pk=execution.incident_id).status == "escalated"


def test_a_service_without_health_check_goes_straight_to_the_quiet_window(published):
    execution, _, _ = published
    Service.objects.update(health_check_url="")
    _merge(execution)
    assert watch_executions() == {"quiet_window": 1}
    execution.refresh_from_db()
    assert "No health check configured" in execution.verification_note


def test_resolving_by_hand_ends_verification(published):
    execution, _, _ = published
    resolve_incident(execution.incident_id, actor="carol")
    execution.refresh_from_db()
    assert execution.verification == "ended" and "Resolved by carol" in execution.verification_note
    assert watch_executions() == {}


def test_the_watch_executions_command(published, capsys):
    call_command("watch_executions")
    assert "waiting: 1" in capsys.readouterr().out


def test_merge_fix_refuses_an_incident_without_a_published_fix(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no published fix"):
        call_command("merge_fix", "424242")


def test_the_github_path_opens_one_pull_request_and_verifies_its_merge(
    db, tmp_path, post_json, make_integration, django_user_model, settings, caplog
):
    from tests import github_stub

    token = "ghp_" + "s3cr3tT0ken" * 3
    path, patch = make_remote(tmp_path)
    make_service(path, github_repository="acme/pricing")
    with github_stub.serve(token, "acme/pricing") as github:
        github.seed(path, "main")
        settings.QUENCH_GITHUB_TOKEN, settings.QUENCH_GITHUB_API_URL = token, github.base_url
        approval = propose_fix(open_incident(post_json, make_integration("generic").raw_token), patch)
        approvals.approve(approval.pk, user=approver(django_user_model), note="LGTM")
        execution = Execution.objects.get(approval=approval)
        assert run_execution(execution.pk) == "published"
        execution.refresh_from_db()
        assert execution.code_host == "github" and execution.pull_request_number == 1
        assert execution.pull_request_url == "https://github.com/acme/pricing/pull/1"
        assert run_execution(execution.pk) != "published"  # a redelivery
        assert len(github.calls("POST", "/pulls")) == 1
        pull = github.pulls[1]
        assert pull.head == execution.branch and pull.base == "main"
        assert "unit_price reads" in pull.body and f"/admin/incidents/incident/{execution.incident_id}/" in pull.body
        assert "1 passed" in pull.body  # the sandbox's test output

        assert watch_executions() == {"waiting": 1}
        github.set_pull(1, state="closed", merged=True)
        assert watch_executions() == {"health_check": 1}
    # The token is used for the API only: never stored, never logged.
    stored = [str(value) for value in Execution.objects.values_list().get()]
    stored += list(Incident.objects.get().timeline.values_list("message", flat=True))
    assert not any(token in value for value in stored)
    assert token not in caplog.text


def test_outcome_fields_are_edited_in_the_admin_and_reach_the_knowledge_base(
    published, client, django_user_model, django_capture_on_commit_callbacks
):
    execution, _, _ = published
    client.force_login(django_user_model.objects.get(username="approver"))
    url = f"/admin/remediation/execution/{execution.pk}/change/"
    assert client.get(url).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url, {"effectiveness": "4", "outcome_feedback": "Held up.", "learning_notes": "Validate at the API."}
        )
    assert response.status_code == 302, response.content[:500]
    execution.refresh_from_db()
    assert (execution.effectiveness, execution.learning_notes) == (4, "Validate at the API.")
    assert execution.branch  # read-only fields are untouched
    from django_q.models import OrmQ

    assert [task.func() for task in OrmQ.objects.all()] == ["remediation.tasks.record_fix_knowledge"]
    response = client.post(url, {"effectiveness": "9", "outcome_feedback": "", "learning_notes": ""})
    assert response.status_code == 200 and b"less than or equal to 5" in response.content

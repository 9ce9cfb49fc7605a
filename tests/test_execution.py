"""Carrying out approved proposals: one branch per attempt whatever is re-delivered, playbooks step by step."""

import http.server
import threading
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from incidents.models import Activity, Incident
from remediation import approvals, services
from remediation.codehosts.git import GitRemoteHost
from remediation.execution import change_for, run_execution
from remediation.models import Execution, Playbook
from tests.approval_desk import approver, make_remote, make_service, open_incident, propose_fix, run_git
from tests.cluster import run_cluster_until
from tests.concurrency import at_once


@pytest.fixture
def approved(db, tmp_path, post_json, make_integration, django_user_model):
    """(execution, bare remote) of an approved code fix, its task not run yet."""
    path, patch = make_remote(tmp_path)
    make_service(path)
    approval = propose_fix(open_incident(post_json, make_integration("generic").raw_token), patch)
    approvals.approve(approval.pk, user=approver(django_user_model), note="ship it")
    return Execution.objects.get(approval=approval), path


def _branches(remote):
    return sorted(line.strip().lstrip("* ") for line in run_git(remote, "branch", "--list").splitlines())


def test_an_approved_fix_becomes_a_branch_on_the_remote(approved):
    execution, remote = approved
    assert run_execution(execution.pk) == "published"
    execution.refresh_from_db()
    branch = f"quench/incident-{execution.incident_id}-attempt-1"
    assert execution.status == "succeeded" and execution.verification == "awaiting_merge"
    assert execution.branch == branch and execution.code_host == "git"
    assert _branches(remote) == sorted(["main", branch])
    assert run_git(remote, "rev-parse", branch).strip() == execution.commit_sha
    # The commit: the tested patch on the tested base, by Quench, saying what and why.
    author = run_git(remote, "log", "-1", "--format=%an <%ae>", branch).strip()
    assert author.startswith("Quench <")
    message = run_git(remote, "log", "-1", "--format=%B", branch)
    assert "Fix: KeyError: 'price'" in message and "Root cause: unit_price reads" in message
    assert run_git(remote, "rev-parse", f"{branch}^").strip() == execution.approval.fix_attempt.base_commit
    assert 'raise ValueError("The item has no price.")' in run_git(remote, "show", f"{branch}:pricing/prices.py")
    incident = Incident.objects.get(pk=execution.incident_id)
    assert incident.status == "verifying"
    assert Activity.objects.filter(incident=incident, to_status="verifying", message__contains=branch).exists()


def test_a_redelivered_task_publishes_nothing_more(approved):
    execution, remote = approved
    run_execution(execution.pk)
    first = Execution.objects.get(pk=execution.pk)
    assert run_execution(execution.pk) == "done or in progress elsewhere"
    assert Execution.objects.get(pk=execution.pk).commit_sha == first.commit_sha
    assert len(_branches(remote)) == 2


def test_a_worker_killed_mid_publish_is_taken_over_and_makes_the_same_commit(approved, settings):
    execution, remote = approved
    # The first worker pushed the branch, then died before recording it.
    execution = Execution.objects.select_related(
        "approval__fix_attempt", "approval__diagnosis", "incident__service_record"
    ).get(pk=execution.pk)
    pushed = GitRemoteHost().publish(change_for(execution))
    stale = timezone.now() - timedelta(seconds=settings.Q_CLUSTER["timeout"] + 1)
    Execution.objects.filter(pk=execution.pk).update(claimed_at=stale)
    assert run_execution(execution.pk) == "published"
    execution.refresh_from_db()
    assert execution.commit_sha == pushed.commit_sha
    assert len(_branches(remote)) == 2


def test_a_foreign_branch_of_the_same_name_is_not_overwritten(approved):
    execution, remote = approved
    run_git(remote, "branch", f"quench/incident-{execution.incident_id}-attempt-1", "main")
    assert run_execution(execution.pk) == "failed"
    execution.refresh_from_db()
    assert execution.status == "failed" and "already exists" in execution.error
    assert Incident.objects.get(pk=execution.incident_id).status == "escalated"


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_publish_once(tmp_path, post_json, make_integration, django_user_model):
    path, patch = make_remote(tmp_path)
    make_service(path)
    approval = propose_fix(open_incident(post_json, make_integration("generic").raw_token), patch)
    approvals.approve(approval.pk, user=approver(django_user_model))
    execution = Execution.objects.get(approval=approval)
    results = at_once(lambda: run_execution(execution.pk), 4)
    assert sorted(results) == ["done or in progress elsewhere"] * 3 + ["published"]
    assert len(_branches(path)) == 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_clusters_and_redelivered_tasks_make_one_branch(tmp_path, post_json, make_integration, django_user_model):

    from remediation.queue import enqueue_execution

    path, patch = make_remote(tmp_path)
    make_service(path)
    approval = propose_fix(open_incident(post_json, make_integration("generic").raw_token), patch)
    approvals.approve(approval.pk, user=approver(django_user_model))  # enqueues once, on commit
    execution = Execution.objects.get(approval=approval)
    for _ in range(3):  # and the broker delivers it again and again
        enqueue_execution(execution.pk)

    def settled() -> bool:
        execution.refresh_from_db()
        return execution.status != "running" and not OrmQ.objects.exists()

    run_cluster_until(settled, 90, clusters=2)
    execution.refresh_from_db()
    assert execution.status == "succeeded", execution.error
    assert _branches(path) == sorted(["main", execution.branch])
    assert Execution.objects.count() == 1


# --- playbooks -------------------------------------------------------------------------------


class _Ops(http.server.BaseHTTPRequestHandler):
    """An ops endpoint and a health check; `statuses` maps paths to answers, `calls` records requests."""

    statuses: dict = {}
    calls: list = []

    def _answer(self):
        self.calls.append((self.command, self.path))
        status = self.statuses.get(self.path.split("?")[0], 404)
        body = b"ok" if status == 200 else b"nope"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def ops_server():
    _Ops.statuses, _Ops.calls = {}, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ops)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", _Ops
    server.shutdown()
    server.server_close()


def _playbook_proposal(post_json, token, ops_url, *, steps):
    playbook = Playbook.objects.create(
        name="Cancel long queries", match_service="pricing", risk_level="low", steps=steps
    )
    incident = open_incident(post_json, token, title="QueryCanceled: statement timeout", dedup_key="db-timeout")
    diagnosis, _ = services.request_diagnosis(incident.pk, trigger="new")
    diagnosis.playbook = playbook
    diagnosis.save()
    return services.propose_playbook(diagnosis.pk)


def test_a_playbook_runs_its_steps_in_order_and_records_each(
    db, post_json, make_integration, ops_server, django_user_model, settings
):
    url, ops = ops_server
    ops.statuses = {"/cancel": 200, "/health": 200}
    steps = [
        {
            "type": "http",
            "name": "Cancel",
            "method": "POST",
            "url": url + "/cancel?older_than=30s",
            "expect_status": 200,
        },
        {"type": "wait", "name": "Settle", "seconds": 0},
        {"type": "command", "name": "Say it", "command": ["echo", "cancelled for {{ service }}"]},
        {"type": "check", "name": "Healthy", "url": url + "/health", "expect_status": 200, "contains": "ok"},
        {"type": "task", "name": "Note it", "task": "timeline_note", "kwargs": {"message": "Long queries cancelled"}},
    ]
    approval = _playbook_proposal(post_json, make_integration("generic").raw_token, url, steps=steps)
    approvals.approve(approval.pk, user=approver(django_user_model))
    execution = Execution.objects.get(approval=approval)
    assert run_execution(execution.pk) == "playbook ran"
    execution.refresh_from_db()
    assert execution.status == "succeeded" and execution.verification == "quiet_window"
    assert [step["status"] for step in execution.steps] == ["succeeded"] * 5
    assert execution.steps[2]["output"].startswith("exit 0\ncancelled for pricing")
    assert ops.calls == [("POST", "/cancel?older_than=30s"), ("GET", "/health")]
    assert execution.quiet_until > timezone.now() + timedelta(seconds=settings.QUENCH_VERIFY_WINDOW_SECONDS - 60)
    incident = Incident.objects.get(pk=execution.incident_id)
    assert incident.status == "verifying"
    assert Activity.objects.filter(incident=incident, message="Long queries cancelled").exists()
    assert Playbook.objects.get(pk=approval.playbook_id).last_run_at is not None


def test_a_failing_step_stops_the_playbook(db, post_json, make_integration, ops_server, django_user_model):
    url, ops = ops_server
    ops.statuses = {"/cancel": 500, "/health": 200}
    steps = [
        {"type": "http", "name": "Cancel", "method": "POST", "url": url + "/cancel", "expect_status": 200},
        {"type": "check", "name": "Healthy", "url": url + "/health"},
    ]
    approval = _playbook_proposal(post_json, make_integration("generic").raw_token, url, steps=steps)
    approvals.approve(approval.pk, user=approver(django_user_model))
    execution = Execution.objects.get(approval=approval)
    assert run_execution(execution.pk) == "failed"
    execution.refresh_from_db()
    assert execution.status == "failed" and len(execution.steps) == 1
    assert execution.steps[0]["status"] == "failed" and "HTTP 500" in execution.steps[0]["output"]
    assert "step 1 (Cancel) failed" in execution.error
    assert ops.calls == [("POST", "/cancel")]  # the check never ran
    assert Incident.objects.get(pk=execution.incident_id).status == "escalated"


def test_a_step_interrupted_by_a_crash_is_not_repeated(db, post_json, make_integration, ops_server, django_user_model):
    url, ops = ops_server
    ops.statuses = {"/cancel": 200}
    steps = [{"type": "http", "name": "Cancel", "method": "POST", "url": url + "/cancel"}]
    approval = _playbook_proposal(post_json, make_integration("generic").raw_token, url, steps=steps)
    approvals.approve(approval.pk, user=approver(django_user_model))
    execution = Execution.objects.get(approval=approval)
    Execution.objects.filter(pk=execution.pk).update(steps=[{"position": 1, "name": "Cancel", "status": "running"}])
    assert run_execution(execution.pk) == "failed"
    execution.refresh_from_db()
    assert "interrupted" in execution.error and "not repeated automatically" in execution.error
    assert ops.calls == []


def test_a_command_off_the_allow_list_is_refused(
    db, post_json, make_integration, ops_server, django_user_model, settings
):
    settings.QUENCH_PLAYBOOK_COMMANDS = ["echo"]
    url, _ = ops_server
    steps = [{"type": "command", "name": "Say it", "command": ["echo", "hi"]}]
    approval = _playbook_proposal(post_json, make_integration("generic").raw_token, url, steps=steps)
    settings.QUENCH_PLAYBOOK_COMMANDS = ["kubectl"]  # tightened after the playbook was written
    approvals.approve(approval.pk, user=approver(django_user_model))
    execution = Execution.objects.get(approval=approval)
    assert run_execution(execution.pk) == "failed"
    execution.refresh_from_db()
    assert "not on QUENCH_PLAYBOOK_COMMANDS" in execution.steps[0]["output"]


def test_a_playbook_honours_its_cooldown_across_incidents(
    db, post_json, make_integration, ops_server, django_user_model
):
    url, ops = ops_server
    ops.statuses = {"/cancel": 200}
    steps = [{"type": "http", "name": "Cancel", "method": "POST", "url": url + "/cancel"}]
    token = make_integration("generic").raw_token
    user = approver(django_user_model)
    first = _playbook_proposal(post_json, token, url, steps=steps)
    approvals.approve(first.pk, user=user)
    assert run_execution(Execution.objects.get(approval=first).pk) == "playbook ran"
    # Another incident of the same service wants the same playbook minutes later.
    incident = open_incident(post_json, token, title="QueryCanceled again", dedup_key="db-timeout-2")
    diagnosis, _ = services.request_diagnosis(incident.pk, trigger="new")
    diagnosis.playbook = first.playbook
    diagnosis.save()
    second = services.propose_playbook(diagnosis.pk)
    approvals.approve(second.pk, user=user)
    execution = Execution.objects.get(approval=second)
    assert run_execution(execution.pk) == "cooldown"
    execution.refresh_from_db()
    assert "cooldown is 30 min" in execution.error
    assert ops.calls == [("POST", "/cancel")]  # ran once

"""Approve and reject: one service, the permission, races with expiry, supersession, policy approvals."""

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.utils import timezone

from incidents.models import Activity, Incident
from incidents.services import acknowledge_incident, resolve_incident
from remediation import approvals, services
from remediation.approvals import ApprovalRefused
from remediation.choices import ApprovalStatus, DiagnosisStatus, ExecutionStatus
from remediation.models import ApprovalRequest, Execution, FixAttempt, Playbook
from tests.approval_desk import approver, make_remote, make_service, open_incident, propose_fix, viewer


@pytest.fixture
def remote(tmp_path):
    return make_remote(tmp_path)


@pytest.fixture
def proposal(db, remote, post_json, make_integration):
    path, patch = remote
    make_service(path)
    incident = open_incident(post_json, make_integration("generic").raw_token)
    return propose_fix(incident, patch)


def test_approve_records_who_and_starts_the_execution(proposal, django_user_model, django_capture_on_commit_callbacks):
    user = approver(django_user_model)
    with django_capture_on_commit_callbacks() as callbacks:
        approval = approvals.approve(proposal.pk, user=user, note="Looks right; ship it.")
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED
    assert approval.decided_by == "approver" and approval.decided_at is not None
    assert approval.note == "Looks right; ship it."
    incident = Incident.objects.get(pk=proposal.incident_id)
    assert incident.status == "remediating"
    execution = Execution.objects.get(approval=approval)
    assert execution.status == ExecutionStatus.RUNNING and execution.kind == "code_fix"
    entry = Activity.objects.filter(incident=incident, to_status="remediating").get()
    assert entry.actor == "approver" and "Looks right; ship it." in entry.message
    assert len(callbacks) == 1  # the execution task, on commit only


def test_a_user_without_the_permission_cannot_decide(proposal, django_user_model):
    user = viewer(django_user_model)
    with pytest.raises(PermissionDenied):
        approvals.approve(proposal.pk, user=user)
    with pytest.raises(PermissionDenied):
        approvals.reject(proposal.pk, user=user, feedback="no")
    proposal.refresh_from_db()
    assert proposal.status == ApprovalStatus.PENDING
    assert not Execution.objects.exists()


def test_a_superuser_may_decide(proposal, django_user_model):
    boss = django_user_model.objects.create_superuser("boss", password="pw-boss-123456")
    assert approvals.approve(proposal.pk, user=boss).status == ApprovalStatus.APPROVED


def test_a_decided_approval_is_refused_with_the_reason(proposal, django_user_model):
    user = approver(django_user_model)
    approvals.approve(proposal.pk, user=user)
    with pytest.raises(ApprovalRefused) as refused:
        approvals.reject(proposal.pk, user=user, feedback="changed my mind")
    assert "no longer pending: it was approved by approver" in refused.value.message
    with pytest.raises(ApprovalRefused):
        approvals.approve(proposal.pk, user=user)
    assert Execution.objects.count() == 1


def test_rejecting_needs_feedback(proposal, django_user_model):
    with pytest.raises(ValueError, match="Say why"):
        approvals.reject(proposal.pk, user=approver(django_user_model), feedback="   ")
    proposal.refresh_from_db()
    assert proposal.status == ApprovalStatus.PENDING


def test_an_expired_approval_is_refused_and_stays_expired(proposal, django_user_model):
    ApprovalRequest.objects.filter(pk=proposal.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ApprovalRefused) as refused:
        approvals.approve(proposal.pk, user=approver(django_user_model))
    assert "expired" in refused.value.message
    proposal.refresh_from_db()
    assert proposal.status == ApprovalStatus.EXPIRED  # committed, though the approval was refused
    assert Incident.objects.get(pk=proposal.incident_id).status == "escalated"
    assert not Execution.objects.exists()


def _approve_racing(approval_id, user, barrier, results):
    barrier.wait()
    try:
        approvals.approve(approval_id, user=user)
        results["approve"] = "approved"
    except ApprovalRefused as exc:
        results["approve"] = exc.current_status
    finally:
        connections.close_all()


def _expire_racing(now, barrier, results):
    barrier.wait()
    try:
        results["expired"] = approvals.expire_overdue_approvals(now=now)
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_an_approval_racing_its_expiry_is_decided_exactly_once(
    tmp_path, post_json, make_integration, django_user_model
):
    path, patch = make_remote(tmp_path)
    make_service(path)
    user = approver(django_user_model)
    for round_number in range(4):
        incident = open_incident(post_json, make_integration("generic").raw_token, dedup_key=f"race-{round_number}")
        approval = propose_fix(incident, patch)
        # The approver clicks just before the expiry; the sweep runs as if just after it.
        expires_at = timezone.now() + timedelta(seconds=5)
        ApprovalRequest.objects.filter(pk=approval.pk).update(expires_at=expires_at)
        barrier, results = threading.Barrier(2), {}
        threads = [
            threading.Thread(target=_approve_racing, args=(approval.pk, user, barrier, results)),
            threading.Thread(target=_expire_racing, args=(expires_at + timedelta(seconds=1), barrier, results)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        approval.refresh_from_db()
        executions = Execution.objects.filter(approval=approval).count()
        # Exactly one decision: approved with one execution, or expired with none.
        if approval.status == ApprovalStatus.APPROVED:
            assert results == {"approve": "approved", "expired": 0} and executions == 1
        else:
            assert approval.status == ApprovalStatus.EXPIRED
            assert results["expired"] == 1 and results["approve"] == ApprovalStatus.EXPIRED and executions == 0


@pytest.mark.django_db(transaction=True)
def test_two_reviewers_at_once_decide_once(tmp_path, post_json, make_integration, django_user_model):
    path, patch = make_remote(tmp_path)
    make_service(path)
    first, second = approver(django_user_model, "alice"), approver(django_user_model, "bob")
    approval = propose_fix(open_incident(post_json, make_integration("generic").raw_token), patch)
    barrier = threading.Barrier(2)
    results = []

    def decide(user, verb):
        barrier.wait()
        try:
            if verb == "approve":
                approvals.approve(approval.pk, user=user)
            else:
                approvals.reject(approval.pk, user=user, feedback="Validate at the boundary instead.")
            results.append(verb)
        except ApprovalRefused:
            results.append("refused")
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=decide, args=(first, "approve")),
        threading.Thread(target=decide, args=(second, "reject")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) in (["approve", "refused"], ["refused", "reject"])
    approval.refresh_from_db()
    assert approval.status in (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED)
    assert Execution.objects.count() == (1 if approval.status == ApprovalStatus.APPROVED else 0)


def test_reject_puts_the_diagnosis_back_to_work_with_the_reviewers_words(
    proposal, django_user_model, django_capture_on_commit_callbacks
):
    words = "Don't raise here; return the catalogue's default price of 0 only for free items."
    with django_capture_on_commit_callbacks() as callbacks:
        approvals.reject(proposal.pk, user=approver(django_user_model), feedback=words)
    proposal.refresh_from_db()
    assert proposal.status == ApprovalStatus.REJECTED and proposal.feedback == words
    incident = Incident.objects.get(pk=proposal.incident_id)
    assert incident.status == "diagnosing"
    diagnosis = proposal.diagnosis
    diagnosis.refresh_from_db()
    assert diagnosis.status == DiagnosisStatus.RUNNING
    assert len(callbacks) == 1  # fix attempt 2 is queued on commit
    assert services.review_round(diagnosis) == 2
    timeline = Activity.objects.filter(incident=incident, to_status="diagnosing").last()
    assert words in timeline.message and "Fix attempt 2 will follow the feedback" in timeline.message


def test_each_review_round_has_its_own_attempt_budget(proposal, django_user_model, settings):
    settings.QUENCH_FIX_MAX_ATTEMPTS = 2
    approvals.reject(proposal.pk, user=approver(django_user_model), feedback="Use the documented default.")
    diagnosis = proposal.diagnosis
    attempt = FixAttempt.objects.create(
        diagnosis=diagnosis, incident_id=proposal.incident_id, number=2, review_round=2, status="failed"
    )
    # Round 1 used one attempt and round 2 one: round 2 may still retry once.
    assert services._after_failure(diagnosis, attempt, 2) == "retrying"
    attempt3 = FixAttempt.objects.create(
        diagnosis=diagnosis, incident_id=proposal.incident_id, number=3, review_round=2, status="failed"
    )
    assert services._after_failure(diagnosis, attempt3, 2) == "escalated"


@pytest.mark.parametrize(
    "act, reason",
    [
        (lambda incident_id: resolve_incident(incident_id, actor="carol"), "the incident was resolved by carol"),
        (
            lambda incident_id: acknowledge_incident(incident_id, actor="carol", note="won't fix"),
            "the incident was acknowledged (won't fix now) by carol",
        ),
        (
            lambda incident_id: services.reanalyze(incident_id, actor="carol"),
            "a new diagnosis was requested (reanalyze)",
        ),
    ],
    ids=["resolve", "acknowledge", "reanalyze"],
)
def test_resolving_acknowledging_or_reanalyzing_supersedes_the_pending_proposal(proposal, act, reason):
    act(proposal.incident_id)
    proposal.refresh_from_db()
    assert proposal.status == ApprovalStatus.SUPERSEDED
    assert proposal.decision_reason == reason
    assert proposal.decided_by == "carol"


def test_a_low_risk_auto_approve_playbook_runs_by_policy(db, post_json, make_integration, settings):
    playbook = Playbook.objects.create(
        name="Note it",
        match_service="pricing",
        risk_level="low",
        auto_approve=True,
        steps=[{"type": "task", "name": "Note", "task": "timeline_note", "kwargs": {"message": "noted"}}],
    )
    incident = open_incident(post_json, make_integration("generic").raw_token, title="Disk almost full")
    diagnosis, _ = services.request_diagnosis(incident.pk, trigger="new")
    diagnosis.playbook = playbook
    diagnosis.save()
    approval = services.propose_playbook(diagnosis.pk)
    assert approvals.approve_by_policy(approval.pk) is not None
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED and approval.decided_by == "policy"
    assert "low risk and allowed to run without approval" in approval.decision_reason
    assert Execution.objects.filter(approval=approval).exists()
    # A second delivery of the policy task decides nothing more.
    assert approvals.approve_by_policy(approval.pk) is None


def test_a_playbook_that_needs_approval_is_not_approved_by_policy(db, post_json, make_integration):
    playbook = Playbook.objects.create(
        name="Restart", match_service="pricing", risk_level="medium", steps=[{"type": "wait", "seconds": 1}]
    )
    incident = open_incident(post_json, make_integration("generic").raw_token, title="Workers stuck")
    diagnosis, _ = services.request_diagnosis(incident.pk, trigger="new")
    diagnosis.playbook = playbook
    diagnosis.save()
    approval = services.propose_playbook(diagnosis.pk)
    assert approvals.approve_by_policy(approval.pk) is None
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING


def test_the_approvers_group_is_seeded_with_the_permission(db):
    from django.contrib.auth.models import Group

    group = Group.objects.get(name="Approvers")
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert {"approve_remediation", "view_approvalrequest", "view_incident", "change_execution"} <= codenames


def test_a_rejection_the_analyzer_cannot_follow_ends_without_proposing_the_same_fix_again(proposal, django_user_model):
    # The rejected fix raised in unit_price(); the reviewer rules that out, and nothing else is safe.
    approvals.reject(
        proposal.pk,
        user=approver(django_user_model),
        feedback="Do not raise from unit_price; validate the item where the order is built.",
    )
    assert services.run_fix_attempt(proposal.diagnosis_id, 2) == "escalated"
    attempt = FixAttempt.objects.get(diagnosis_id=proposal.diagnosis_id, number=2)
    assert attempt.status == "no_patch" and not attempt.patch
    incident = Incident.objects.get(pk=proposal.incident_id)
    assert incident.status == "escalated"
    assert incident.timeline.filter(message__contains="no other patch follows the reviewer's feedback").exists()

"""From a real crash to a tested fix awaiting approval: diagnosis, sandboxed patches, critic, proposals.

The example shop (examples/shop) is made a real git repository; its crashes are produced
by examples/trigger.py (real tracebacks), ingested through the API, diagnosed by the
offline analyzer and fixed in the real sandbox (git worktree + the shop's pytest suite).
"""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from incidents.choices import IncidentStatus
from incidents.models import Activity, Incident, IncidentWakeup
from incidents.tasks import handle_wakeup
from remediation import approvals, services
from remediation.choices import ApprovalStatus, DiagnosisStatus, FixAttemptStatus
from remediation.llm.base import PatchProposal
from remediation.llm.offline import OfflineAnalyzer
from remediation.management.commands.setup_demo_service import DEMO_PLAYBOOKS
from remediation.models import ApprovalRequest, Diagnosis, FixAttempt, Playbook, Service
from tests.cluster import run_cluster_until
from tests.demo_service import drive, scenario_payload

CRASH_SCENARIOS = ["payment-missing-currency", "search-no-results", "analytics-no-orders", "customer-not-found"]


@pytest.mark.parametrize("scenario", CRASH_SCENARIOS)
def test_each_crash_class_reaches_a_tested_fix_awaiting_approval(shop, crash, scenario):
    incident = crash(scenario)
    diagnosis = Diagnosis.objects.get(incident=incident)
    assert diagnosis.status == DiagnosisStatus.QUEUED
    assert Incident.objects.get(pk=incident.pk).status == IncidentStatus.DIAGNOSING

    assert drive(diagnosis.pk) == "proposed"

    diagnosis.refresh_from_db()
    assert diagnosis.status == DiagnosisStatus.SUCCEEDED
    assert diagnosis.recommended_action == "code_fix"
    assert diagnosis.culprit_file.startswith("shop/")
    assert diagnosis.provider == "offline"
    assert diagnosis.decision_chain and diagnosis.decision_chain[0]["step"] == "diagnose"
    assert diagnosis.context_summary["repository"] is True
    attempt = FixAttempt.objects.get(diagnosis=diagnosis, status=FixAttemptStatus.PASSED)
    assert attempt.patch.startswith("diff --git")
    # The fix is in a file of the traceback: the culprit's, or the caller's where the input enters.
    traceback_files = [frame["filename"] for frame in incident.events.get().frames]
    assert any(name.endswith("/" + path) for path in attempt.files_changed for name in traceback_files)
    assert "passed" in attempt.output
    approval = ApprovalRequest.objects.get(incident=incident)
    assert approval.status == ApprovalStatus.PENDING
    assert approval.fix_attempt == attempt
    assert approval.expires_at > timezone.now() + timedelta(hours=settings.QUENCH_APPROVAL_TTL_HOURS - 1)
    assert Incident.objects.get(pk=incident.pk).status == IncidentStatus.AWAITING_APPROVAL


def test_the_database_timeout_gets_the_playbook_with_a_dry_run(shop, crash):
    shop.health_check_url = "http://shop.internal:8080/healthz"  # the playbook calls the service's own URLs
    shop.save()
    for spec in DEMO_PLAYBOOKS:
        Playbook.objects.create(**spec)
    incident = crash("db-statement-timeout")
    diagnosis = Diagnosis.objects.get(incident=incident)

    assert drive(diagnosis.pk) == "playbook proposed"

    approval = ApprovalRequest.objects.get(incident=incident)
    assert approval.kind == "playbook"
    assert approval.playbook.name == DEMO_PLAYBOOKS[0]["name"]
    assert approval.dry_run[0]["description"].startswith("POST http://shop.internal:8080/ops/shop/db/")
    assert Incident.objects.get(pk=incident.pk).status == IncidentStatus.AWAITING_APPROVAL


def test_redelivered_tasks_create_no_second_attempt_or_approval(shop, crash):
    incident = crash("search-no-results")
    diagnosis = Diagnosis.objects.get(incident=incident)
    drive(diagnosis.pk)
    attempts = FixAttempt.objects.filter(diagnosis=diagnosis).count()

    # The queue redelivers every task of the chain (a worker died before acknowledging).
    assert services.run_diagnosis(diagnosis.pk) == "not running"
    for number in range(1, attempts + 1):
        assert services.run_fix_attempt(diagnosis.pk, number) == "not running"
    passed = FixAttempt.objects.get(diagnosis=diagnosis, status=FixAttemptStatus.PASSED)
    assert services.request_approval(diagnosis.pk, fix_attempt_id=passed.pk) == ApprovalRequest.objects.get()
    handle_wakeup(IncidentWakeup.objects.get(incident=incident).pk)

    assert FixAttempt.objects.filter(diagnosis=diagnosis).count() == attempts
    assert ApprovalRequest.objects.count() == 1
    assert Diagnosis.objects.count() == 1


def test_an_attempt_claimed_by_a_live_worker_is_left_alone(shop, crash):
    incident = crash("search-no-results")
    diagnosis = Diagnosis.objects.get(incident=incident)
    assert services.run_diagnosis(diagnosis.pk) == "fixing"
    FixAttempt.objects.create(diagnosis=diagnosis, incident=incident, number=1, started_at=timezone.now())
    assert services.run_fix_attempt(diagnosis.pk, 1) == "in progress elsewhere"
    # A claim older than the queue's task timeout belonged to a killed worker: taken over.
    FixAttempt.objects.filter(diagnosis=diagnosis).update(started_at=timezone.now() - timedelta(hours=1))
    assert services.run_fix_attempt(diagnosis.pk, 1) == "proposed"


class BreakingProvider(OfflineAnalyzer):
    """Stands in for a model whose patches keep failing the service's tests (the sandbox run is real)."""

    def propose_patch(self, context, diagnosis, history):
        self.histories.append(list(history))
        source = context.source_file(diagnosis.culprit_file)
        broken = source.content.replace("def ", "def broken_", 1)
        from remediation.diffs import FileChange, unified_diff

        diff = unified_diff([FileChange(source.path, source.content, broken)])
        return PatchProposal(summary=f"rename attempt {len(history) + 1}", diff=diff, files_changed=[source.path])

    def __init__(self):
        super().__init__()
        self.histories = []


def test_the_critic_loop_retries_with_feedback_then_escalates_with_the_attempts(shop, crash):
    incident = crash("payment-missing-currency")
    diagnosis = Diagnosis.objects.get(incident=incident)
    provider = BreakingProvider()

    assert drive(diagnosis.pk, provider=provider) == "escalated"

    attempts = list(FixAttempt.objects.filter(diagnosis=diagnosis).order_by("number"))
    assert [a.status for a in attempts] == [FixAttemptStatus.FAILED] * settings.QUENCH_FIX_MAX_ATTEMPTS
    for attempt in attempts:
        assert attempt.exit_code not in (0, None)
        assert attempt.critic_what_failed and attempt.critic_why and attempt.critic_next
    # Each new attempt was given every earlier one with the critic's verdict.
    assert [len(history) for history in provider.histories] == [0, 1, 2]
    assert provider.histories[2][1].critic_feedback.startswith("WHAT FAILED:")
    assert "NEXT ATTEMPT MUST" in attempts[2].feedback_used
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.ESCALATED
    details = Activity.objects.get(incident=incident, message="Escalation details")
    assert [item["status"] for item in details.data["fix_attempts"]] == ["failed"] * 3
    assert not ApprovalRequest.objects.exists()
    assert Diagnosis.objects.get(pk=diagnosis.pk).outcome.startswith("escalated: 3 fix attempt(s) failed")


def test_at_most_one_diagnosis_in_flight_per_incident(shop, crash):
    incident = crash("analytics-no-orders")
    assert services.request_diagnosis(incident.pk, trigger="spike") == (Diagnosis.objects.get(), False)
    with pytest.raises(IntegrityError), transaction.atomic():
        Diagnosis.objects.create(incident=incident, trigger="manual")


def test_a_resolved_incident_stops_its_diagnosis(shop, crash):
    from incidents.services import resolve_incident

    incident = crash("analytics-no-orders")
    diagnosis = Diagnosis.objects.get(incident=incident)
    resolve_incident(incident.pk, actor="oncall")
    assert services.run_diagnosis(diagnosis.pk) == "incident no longer diagnosing"
    assert Diagnosis.objects.get(pk=diagnosis.pk).status == DiagnosisStatus.SUCCEEDED
    assert not FixAttempt.objects.exists()


def test_an_alert_without_code_is_diagnosed_and_handed_to_a_human_without_escalation(db, post_json, make_integration):
    token = make_integration("generic").raw_token
    response = post_json("/api/v1/ingest/events", {"service": "billing", "title": "Disk almost full"}, token)
    incident_id = response.json()["results"][0]["incident_id"]
    handle_wakeup(IncidentWakeup.objects.get(incident_id=incident_id).pk)
    diagnosis = Diagnosis.objects.get(incident_id=incident_id)

    assert drive(diagnosis.pk) == "diagnosed"
    diagnosis.refresh_from_db()
    assert diagnosis.status == DiagnosisStatus.SUCCEEDED and diagnosis.hypothesis
    assert diagnosis.outcome.startswith("diagnosed, no code fix applies: ")
    incident = Incident.objects.get(pk=incident_id)
    assert incident.status == IncidentStatus.TRIGGERED  # a human's queue, not escalated
    handed = incident.timeline.filter(from_status=IncidentStatus.DIAGNOSING, to_status=IncidentStatus.TRIGGERED).get()
    assert "Next step:" in handed.message


def test_an_expired_approval_escalates_the_incident(shop, crash):
    incident = crash("search-no-results")
    drive(Diagnosis.objects.get(incident=incident).pk)
    ApprovalRequest.objects.update(expires_at=timezone.now() - timedelta(minutes=1))

    assert approvals.expire_overdue_approvals() == 1
    assert ApprovalRequest.objects.get().status == ApprovalStatus.EXPIRED
    assert Incident.objects.get(pk=incident.pk).status == IncidentStatus.ESCALATED
    assert approvals.expire_overdue_approvals() == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_real_queue_carries_a_crash_to_a_tested_fix(post_json, make_integration, shop_repo):
    """Webhook → wake-up → diagnosis → fix attempts → approval, every step a django-q2 task of a real cluster."""

    Service.objects.create(
        name="shop", repository=str(shop_repo), test_command="python -m pytest -q -p no:cacheprovider"
    )
    token = make_integration("generic").raw_token
    response = post_json("/api/v1/ingest/events", scenario_payload("analytics-no-orders", shop_repo), token)
    incident_id = response.json()["results"][0]["incident_id"]

    run_cluster_until(lambda: ApprovalRequest.objects.filter(incident_id=incident_id).exists(), 120)

    approval = ApprovalRequest.objects.get(incident_id=incident_id)
    assert approval.status == ApprovalStatus.PENDING and approval.fix_attempt.status == FixAttemptStatus.PASSED
    assert Incident.objects.get(pk=incident_id).status == IncidentStatus.AWAITING_APPROVAL
    assert Diagnosis.objects.filter(incident_id=incident_id).count() == 1


def test_an_exhausted_anthropic_quota_falls_back_to_the_offline_analyzer(shop, crash):
    """The real SDK gets the recorded "credit balance too low" answer; the diagnosis still ends in a tested fix."""
    import anthropic
    import httpx2

    from remediation.llm.anthropic import AnthropicProvider

    billing = json.loads(
        (Path(settings.BASE_DIR) / "tests/fixtures/anthropic/error_400_credit_balance.json").read_text()
    )
    requests = []

    def api(request):
        requests.append(request)
        return httpx2.Response(400, json=billing)

    client = anthropic.Anthropic(
        api_key="test-key", max_retries=0, http_client=httpx2.Client(transport=httpx2.MockTransport(api))
    )
    provider = AnthropicProvider(client=client, sleep=lambda seconds: None)
    incident = crash("search-no-results")
    diagnosis = Diagnosis.objects.get(incident=incident)

    assert drive(diagnosis.pk, provider=provider) == "proposed"

    diagnosis.refresh_from_db()
    assert diagnosis.provider == "offline"
    refused = diagnosis.decision_chain[0]
    assert refused["provider"] == "anthropic" and refused["step"] == "diagnose"
    assert "credit" in refused["error"].lower()
    assert "test-key" not in json.dumps(diagnosis.decision_chain)
    assert len(requests) >= 1  # one per step: a quota refusal is never retried
    assert ApprovalRequest.objects.get(incident=incident).status == ApprovalStatus.PENDING


def test_a_fix_attempt_records_that_it_ran_isolated_and_its_type_check(shop, crash):
    incident = crash("search-no-results")
    assert drive(Diagnosis.objects.get(incident=incident).pk) == "proposed"
    attempt = FixAttempt.objects.get(incident=incident, status=FixAttemptStatus.PASSED)
    assert attempt.isolated is True  # bubblewrap is installed wherever the suite runs
    assert attempt.failed_check == ""
    assert attempt.type_check in ("passed", "skipped")


class RiskierSecondIdea(OfflineAnalyzer):
    """The offline analyzer, but its patch judges itself riskier than the diagnosis's first idea."""

    def propose_patch(self, context, diagnosis, history):
        proposal = super().propose_patch(context, diagnosis, history)
        proposal.risk_level = "high"
        return proposal


def test_the_proposal_carries_the_patchs_own_risk(shop, crash):
    incident = crash("payment-missing-currency")
    diagnosis = Diagnosis.objects.get(incident=incident)
    assert drive(diagnosis.pk, provider=RiskierSecondIdea()) == "proposed"
    attempt = FixAttempt.objects.get(incident=incident, status=FixAttemptStatus.PASSED)
    approval = ApprovalRequest.objects.get(fix_attempt=attempt)
    assert attempt.risk_level == approval.risk_level == "high"
    assert Diagnosis.objects.get(pk=diagnosis.pk).risk_level != "high"


def test_a_payment_fix_is_never_rated_low(shop, crash):
    incident = crash("payment-missing-currency")
    assert drive(Diagnosis.objects.get(incident=incident).pk) == "proposed"
    approval = ApprovalRequest.objects.get(incident=incident)
    assert approval.risk_level in ("medium", "high")
    assert approval.fix_attempt.risk_level == approval.risk_level

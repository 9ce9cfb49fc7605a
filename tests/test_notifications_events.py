"""Which changes write which notifications, in their own transaction, routed by severity, service and event."""

from datetime import timedelta

import pytest
from django.db import transaction

from incidents.services import acknowledge_incident, resolve_incident, transition_incident
from notifications import services
from notifications.models import Notification
from remediation import approvals
from remediation import services as remediation_services
from remediation.execution import run_execution
from remediation.models import Execution
from tests.approval_desk import approver, make_remote, make_service, propose_fix
from tests.approval_desk import open_incident as open_pricing_incident
from tests.notify_receiver import make_channel, open_incident


@pytest.fixture
def token(make_integration):
    return make_integration("generic").raw_token


def hook(name: str = "hook", **fields):
    return make_channel(
        "webhook", name=name, config={"url": "https://ops.example.com/q"}, secrets={"secret": "x"}, **fields
    )


def events_of(channel) -> list[str]:
    return list(Notification.objects.filter(channel=channel).order_by("pk").values_list("event", flat=True))


def test_routing_by_severity_service_and_event(post_json, token):
    everything = hook("everything")
    severe = hook("severe only", min_severity="P1")
    shop = hook("shop only", services=["shop"])
    resolutions = hook("resolutions", events=["incident_resolved"])
    escalation = hook("pager", is_escalation=True)
    disabled = hook("off", enabled=False)

    moderate = open_incident(post_json, token, title="Slow page", severity="P2", service="shop")
    critical = open_incident(post_json, token, title="Billing down", severity="P0", service="billing")
    resolve_incident(moderate.pk, actor="alice")

    assert events_of(everything) == ["incident_opened", "incident_opened", "incident_resolved"]
    assert [n.incident_id for n in Notification.objects.filter(channel=severe)] == [critical.pk]
    assert {n.incident_id for n in Notification.objects.filter(channel=shop)} == {moderate.pk}
    assert events_of(resolutions) == ["incident_resolved"]
    assert events_of(escalation) == [] and events_of(disabled) == []


def test_a_rolled_back_change_notifies_nobody(post_json, token):
    channel = hook()
    incident = open_incident(post_json, token)
    with pytest.raises(RuntimeError), transaction.atomic():
        resolve_incident(incident.pk, actor="alice")
        raise RuntimeError("the rest of the change failed")
    assert events_of(channel) == ["incident_opened"]


def test_acknowledging_is_not_announced_but_regressing_and_escalating_are(post_json, token):
    channel = hook()
    incident = open_incident(post_json, token)
    acknowledge_incident(incident.pk, actor="alice")
    transition_incident(incident.pk, "escalated", actor="quench", message="No fix found. A human must look.")
    resolve_incident(incident.pk, actor="alice")
    open_incident(post_json, token)  # the same fingerprint fires again: a regression
    assert events_of(channel) == ["incident_opened", "incident_escalated", "incident_resolved", "incident_regressed"]
    escalated = Notification.objects.get(channel=channel, event="incident_escalated")
    assert escalated.context["reason"] == "No fix found. A human must look."


def test_new_notifications_are_enqueued_on_commit(post_json, token, monkeypatch, django_capture_on_commit_callbacks):
    from notifications import queue

    hook()
    enqueued = []
    monkeypatch.setattr(queue.django_q_tasks, "async_task", lambda func, *args, **kw: enqueued.append((func, args, kw)))
    with django_capture_on_commit_callbacks(execute=True):
        open_incident(post_json, token)
    notification = Notification.objects.get()
    [(func, args, kw)] = [call for call in enqueued if call[0].startswith("notifications.")]
    assert func == "notifications.tasks.deliver_notification" and args == (notification.pk,)
    assert kw["task_name"] == f"notify-{notification.pk}"


def test_the_remediation_steps_each_notify(tmp_path, post_json, token, django_user_model):
    channel = hook()
    remote, patch = make_remote(tmp_path)
    make_service(remote)
    incident = open_pricing_incident(post_json, token)
    approval = propose_fix(incident, patch)
    approvals.approve(approval.pk, user=approver(django_user_model))
    execution = Execution.objects.get(approval=approval)
    assert run_execution(execution.pk) == "published"
    assert events_of(channel) == ["incident_opened", "approval_requested", "execution_started", "pull_request_opened"]
    rows = {n.event: n for n in Notification.objects.filter(channel=channel)}
    assert rows["approval_requested"].approval_id == approval.pk
    assert rows["execution_started"].execution_id == execution.pk
    assert rows["pull_request_opened"].execution_id == execution.pk


def test_an_expired_approval_and_a_failed_execution_notify(tmp_path, post_json, token, django_user_model):
    from remediation.approvals import expire_overdue_approvals
    from tests.approval_desk import run_git

    channel = hook()
    remote, patch = make_remote(tmp_path)
    make_service(remote)
    first = open_pricing_incident(post_json, token, dedup_key="one")
    approval = propose_fix(first, patch)
    assert expire_overdue_approvals(now=approval.expires_at + timedelta(seconds=1)) == 1
    assert events_of(channel)[-2:] == ["approval_expired", "incident_escalated"]

    second = open_pricing_incident(post_json, token, title="KeyError: 'qty'", dedup_key="two")
    approval = propose_fix(second, patch)
    approvals.approve(approval.pk, user=approver(django_user_model))
    execution = Execution.objects.get(approval=approval)
    run_git(remote, "branch", f"quench/incident-{second.pk}-attempt-1", "main")  # a foreign branch in the way
    assert run_execution(execution.pk) == "failed"
    assert events_of(channel)[-2:] == ["execution_failed", "incident_escalated"]
    failed = Notification.objects.get(channel=channel, event="execution_failed")
    assert failed.execution_id == execution.pk


def test_a_finished_diagnosis_notifies(post_json, token):
    channel = hook(events=["diagnosis_ready"])
    incident = open_incident(post_json, token, title="ZeroDivisionError: division by zero")
    diagnosis, _ = remediation_services.request_diagnosis(incident.pk, trigger="new")
    remediation_services.run_diagnosis(diagnosis.pk)
    [notification] = Notification.objects.filter(channel=channel)
    assert notification.event == "diagnosis_ready" and notification.diagnosis_id == diagnosis.pk


def test_undelivered_approvals_are_the_ones_no_channel_was_told_about(
    tmp_path, post_json, token, settings, monkeypatch
):
    from tests.notify_receiver import Receiver

    receiver = Receiver()
    settings.QUENCH_ALLOW_PRIVATE_WEBHOOKS = True
    try:
        make_channel("webhook", config={"url": receiver.url}, secrets={"secret": "x"}, events=["approval_requested"])
        remote, patch = make_remote(tmp_path)
        make_service(remote)
        approval = propose_fix(open_pricing_incident(post_json, token), patch)
        assert list(services.undelivered_approvals(timedelta(0))) == [approval]
        assert list(services.undelivered_approvals(timedelta(minutes=5))) == []  # too recent to worry
        services.deliver(Notification.objects.get(approval=approval).pk)
        assert list(services.undelivered_approvals(timedelta(0))) == []
    finally:
        receiver.close()

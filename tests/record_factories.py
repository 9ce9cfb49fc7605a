"""factory-boy factories for incidents and their remediation records, with explicit timestamps.

The analytics and postmortem tests build fixture sets whose figures are computed by hand,
so every time is given, never "now".
"""

from datetime import timedelta

import factory
from django.utils import timezone

from incidents.models import Activity, Complaint, Event, Incident
from remediation.models import ApprovalRequest, Diagnosis, Execution, FixAttempt


class IncidentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Incident

    fingerprint = factory.Sequence(lambda n: f"{n:064x}")
    fingerprint_version = 1
    fingerprint_strategy = "test"
    title = factory.Sequence(lambda n: f"Failure {n}")
    kind = "error"
    source = "generic"
    service = "shop"
    severity = "P2"
    status = "triggered"
    first_seen = factory.LazyFunction(timezone.now)
    last_seen = factory.LazyAttribute(lambda obj: obj.first_seen)


class ActivityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Activity

    incident = factory.SubFactory(IncidentFactory)
    kind = "status"
    message = "changed"
    created_at = factory.LazyFunction(timezone.now)


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    incident = factory.SubFactory(IncidentFactory)
    source = "generic"
    outcome = "appended"
    status = "firing"
    kind = "error"
    title = factory.LazyAttribute(lambda obj: obj.incident.title)
    service = factory.LazyAttribute(lambda obj: obj.incident.service)
    received_at = factory.LazyFunction(timezone.now)


class ComplaintFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Complaint

    customer_id = factory.Sequence(lambda n: f"cust-{n}")
    message = "Checkout is broken"
    service = "shop"


class DiagnosisFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Diagnosis

    incident = factory.SubFactory(IncidentFactory)
    status = "succeeded"
    trigger = "new"
    provider = "offline"
    finished_at = factory.LazyFunction(timezone.now)


class FixAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FixAttempt

    diagnosis = factory.SubFactory(DiagnosisFactory)
    incident = factory.LazyAttribute(lambda obj: obj.diagnosis.incident)
    number = factory.Sequence(lambda n: n + 1)
    status = "failed"


class ApprovalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApprovalRequest

    diagnosis = factory.SubFactory(DiagnosisFactory)
    incident = factory.LazyAttribute(lambda obj: obj.diagnosis.incident)
    kind = "code_fix"
    fix_attempt = factory.LazyAttribute(
        lambda obj: FixAttemptFactory(diagnosis=obj.diagnosis, status="passed", number=99)
    )
    summary = "Guard the empty cart"
    status = "pending"
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=24))


class ExecutionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Execution

    approval = factory.SubFactory(ApprovalFactory, status="approved", decided_by="alice")
    incident = factory.LazyAttribute(lambda obj: obj.approval.incident)
    kind = factory.LazyAttribute(lambda obj: obj.approval.kind)
    status = "succeeded"
    verification = "verified"

"""Silences, classification, severity, wake-ups and the state machine, through real ingestion."""

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.choices import EventOutcome, IncidentStatus
from incidents.models import ClassificationRule, Event, Incident, IncidentWakeup
from incidents.services import TransitionRefused, acknowledge_incident, resolve_incident, transition_incident
from tests.factories import SilenceFactory

INGEST = "/api/v1/ingest/events"


@pytest.fixture
def send(post_json, make_integration):
    token = make_integration("generic").raw_token

    def send(**fields):
        body = {"service": "checkout", "title": "Payment provider timeout", "severity": "error", **fields}
        response = post_json(INGEST, body, token)
        assert response.status_code == 202, response.content
        return response.json()["results"][0]

    return send


def test_a_silenced_signal_is_stored_but_the_incident_is_suppressed(send):
    SilenceFactory(match_service="checkout")

    result = send()

    incident = Incident.objects.get()
    assert incident.status == IncidentStatus.SUPPRESSED
    assert Event.objects.count() == 1
    assert not IncidentWakeup.objects.exists()
    assert incident.timeline.filter(kind="suppressed").exists()
    assert result["outcome"] == EventOutcome.OPENED


def test_a_silence_on_another_service_does_not_apply(send):
    SilenceFactory(match_service="search")
    send()
    assert Incident.objects.get().status == IncidentStatus.TRIGGERED


def test_a_silence_by_label_regex(send):
    SilenceFactory(match_labels={"region": "eu-.*"})
    send(labels={"region": "eu-west-1"})
    send(title="Other problem", labels={"region": "us-east-1"})

    assert set(Incident.objects.values_list("status", flat=True)) == {"suppressed", "triggered"}


def test_an_expired_silence_lets_the_incident_fire_again(send):
    silence = SilenceFactory(match_service="checkout")
    send()
    silence.ends_at = timezone.now() - timedelta(seconds=1)
    silence.starts_at = timezone.now() - timedelta(hours=1)
    silence.save()

    send()

    incident = Incident.objects.get()
    assert incident.status == IncidentStatus.TRIGGERED
    assert IncidentWakeup.objects.filter(incident=incident, reason="silence_ended").exists()


def test_a_new_silence_suppresses_an_open_incident_on_its_next_event(send):
    send()
    SilenceFactory(match_service="checkout")
    result = send()

    assert result["outcome"] == EventOutcome.SUPPRESSED
    assert Incident.objects.get().status == IncidentStatus.SUPPRESSED


def test_silence_validation_rejects_bad_input():
    from django.core.exceptions import ValidationError

    now = timezone.now()
    with pytest.raises(ValidationError, match="end after"):
        SilenceFactory.build(match_service="x", starts_at=now, ends_at=now - timedelta(hours=1)).full_clean()
    with pytest.raises(ValidationError, match="at least one matcher"):
        SilenceFactory.build().full_clean()
    with pytest.raises(ValidationError, match="regular expression"):
        SilenceFactory.build(match_service="(unclosed").full_clean()


def test_seeded_rules_classify_heartbeats_as_informational(send):
    send(title="Watchdog", labels={"alertname": "Watchdog"}, message="heartbeat from prometheus")

    incident = Incident.objects.get()
    assert incident.category == "heartbeat"
    assert incident.severity == "P3"


@pytest.mark.parametrize(
    ("title", "category"),
    [
        ("psycopg.OperationalError: could not connect to server", "database"),
        ("Pod api-7d9 CrashLoopBackOff", "kubernetes"),
        ("Nightly backup of orders db failed", "backup"),
        ("Brute force login attempts from 203.0.113.9", "security"),
    ],
)
def test_seeded_rules_categorize_by_message(send, title, category):
    send(title=title)
    assert Incident.objects.get().category == category


def test_the_first_matching_rule_wins_and_can_override_severity(send):
    ClassificationRule.objects.create(
        name="payments are P0", position=1, match_service="checkout", category="payments", severity_override="P0"
    )
    send()

    incident = Incident.objects.get()
    assert (incident.category, incident.severity) == ("payments", "P0")
    assert "payments are P0" in incident.severity_reason


def test_source_severity_maps_to_priority_and_only_rises(send):
    send(severity="warning")
    assert Incident.objects.get().severity == "P3"

    send(severity="critical")
    incident = Incident.objects.get()
    assert incident.severity == "P1"
    assert incident.timeline.filter(kind="severity").exists()

    send(severity="info")
    assert Incident.objects.get().severity == "P1"


def test_an_explicit_priority_label_is_honoured(send):
    send(labels={"priority": "P0"})
    assert Incident.objects.get().severity == "P0"


def test_one_wakeup_per_incident_per_window_not_per_event(send):
    for _ in range(5):
        send()

    assert IncidentWakeup.objects.count() == 1
    assert IncidentWakeup.objects.get().reason == "new"


def test_a_regression_wakes_the_incident_after_the_window(send, settings):
    send(dedup_key="k")
    send(dedup_key="k", status="resolved")
    Incident.objects.update(last_wakeup_at=timezone.now() - timedelta(hours=1))

    send(dedup_key="k")

    assert list(IncidentWakeup.objects.order_by("created_at").values_list("reason", flat=True)) == ["new", "regressed"]


def test_a_sharp_rise_in_frequency_wakes_the_incident(send, settings):
    settings.QUENCH_SPIKE_MIN_EVENTS = 5
    send()
    # An incident that has been ticking along at about one event an hour for a day...
    Incident.objects.update(
        first_seen=timezone.now() - timedelta(days=1),
        event_count=24,
        last_wakeup_at=timezone.now() - timedelta(hours=2),
    )
    for _ in range(6):
        send()

    assert list(IncidentWakeup.objects.order_by("created_at").values_list("reason", flat=True)) == ["new", "spike"]


def test_every_transition_writes_the_timeline(send):
    send()
    incident = Incident.objects.get()

    acknowledge_incident(incident.pk, actor="alice")
    resolve_incident(incident.pk, actor="alice", note="rolled back")

    entries = list(incident.timeline.filter(kind="status").values_list("from_status", "to_status", "actor"))
    assert entries == [("triggered", "acknowledged", "alice"), ("acknowledged", "resolved", "alice")]


def test_a_forbidden_transition_is_refused_with_the_reason(send):
    send()
    incident = Incident.objects.get()

    with pytest.raises(TransitionRefused, match="cannot become verifying"):
        transition_incident(incident.pk, IncidentStatus.VERIFYING, actor="bob")
    assert Incident.objects.get().status == IncidentStatus.TRIGGERED


def test_frequency_counts_by_window(send):
    from incidents.models import IncidentCounter

    send()
    incident = Incident.objects.get()
    old = timezone.now() - timedelta(days=3)
    IncidentCounter.objects.create(incident=incident, bucket_start=old, count=7)

    assert incident.frequency() == {"1h": 1, "24h": 1, "7d": 8}


def test_a_fingerprint_rule_regroups_matching_signals(send):
    from incidents.models import FingerprintRule

    FingerprintRule.objects.create(name="one incident per service", service="checkout", group_by=["service"])
    send(title="Payment provider timeout")
    send(title="Card tokenizer crashed", exception_type="ValueError")

    incident = Incident.objects.get()
    assert incident.event_count == 2
    assert incident.fingerprint_strategy == "rule:one incident per service"


def test_fingerprint_rule_validation_names_the_field(db):
    from django.core.exceptions import ValidationError

    from incidents.models import FingerprintRule

    with pytest.raises(ValidationError) as error:
        FingerprintRule(name="bad", group_by=["service", "colour"]).full_clean()
    assert "group_by" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        FingerprintRule(name="bad", message_pattern="(", static_key="x").full_clean()
    assert "message_pattern" in error.value.message_dict

"""A dedup_key groups only what one integration sends, as PagerDuty scopes dedup_key to its routing key."""

import pytest

from incidents.models import Incident


def _trigger(token: str, dedup_key: str, summary: str = "disk full on db-1") -> dict:
    return {
        "routing_key": token,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {"summary": summary, "source": "db-1", "severity": "error"},
    }


@pytest.fixture
def two_pagerduty_senders(make_integration):
    return make_integration("events_v2", name="team-a"), make_integration("events_v2", name="team-b")


def test_the_same_key_from_two_integrations_opens_two_incidents(post_json, two_pagerduty_senders):
    team_a, team_b = two_pagerduty_senders

    assert post_json("/api/v1/ingest/events-v2", _trigger(team_a.raw_token, "disk-full")).status_code == 202
    assert post_json("/api/v1/ingest/events-v2", _trigger(team_b.raw_token, "disk-full")).status_code == 202

    incidents = Incident.objects.order_by("pk")
    assert [incident.integration_id for incident in incidents] == [team_a.pk, team_b.pk]
    assert [incident.dedup_key for incident in incidents] == ["disk-full", "disk-full"]
    assert incidents[0].fingerprint != incidents[1].fingerprint


def test_the_same_key_from_one_integration_is_one_incident(post_json, two_pagerduty_senders):
    team_a, _ = two_pagerduty_senders

    post_json("/api/v1/ingest/events-v2", _trigger(team_a.raw_token, "disk-full", "disk 91% full"))
    post_json("/api/v1/ingest/events-v2", _trigger(team_a.raw_token, "disk-full", "disk 97% full"))

    incident = Incident.objects.get()
    assert incident.event_count == 2
    assert incident.fingerprint_components[0] == {
        "name": "dedup_key",
        "values": [f"integration:{team_a.pk}", "disk-full"],
        "contributes": True,
        "hint": "the source's own grouping key, within its integration",
    }


def test_a_resolve_from_another_integration_does_not_close_the_incident(post_json, two_pagerduty_senders):
    team_a, team_b = two_pagerduty_senders
    post_json("/api/v1/ingest/events-v2", _trigger(team_a.raw_token, "disk-full"))

    resolve = {"routing_key": team_b.raw_token, "event_action": "resolve", "dedup_key": "disk-full"}
    assert post_json("/api/v1/ingest/events-v2", resolve).status_code == 202

    assert Incident.objects.get().status == "triggered"
    resolve["routing_key"] = team_a.raw_token
    post_json("/api/v1/ingest/events-v2", resolve)
    assert Incident.objects.get().status == "resolved"


def test_generic_events_scope_their_dedup_key_too(post_json, make_integration):
    first, second = make_integration("generic", name="cron-a"), make_integration("generic", name="cron-b")
    event = {"service": "backup", "title": "backup failed", "dedup_key": "nightly-backup"}

    post_json("/api/v1/ingest/events", event, first.raw_token)
    post_json("/api/v1/ingest/events", {**event, "title": "backup failed again"}, first.raw_token)
    post_json("/api/v1/ingest/events", event, second.raw_token)

    assert sorted(Incident.objects.values_list("integration__name", "event_count")) == [("cron-a", 2), ("cron-b", 1)]

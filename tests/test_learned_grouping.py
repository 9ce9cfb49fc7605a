"""The learned second stage of log grouping: words that vary become variables, groups never move.

The first half tests `TemplateBook` as plain data; the second runs ingestion on the real
database, where each service's book is a `LearnedTemplates` row.
"""

import json

import pytest

from incidents.fingerprinting import TemplateBook, compute_fingerprint, normalize_message
from incidents.models import Incident, LearnedTemplates
from incidents.services.ingest import ingest_signals
from incidents.sources.base import Signal, SignalKind

USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"]


def failed_login(user: str, address: str = "10.0.0.7") -> str:
    return f"password check failed for {user} from {address} via sshd"


def group(book: TemplateBook, message: str) -> str:
    return book.group(normalize_message(message))


# --- the book, as plain data ---------------------------------------------------------------------


def test_a_word_that_takes_many_values_becomes_a_variable():
    book = TemplateBook(min_values=5)
    keys = [group(book, failed_login(user)) for user in USERS]

    first = normalize_message(failed_login("alice"))
    # The first four users are four groups until the position has earned being a variable;
    # from the fifth on, new users join the first group.
    assert keys[0] == first
    assert len(set(keys[:4])) == 4
    assert keys[4:] == [first, first, first]
    assert book.pattern_of(normalize_message(failed_login("grace"))) == (
        "password check failed for <*> from <ip> via sshd"
    )
    assert book.learned() == [(first, "password check failed for <*> from <ip> via sshd")]


def test_a_known_message_keeps_its_group_after_the_book_learns():
    book = TemplateBook(min_values=5)
    before = {user: group(book, failed_login(user)) for user in USERS}
    after = {user: group(book, failed_login(user, "192.168.4.4")) for user in USERS}
    assert after == before
    assert group(book, failed_login("zoe")) == before["alice"]


def test_fewer_different_words_than_min_values_stay_apart():
    book = TemplateBook(min_values=5)
    states = ["started", "finished", "failed", "cancelled"]
    keys = {group(book, f"nightly export job {state} on worker 3") for state in states * 5}
    assert len(keys) == 4


def test_two_different_words_at_once_are_another_event():
    book = TemplateBook(min_values=2)
    group(book, "payment capture failed for order 1")
    assert group(book, "payment refund succeeded for order 1") != group(book, "payment capture failed for order 2")


def test_a_template_with_too_few_words_left_does_not_learn():
    # `<*> startup succeeded` would say nothing about which event it is.
    book = TemplateBook(min_values=3)
    daemons = ["cron", "nginx", "postfix", "redis", "sshd", "rsyslog"]
    keys = {group(book, f"{daemon} startup succeeded") for daemon in daemons}
    assert len(keys) == len(daemons)


def test_placeholders_of_any_kind_are_one_variable():
    book = TemplateBook()
    hexadecimal = group(book, "flush of segment 0x1f2e3d4c took 12 ms")
    decimal = group(book, "flush of segment 48213 took 9 ms")
    assert hexadecimal == decimal


def test_a_value_is_not_a_word():
    # A placeholder is a value: it does not stand for the words of another message.
    book = TemplateBook()
    assert group(book, "retry 3 of 5 for invoice sync") != group(book, "retry limit of 5 for invoice sync")


def test_with_nothing_learned_the_key_is_the_template():
    book = TemplateBook()
    message = "cache miss for tenant 42 in region eu-1"
    assert group(book, message) == normalize_message(message)


def test_the_state_survives_json_and_gives_the_same_answers():
    book = TemplateBook(min_values=3)
    for user in USERS[:4]:
        group(book, failed_login(user))
    restored = TemplateBook.from_state(json.loads(json.dumps(book.to_state())), min_values=3)
    for user in [*USERS, "zoe"]:
        assert group(restored, failed_login(user)) == group(book, failed_login(user))
    assert TemplateBook.from_state({"version": 999}).templates == []


def test_a_full_book_stops_learning_and_keeps_its_answers():
    book = TemplateBook(min_values=5, max_variants=3)
    keys = [group(book, failed_login(user)) for user in USERS[:3]]
    later = [group(book, failed_login(user)) for user in USERS[3:]]
    # Full after three variants: later users are not learned, and earlier answers hold.
    assert len(set(keys)) == 3
    assert later == [normalize_message(failed_login(user)) for user in USERS[3:]]
    assert [group(book, failed_login(user)) for user in USERS[:3]] == keys
    assert len(book.variants) == 3


# --- ingestion on the real database --------------------------------------------------------------


def log_signal(message: str, service: str = "auth-gateway") -> Signal:
    return Signal(source="log", kind=SignalKind.LOG, message=message, service=service, severity="error")


def ingest(*messages: str, service: str = "auth-gateway") -> list[str]:
    return [result.fingerprint for result in ingest_signals([log_signal(m, service) for m in messages])]


@pytest.fixture
def learning(settings):
    settings.QUENCH_LEARNED_GROUPING = True
    settings.QUENCH_LEARNED_GROUPING_MIN_VALUES = 5


@pytest.mark.django_db
def test_each_service_learns_in_its_own_row(learning):
    ingest(*[failed_login(user) for user in USERS])
    ingest(failed_login("zoe"), service="billing")

    gateway = LearnedTemplates.objects.get(service="auth-gateway")
    billing = LearnedTemplates.objects.get(service="billing")
    assert gateway.template_count == 4 and gateway.variant_count == len(USERS)
    assert billing.template_count == 1 and billing.variant_count == 1
    # What the gateway learned does not group the billing service's messages...
    book = TemplateBook.from_state(billing.state)
    assert book.learned() == []
    # ...and the gateway's new users join its first incident.
    first = Incident.objects.get(service="auth-gateway", message=failed_login("alice"))
    (fingerprint,) = ingest(failed_login("yusuf"))
    assert fingerprint == first.fingerprint
    assert Incident.objects.filter(service="auth-gateway").count() == 4


@pytest.mark.django_db
def test_an_incidents_fingerprint_is_stable_as_the_book_learns(learning):
    (alice,) = ingest(failed_login("alice"))
    (bob,) = ingest(failed_login("bob"))
    ingest(*[failed_login(user) for user in ["carol", "dave", "erin", "frank"]])
    assert Incident.objects.get(fingerprint=alice).event_count == 3  # alice, erin, frank

    # The position became a variable after bob had his incident: bob's lines stay there.
    (again,) = ingest(failed_login("bob", "172.16.0.9"))
    assert again == bob
    incident = Incident.objects.get(fingerprint=bob)
    assert incident.event_count == 2
    assert incident.fingerprint_version == 2


@pytest.mark.django_db
def test_distinct_events_are_never_merged(learning):
    messages = [f"nightly export job {state} on worker 3" for state in ["started", "finished", "failed", "cancelled"]]
    fingerprints = ingest(*messages, *messages, *messages)
    assert len(set(fingerprints)) == 4
    assert Incident.objects.count() == 4


@pytest.mark.django_db
def test_batches_learn_what_one_stream_would(learning):
    stream = [failed_login(user, f"10.0.{n}.1") for n, user in enumerate(USERS * 2)]
    in_batches = ingest(*stream[:3]) + ingest(*stream[3:6]) + ingest(*stream[6:])

    book = TemplateBook(min_values=5)
    in_memory = [compute_fingerprint(log_signal(message), (), book).hash for message in stream]
    assert in_batches == in_memory


def test_a_learned_group_shows_its_pattern_in_the_hint():
    book = TemplateBook(min_values=5)
    for user in USERS[:5]:
        compute_fingerprint(log_signal(failed_login(user)), (), book)
    fingerprint = compute_fingerprint(log_signal(failed_login("zoe")), (), book)
    (message,) = [c for c in fingerprint.components if c.name == "message"]
    assert message.values == (normalize_message(failed_login("alice")),)
    assert "password check failed for <*> from <ip> via sshd" in message.hint
    assert "zoe" in message.hint


@pytest.mark.django_db
def test_turned_off_the_template_alone_groups(settings):
    settings.QUENCH_LEARNED_GROUPING = False
    fingerprints = ingest(*[failed_login(user) for user in USERS])
    assert len(set(fingerprints)) == len(USERS)
    assert not LearnedTemplates.objects.exists()


@pytest.mark.django_db
def test_the_admin_shows_what_a_service_learned(learning, admin_client):
    ingest(*[failed_login(user) for user in USERS])
    row = LearnedTemplates.objects.get(service="auth-gateway")

    listing = admin_client.get("/admin/incidents/learnedtemplates/")
    assert listing.status_code == 200
    assert "auth-gateway" in listing.content.decode()
    page = admin_client.get(f"/admin/incidents/learnedtemplates/{row.pk}/change/")
    assert page.status_code == 200
    assert "password check failed for &lt;*&gt; from &lt;ip&gt; via sshd" in page.content.decode()


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_neither_lose_nor_contradict_what_was_learned(learning):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    services = ["auth-gateway", "billing"]
    users = [f"user{n}x" for n in range(24)]

    def batch(worker: int) -> list[tuple[str, str]]:
        try:
            mine = users[worker::6]
            order = services if worker % 2 else list(reversed(services))
            signals = [log_signal(failed_login(user), service) for service in order for user in mine]
            results = ingest_signals(signals)
            return [(signal.service, result.fingerprint) for signal, result in zip(signals, results, strict=True)]
        finally:
            connection.close()

    with ThreadPoolExecutor(6) as pool:
        outcomes = [pair for pairs in pool.map(batch, range(6)) for pair in pairs]

    for service in services:
        row = LearnedTemplates.objects.get(service=service)
        assert row.variant_count == len(users)  # no batch overwrote another's learning
        book = TemplateBook.from_state(row.state)
        # Every fingerprint given out is the one the saved book gives for that message.
        expected = {compute_fingerprint(log_signal(failed_login(user), service), (), book).hash for user in users}
        assert {fingerprint for name, fingerprint in outcomes if name == service} == expected

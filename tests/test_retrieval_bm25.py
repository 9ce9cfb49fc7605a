"""BM25F on real PostgreSQL: field weights, idf, OR-matching, the term statistics, the calibrated score.

Entries go through the knowledge writer (so the generated lexemes, field lengths and the
statement triggers that count terms all run), incidents are real rows, and every ranking is
the one `knowledge.retrieval` computes in the database.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.choices import IncidentStatus
from incidents.models import Incident
from knowledge import retrieval
from knowledge.models import KnowledgeEntry, KnowledgeKind, KnowledgePath, LexicalCorpus, LexicalTerm
from knowledge.services import embed_incident_signature, write_knowledge

pytestmark = pytest.mark.django_db

FILLER = "The service was restarted and the on-call engineer watched the dashboards for an hour afterwards."


def note(title: str, body: str, *, tags=(), kind=KnowledgeKind.NOTE) -> KnowledgeEntry:
    entry = write_knowledge(path_type=KnowledgePath.MANUAL, kind=kind, title=title, body=body, tags=list(tags))
    assert entry is not None
    return entry


def ids(hits) -> list[int]:
    return [hit.id for hit in hits]


def df(term: str, corpus: str = "knowledge") -> int:
    row = LexicalTerm.objects.filter(corpus=corpus, term=term).first()
    return row.documents if row else 0


# --- ranking properties -----------------------------------------------------------------------


def test_a_term_in_the_title_outranks_the_same_term_in_the_body():
    in_body = note("Weekly maintenance window", f"Replication lag grew during the window. {FILLER}")
    in_title = note("Replication lag", f"It grew during the maintenance window. {FILLER}")

    hits = retrieval.text_search("replication", k=5)

    assert ids(hits) == [in_title.pk, in_body.pk]
    assert hits[0].bm25 > hits[1].bm25 > 0


def test_a_term_in_the_tags_outranks_the_same_term_in_the_body():
    in_body = note("Night shift notes", f"Saw pgbouncer errors. {FILLER}")
    in_tags = note("Night shift notes", f"Saw some errors. {FILLER}", tags=["pgbouncer"])

    assert ids(retrieval.text_search("pgbouncer", k=5)) == [in_tags.pk, in_body.pk]


def test_a_rare_term_outweighs_a_common_one():
    for number in range(8):
        note(f"Deploy report {number}", f"The deploy of build {number} went out. {FILLER}")
    rare = note("Checkout incident", f"A tombstone record blocked the queue. {FILLER}")
    common = note("Deploy report", f"The deploy went out again, deploy after deploy. {FILLER}")

    hits = retrieval.text_search("deploy tombstone", k=3)

    assert hits[0].id == rare.pk
    assert common.pk in ids(hits)
    assert df("deploy") == 9 and df("tombston") == 1


def test_any_query_term_matches_not_every_one():
    # Most of these words are in no entry at all; the one that is still finds it.
    entry = note("Disk full on media nodes", f"logrotate was disabled. {FILLER}")

    hits = retrieval.search("why would logrotate stop rotating zzyzx qwertyuiop", k=5)

    assert ids(hits) == [entry.pk]
    assert hits[0].matched in {"lexical", "both"}


def test_query_and_documents_are_cut_alike():
    entry = note("ConnectionResetError in the billing worker", f"The socket was reset. {FILLER}")

    # camelCase split and kept whole, stemming, case: each form finds the entry.
    for query in ("connection reset", "ConnectionResetError", "connectionreseterror", "resets"):
        assert ids(retrieval.text_search(query, k=3)) == [entry.pk], query


# --- term statistics --------------------------------------------------------------------------


def test_term_statistics_follow_inserts_updates_and_deletes():
    first = note("Redis timeout", "Timeout reading from redis-cache.")
    note("Redis memory", "Eviction policy noeviction.")
    corpus = LexicalCorpus.objects.get(name="knowledge")
    assert corpus.documents == 2 and df("redi") == 2 and df("timeout") == 1

    write_knowledge(
        path_type=KnowledgePath.MANUAL,
        kind=KnowledgeKind.NOTE,
        title="Redis timeout",
        body="Timeout reading from redis-cache.",
        incident_id=None,
    )
    KnowledgeEntry.objects.filter(pk=first.pk).update(body="Reads from the cache stalled.")
    assert df("timeout") == 2  # the title still has it, and the third entry
    assert df("stall") == 1

    KnowledgeEntry.objects.filter(title="Redis memory").delete()
    corpus.refresh_from_db()
    assert corpus.documents == 2 and df("evict") == 0 and df("redi") == 2
    assert corpus.title_length == sum(KnowledgeEntry.objects.values_list("title_length", flat=True))
    assert corpus.body_length == sum(KnowledgeEntry.objects.values_list("body_length", flat=True))


# --- the calibrated score ----------------------------------------------------------------------


def test_scores_are_calibrated_between_0_and_1_and_ordered():
    note("Currency conversion failed", f"KeyError: 'currency' in pricing.convert. {FILLER}")
    note("Disk full on media nodes", f"No space left on device. {FILLER}")
    note("Currency table stale", f"The FX rates were a day old. {FILLER}")

    hits = retrieval.search("KeyError currency in pricing", k=10)

    assert hits and all(0 < hit.score < 1 for hit in hits)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert hits[0].title == "Currency conversion failed"
    assert hits[0].score == pytest.approx(
        retrieval.calibrated_score(*_measures(hits[0], "KeyError currency in pricing"))
    )


def test_each_embedding_provider_is_scored_with_its_own_calibration(monkeypatch):
    from knowledge.embeddings import get_provider

    note("Currency conversion failed", f"KeyError: 'currency' in pricing.convert. {FILLER}")
    query = "KeyError currency in pricing"
    default = retrieval.search(query, k=1)[0]
    assert default.score == pytest.approx(retrieval.calibrated_score(*_measures(default, query)))

    # The weights are looked up by the name of the provider whose vectors are compared.
    own = retrieval.Calibration(bias=-2.0, lexical=1.0, semantic=0.5)
    monkeypatch.setitem(retrieval.CALIBRATIONS, get_provider().name, own)
    rescored = retrieval.search(query, k=1)[0]
    assert rescored.id == default.id
    assert rescored.score == pytest.approx(retrieval.calibrated_score(*_measures(rescored, query), own))
    assert rescored.score != pytest.approx(default.score)

    assert retrieval.calibration_for("minilm") != retrieval.calibration_for("local-v2")
    assert retrieval.calibration_for("a-provider-never-fitted") == retrieval.DEFAULT_CALIBRATION


def _measures(hit, query: str) -> tuple[float, float]:
    terms, _ = retrieval._query_terms(retrieval.KNOWLEDGE, query)
    return hit.bm25 / sum(idf for _, idf in terms), hit.similarity


def test_irrelevant_entries_are_not_returned():
    currency = [
        note("KeyError: 'currency' in checkout", f"The payload had no currency. {FILLER}"),
        note("Currency rounding", f"Amounts in JPY have no minor unit. {FILLER}"),
    ]
    for title in ("Disk full", "Redis timeout", "Deadlock on orders", "TLS certificate expired", "OOMKilled pods"):
        note(title, f"{title}: see the runbook. {FILLER}")

    hits = retrieval.search("currency", k=10)

    assert sorted(ids(hits)) == sorted(entry.pk for entry in currency)


def test_a_search_with_no_known_term_returns_nothing():
    note("Disk full", f"No space left on device. {FILLER}")

    assert retrieval.search("zzyzx", k=10) == []


# --- identical incidents ------------------------------------------------------------------------


def incident(*, title, exception_type, message, culprit, fingerprint=None, status=IncidentStatus.RESOLVED, days=2):
    now = timezone.now()
    row = Incident.objects.create(
        fingerprint=fingerprint or uuid.uuid4().hex,
        fingerprint_version=1,
        fingerprint_strategy="test",
        title=title,
        message=message,
        kind="error",
        source="generic",
        service="checkout",
        exception_type=exception_type,
        culprit=culprit,
        status=status,
        first_seen=now - timedelta(days=days + 1),
        last_seen=now - timedelta(days=days),
    )
    embed_incident_signature(row.pk)
    return row


def test_an_identical_past_incident_always_ranks_first():
    # The demo's case: the identical earlier KeyError ranked below an IndexError and a
    # ZeroDivisionError whose texts share more with the new incident's.
    culprit = "checkout.totals.compute_totals"
    identical = incident(title="KeyError: 'currency'", exception_type="KeyError", message="'currency'", culprit=culprit)
    incident(
        title="IndexError in checkout.totals.compute_totals: list index out of range",
        exception_type="IndexError",
        message="list index out of range in checkout.totals.compute_totals",
        culprit=culprit + "_for_cart",
    )
    incident(
        title="ZeroDivisionError in checkout.totals.compute_totals",
        exception_type="ZeroDivisionError",
        message="division by zero in checkout.totals.compute_totals",
        culprit="checkout.totals.average",
    )
    new = incident(
        title="KeyError: 'currency'",
        exception_type="KeyError",
        message="'currency'",
        culprit=culprit,
        status=IncidentStatus.TRIGGERED,
        days=0,
    )

    hits = retrieval.similar_incidents(new, k=3)

    assert hits[0].id == identical.pk
    assert (hits[0].matched, hits[0].score) == ("identical", 1.0)
    assert all(hit.matched != "identical" and hit.score < 1 for hit in hits[1:])
    assert new.pk not in ids(hits)


def test_the_same_fingerprint_is_identical_whatever_the_text():
    fingerprint = uuid.uuid4().hex
    earlier = incident(
        title="Checkout totals failed",
        exception_type="",
        message="",
        culprit="",
        fingerprint=fingerprint,
    )
    incident(title="KeyError: 'amount'", exception_type="KeyError", message="'amount'", culprit="checkout.cart.add")
    new = incident(
        title="KeyError: 'amount'",
        exception_type="KeyError",
        message="'amount'",
        culprit="checkout.cart.remove",
        fingerprint=fingerprint,
        status=IncidentStatus.TRIGGERED,
        days=0,
    )

    hits = retrieval.similar_incidents(new, k=2)

    assert [hit.id for hit in hits][0] == earlier.pk and hits[0].matched == "identical"
    assert hits[1].matched != "identical" and 0 < hits[1].score < 1


def test_the_same_error_raised_elsewhere_ranks_right_after_identical_ones():
    """The demo's case on a fresh machine: an earlier KeyError: 'currency' in another service and module
    ranked fifth, below an IndexError and a ZeroDivisionError of the new incident's service whose
    frames and labels share more words with it."""
    elsewhere = incident(
        title="KeyError: 'currency'",
        exception_type="KeyError",
        message="'currency'",
        culprit="payments.service.charge_order",
    )
    for title, exception_type, message in (
        ("IndexError: list index out of range", "IndexError", "list index out of range"),
        ("ZeroDivisionError: division by zero", "ZeroDivisionError", "division by zero"),
        ("KeyError: 'amount'", "KeyError", "'amount'"),  # the same type, another key: not the same error
    ):
        incident(title=title, exception_type=exception_type, message=message, culprit="checkout.totals.compute_totals")
    new = incident(
        title="KeyError: 'currency'",
        exception_type="KeyError",
        message="'currency'",
        culprit="checkout.totals.compute_totals_for_cart",
        status=IncidentStatus.TRIGGERED,
        days=0,
    )

    hits = retrieval.similar_incidents(new, k=3)

    found = {hit.id: hit for hit in hits}
    assert (found[elsewhere.pk].matched, found[elsewhere.pk].score) == ("same_error", 0.9)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    # Above it only what the ranking itself scores higher (the same type at the very same place);
    # never the IndexError or ZeroDivisionError that merely share the service's words.
    above = [hit.title for hit in hits[: hits.index(found[elsewhere.pk])]]
    assert all(title.startswith("KeyError") for title in above), above

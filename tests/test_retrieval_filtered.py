"""Searches filtered to kinds or services: the exact ranking from covering indexes, and `ServiceVector`.

A filter that keeps few enough rows (`retrieval.EXACT_SCAN_ROWS`) is ranked exactly, its
vectors read from an index-only scan: `knowledge_kind_vectors` for kinds, the
`ServiceVector` rows (kept by a trigger) for services. These tests pin that the trigger
keeps those rows equal to the entries through every kind of write, that the ranking is the
exact nearest-first order of the filtered entries (checked against distances computed here),
and that the indexes really cover the queries (an index-only scan is possible).
"""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection, transaction

from knowledge import retrieval
from knowledge.embeddings import get_provider
from knowledge.models import KnowledgeEntry, KnowledgeKind, KnowledgePath, ServiceVector
from knowledge.services import write_knowledge

SERVICES = ["payments", "checkout", "orders", "search"]
PROBLEMS = [
    ("KeyError 'currency' in the payment webhook", "The webhook payload had no currency; default it from the account."),
    ("Database connection pool exhausted", "Raise the pool size and find the leaking transaction."),
    ("Redis out of memory", "Evictions stopped; set maxmemory-policy to allkeys-lru."),
    ("TLS certificate expired", "Renew with certbot and reload nginx."),
    ("Disk full on the worker volume", "Rotate logs, prune docker images."),
    ("Upstream timeout from the tax provider", "Retry with backoff; alert after three failures."),
]
KINDS = [KnowledgeKind.RUNBOOK, KnowledgeKind.FIX, KnowledgeKind.NOTE, KnowledgeKind.INCIDENT_SUMMARY]


def rows_of(entry: KnowledgeEntry) -> list[tuple]:
    return sorted(
        ServiceVector.objects.filter(entry=entry).values_list("service", "embedding_provider", "kind", "embedding")
    )


def expected_rows(entry: KnowledgeEntry) -> list[tuple]:
    entry.refresh_from_db()
    if entry.embedding is None:
        return []
    return sorted((service, entry.embedding_provider, entry.kind, entry.embedding) for service in set(entry.services))


@pytest.fixture
def entries(db):
    """24 entries: every problem under several kinds and services (some under two services)."""
    made = []
    for number in range(24):
        title, body = PROBLEMS[number % len(PROBLEMS)]
        services = [SERVICES[number % 4]] + ([SERVICES[(number + 1) % 4]] if number % 3 == 0 else [])
        made.append(
            write_knowledge(
                path_type=KnowledgePath.MANUAL,
                title=f"{title} ({number})",
                body=body,
                kind=KINDS[number % len(KINDS)],
                services=services,
                tags=[],
            )
        )
    return made


# --- ServiceVector follows the entries --------------------------------------------------------


def test_every_written_entry_has_one_row_per_service(entries):
    for entry in entries:
        assert rows_of(entry) == expected_rows(entry)
    assert ServiceVector.objects.count() == sum(len(set(entry.services)) for entry in entries)


def test_rows_follow_every_change_of_services_kind_and_vector(entries):
    entry = entries[0]
    entry.services = ["billing", "billing", "search"]  # a service named twice gives one row
    entry.kind = KnowledgeKind.POSTMORTEM
    entry.save()
    assert [row[0] for row in rows_of(entry)] == ["billing", "search"]
    assert rows_of(entry) == expected_rows(entry)

    rewritten = write_knowledge(
        path_type=KnowledgePath.MANUAL,
        title="Card declined storm",
        body="Stripe returned card_declined for every EU card after the 3DS change.",
        kind=KnowledgeKind.FIX,
        services=["payments"],
        tags=[],
    )
    before = rows_of(rewritten)
    KnowledgeEntry.objects.filter(pk=rewritten.pk).update(embedding=list(entries[1].embedding))
    assert rows_of(rewritten) != before
    assert rows_of(rewritten) == expected_rows(rewritten)

    KnowledgeEntry.objects.filter(pk=rewritten.pk).update(embedding_provider="another-model")
    assert {row[1] for row in rows_of(rewritten)} == {"another-model"}


def test_an_unrelated_update_leaves_the_rows_alone(entries):
    entry = entries[3]
    ids = sorted(ServiceVector.objects.filter(entry=entry).values_list("pk", flat=True))
    entry.title = "A better title"
    entry.save()  # Django writes every column; nothing the rows hold changed
    assert sorted(ServiceVector.objects.filter(entry=entry).values_list("pk", flat=True)) == ids


def test_rows_go_with_the_entry_and_an_entry_without_vector_has_none(entries):
    gone = entries[5]
    KnowledgeEntry.objects.filter(pk=gone.pk).delete()
    assert not ServiceVector.objects.filter(entry_id=gone.pk).exists()

    bare = KnowledgeEntry.objects.create(title="Not embedded yet", body="x", kind="note", services=["payments"])
    assert rows_of(bare) == []
    KnowledgeEntry.objects.filter(pk=entries[6].pk).update(embedding=None)
    assert rows_of(entries[6]) == []


# --- the exact filtered ranking ---------------------------------------------------------------


def exact_order(query: str, kinds=None, services=None) -> list[tuple[int, float]]:
    """Every matching entry's cosine similarity to the query, computed here, nearest first."""
    vector = np.asarray(get_provider().embed_one(query), dtype=float)
    queryset = KnowledgeEntry.objects.filter(embedding_provider=get_provider().name, embedding__isnull=False)
    if kinds:
        queryset = queryset.filter(kind__in=kinds)
    if services:
        queryset = queryset.filter(services__overlap=services)
    ranked = []
    for pk, embedding in queryset.values_list("pk", "embedding"):
        stored = np.asarray(embedding, dtype=float)
        ranked.append((pk, float(stored @ vector / (np.linalg.norm(stored) * np.linalg.norm(vector)))))
    return sorted(ranked, key=lambda row: (-row[1], row[0]))


@pytest.mark.parametrize(
    "kinds, services",
    [
        (["runbook"], None),
        (["fix", "note"], None),
        (None, ["payments"]),
        (None, ["payments", "checkout"]),  # entries under both are ranked once
        (["runbook", "fix"], ["orders", "search"]),
    ],
)
def test_the_filtered_ranking_is_the_exact_nearest_first_order(entries, kinds, services):
    query = "payment webhook KeyError currency"
    vector = get_provider().embed_one(query)
    with transaction.atomic():
        ranked = retrieval._filtered_entry_ranking(get_provider().name, kinds or [], services or [], vector, 50)
    expected = exact_order(query, kinds, services)

    assert [pk for pk, _ in ranked] == [pk for pk, _ in expected]
    assert [similarity for _, similarity in ranked] == pytest.approx(
        [similarity for _, similarity in expected], abs=2e-3
    )


def test_filtered_searches_go_through_the_exact_ranking_and_find_the_filtered_best(entries):
    calls = []
    original = retrieval._filtered_entry_ranking

    def counting(*args):
        calls.append(args[1:3])
        return original(*args)

    retrieval._filtered_entry_ranking = counting
    try:
        hits = retrieval.search("Redis out of memory evictions", k=5, services=["orders"])
        kind_hits = retrieval.search("Redis out of memory evictions", k=5, kinds=["runbook"])
    finally:
        retrieval._filtered_entry_ranking = original

    assert calls == [([], ["orders"]), (["runbook"], [])]
    assert hits and all("orders" in hit.object.services for hit in hits)
    assert hits[0].title.startswith("Redis out of memory")
    assert kind_hits and {hit.kind for hit in kind_hits} == {"runbook"}
    best_runbook = exact_order("Redis out of memory evictions", kinds=["runbook"])[0][0]
    assert kind_hits[0].id == best_runbook


def test_other_providers_rows_are_never_ranked(entries):
    twin = entries[0]
    KnowledgeEntry.objects.filter(pk=twin.pk).update(embedding_provider="another-model")
    vector = get_provider().embed_one(twin.title)
    with transaction.atomic():
        by_service = retrieval._filtered_entry_ranking(get_provider().name, [], twin.services, vector, 50)
        by_kind = retrieval._filtered_entry_ranking(get_provider().name, [twin.kind], [], vector, 50)
    assert twin.pk not in {pk for pk, _ in by_service} | {pk for pk, _ in by_kind}
    assert by_service and by_kind


def ranking_query(call) -> tuple[str, list]:
    """The SQL and parameters of the ranking query (the one that orders by distance) that `call()` runs."""
    seen = []

    def record(execute, sql, params, many, context):
        seen.append((sql, params))
        return execute(sql, params, many, context)

    with transaction.atomic(), connection.execute_wrapper(record):
        call()
    return next((sql, params) for sql, params in reversed(seen) if "ORDER BY" in sql)


def plan_of(sql: str, params, *statements: str) -> str:
    """EXPLAIN of `sql` after `statements` (SET LOCAL, DROP INDEX: undone with the transaction)."""
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    return plan


# The test tables are tiny and freshly written (no visibility map yet), so the planner would
# rather read them another way; these take those ways away to see what an index can answer.
NO_SCANS_BUT_INDEXES = ("SET LOCAL enable_seqscan = off", "SET LOCAL enable_bitmapscan = off")


@pytest.mark.parametrize(
    "kinds, services, index",
    [(["runbook"], [], "knowledge_kind_vectors"), ([], ["payments"], "knowledge_service_vectors")],
)
def test_the_indexes_cover_the_filtered_ranking(entries, kinds, services, index):
    """Index-only scans are possible: the index holds every column the query reads (no heap visit per row)."""
    vector = get_provider().embed_one("Redis out of memory")
    sql, params = ranking_query(
        lambda: retrieval._filtered_entry_ranking(get_provider().name, kinds, services, vector, 10)
    )

    plan = plan_of(sql, params, "DROP INDEX knowledge_provider, knowledge_kind", *NO_SCANS_BUT_INDEXES)

    assert f"Index Only Scan using {index}" in plan, plan


@pytest.mark.parametrize("kind", KnowledgeKind.values)
def test_a_search_filtered_to_one_kind_can_walk_that_kinds_own_graph(entries, kind):
    """The HNSW ranking of a one-kind filter, as `_vector_ranking` runs it, is answerable by the kind's partial index."""
    queryset = KnowledgeEntry.objects.filter(embedding_provider=get_provider().name, kind__in=[kind])
    vector = get_provider().embed_one("Redis out of memory")
    sql, params = ranking_query(lambda: retrieval._vector_ranking(queryset, vector, 30))

    plan = plan_of(sql, params, *NO_SCANS_BUT_INDEXES, "SET LOCAL enable_sort = off")

    assert f"Index Scan using kind_hnsw_{kind} " in plan, plan


def test_one_kind_past_the_exact_limit_is_searched_through_its_graph_and_finds_the_nearest(entries, monkeypatch):
    monkeypatch.setattr(retrieval, "ONE_KIND_EXACT_ROWS", 0)  # the test kind is tiny: make it count as large
    exact_calls = []
    monkeypatch.setattr(retrieval, "_filtered_entry_ranking", lambda *args: exact_calls.append(args) or [])

    hits = retrieval.vector_search("Redis out of memory evictions", k=3, kinds=["fix"])

    assert exact_calls == []
    nearest = exact_order("Redis out of memory evictions", kinds=["fix"])[:3]
    assert [hit.id for hit in hits] == [pk for pk, _ in nearest]

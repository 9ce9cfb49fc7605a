#!/usr/bin/env python
"""Retrieval at 100,000 knowledge entries: load, index build, search latency, recall, embedding speed.

    .venv/bin/python bench/retrieval.py [--entries 100000] [--queries 400] [--keep]

1. Recreates its own database (quench_bench_retrieval, or what QUENCH_BENCH_DB_NAME says)
   on the embedded server, or on the server DATABASE_URL names, and migrates it, like
   bench/ingest.py.
2. Generates realistic entries (bench/retrieval_text.py), embeds them with the current
   provider in batches (that time alone gives texts/s) and loads them with psycopg
   binary COPY, the HNSW and GIN indexes dropped first (the generated lexemes and field
   lengths are computed during the COPY, and its statement trigger counts the terms).
3. Rebuilds the indexes as the migrations define them, timing each (the HNSW one is
   the expensive one).
4. Runs the queries through `knowledge.retrieval.search` (the real hybrid service) and
   `knowledge.retrieval.vector_search` (vector side only): p50 / p95 latency after a
   warm-up, plus filtered runs: one service and one kind (5% of the rows each, ranked
   exactly), the fixes (20%, through their kind's own HNSW graph), four services (20%).
5. Recall@10 of the HNSW vector search against an exact scan of the same query
   (`enable_indexscan = off`, so PostgreSQL computes every distance), overall and per
   query shape: half the queries are what the diagnose step sends for a new incident
   (its title and stack trace), half what people type (keywords, a title, an error
   line, a paraphrase); see bench/retrieval_text.py. Then the same for searches filtered
   to one service (an iterative HNSW scan that skips other services' rows) against an
   exact scan of that service's rows, and for searches filtered to the fixes.
6. Recall@10 of the lexical side (BM25F over the pooled candidates: the query's rarer
   terms' postings plus the semantic neighbours) against exact BM25F over every row that
   has any query term.

The database is dropped at the end unless --keep is given (then reruns may --skip-load).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# QUENCH_BENCH_DB_NAME lets two runs share one server without dropping each other's database.
DB_NAME = os.environ.get("QUENCH_BENCH_DB_NAME", "quench_bench_retrieval")
TABLE = "knowledge_knowledgeentry"
KIND_GRAPHS = tuple(f"kind_hnsw_{kind}" for kind in ("runbook", "incident_summary", "postmortem", "fix", "note"))
INDEX_NAMES = (
    "knowledge_embedding_hnsw",
    *KIND_GRAPHS,
    "knowledge_lexemes_gin",
    "knowledge_services_gin",
    "knowledge_kind_vectors",
)
BATCH = 2_000

os.environ.update(
    {
        "QUENCH_EMBEDDED_DB_NAME": DB_NAME,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-" + uuid.uuid4().hex,
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
)
sys.path.insert(0, str(ROOT))
# With DATABASE_URL the benchmark runs on that server instead (its own database there too).
SERVER_URL = os.environ.pop("DATABASE_URL", "")
if SERVER_URL:
    from urllib.parse import urlparse

    os.environ["DATABASE_URL"] = urlparse(SERVER_URL)._replace(path=f"/{DB_NAME}").geturl()


def _admin_connection():
    import psycopg

    if SERVER_URL:
        from urllib.parse import urlparse

        return psycopg.connect(urlparse(SERVER_URL)._replace(path="/postgres").geturl(), autocommit=True)
    from config.database import embedded_server

    info = embedded_server(ROOT).get_postmaster_info()
    return psycopg.connect(host=str(info.socket_dir), user="postgres", dbname="postgres", autocommit=True)


def prepare_database() -> None:
    """Recreate the benchmark database and migrate it (in a child process, as bench/ingest.py does)."""
    import subprocess

    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input"], cwd=ROOT, env=env, check=True, capture_output=True
    )


def drop_database() -> None:
    from django.db import connections

    connections.close_all()
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def _index_definitions(cursor) -> dict[str, str]:
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname = ANY(%s)",
        [TABLE, list(INDEX_NAMES)],
    )
    return dict(cursor.fetchall())


def load(entries, provider) -> dict:
    """Embed in batches and COPY the rows in; returns timings. Indexes are dropped first."""
    from django.db import connection
    from pgvector import HalfVector
    from pgvector.psycopg import register_vector

    from knowledge.services import entry_embedding_text

    connection.ensure_connection()
    conn = connection.connection
    register_vector(conn)
    with conn.cursor() as cursor:
        definitions = _index_definitions(cursor)
        for name in definitions:
            cursor.execute(f'DROP INDEX "{name}"')
    conn.commit()

    now = datetime.now(UTC)
    columns = (
        "title, body, kind, path_type, source_path, services, tags, embedding, "
        "embedding_provider, embedding_dimension, created_at, updated_at"
    )
    types = ["text", "text", "text", "text", "text", "varchar[]", "varchar[]", "halfvec", "text", "int4"]
    types += ["timestamptz", "timestamptz"]
    embed_seconds = 0.0
    started = time.perf_counter()
    with conn.cursor() as cursor, cursor.copy(f"COPY {TABLE} ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(types)
        for offset in range(0, len(entries), BATCH):
            batch = entries[offset : offset + BATCH]
            embed_started = time.perf_counter()
            vectors = provider.embed(
                [
                    entry_embedding_text(title=entry.title, body=entry.body, tags=entry.tags, services=entry.services)
                    for entry in batch
                ]
            )
            embed_seconds += time.perf_counter() - embed_started
            for entry, vector in zip(batch, vectors, strict=True):
                copy.write_row(
                    [
                        entry.title[:300],
                        entry.body,
                        entry.kind,
                        "manual",
                        "",
                        entry.services,
                        entry.tags,
                        HalfVector(vector),
                        provider.name,
                        provider.dimension,
                        now,
                        now,
                    ]
                )
    conn.commit()
    load_seconds = time.perf_counter() - started
    return {"load_s": load_seconds, "embed_s": embed_seconds, "definitions": definitions}


def build_indexes(definitions: dict[str, str], hnsw_with: str = "") -> dict[str, float]:
    """Recreate the dropped indexes as the migration defined them (or with other HNSW parameters); time each."""
    from django.db import connection

    timings = {}
    with connection.cursor() as cursor:
        # Room for the whole HNSW graph in memory: building it on disk is several times slower.
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute("SET max_parallel_maintenance_workers = 1")
        for name in INDEX_NAMES:
            definition = definitions[name]
            if hnsw_with and (name == "knowledge_embedding_hnsw" or name in KIND_GRAPHS):
                where = definition[definition.index(" WHERE ") :] if " WHERE " in definition else ""
                definition = definition[: definition.rindex("WITH")] + f"WITH ({hnsw_with})" + where
            print(f"building:       {definition}", flush=True)
            started = time.perf_counter()
            cursor.execute(definition)
            timings[name] = time.perf_counter() - started
        # What autovacuum does soon after a bulk load: statistics, and the visibility map that
        # lets the filtered exact rankings read their covering indexes alone.
        cursor.execute(f"VACUUM ANALYZE {TABLE}")
        cursor.execute("VACUUM ANALYZE knowledge_servicevector")
    return timings


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def time_queries(function, queries, **filters) -> dict:
    for query in queries[:20]:  # warm-up: caches, plans, connection
        function(query.text, 10, **filters)
    latencies, empty = [], 0
    for query in queries:
        started = time.perf_counter()
        hits = function(query.text, 10, **filters)
        latencies.append((time.perf_counter() - started) * 1000)
        empty += not hits
    return {
        "p50": statistics.median(latencies),
        "p95": _percentile(latencies, 0.95),
        "max": max(latencies),
        "empty": empty,
    }


# ann-benchmarks' definition of recall: a returned neighbour counts when its distance is
# within EPSILON of the exact 10th-nearest distance, so that a tie at the boundary (common
# with short queries, whose distances to many documents are nearly equal) is not a miss.
EPSILON = 1e-3


def recall_at_10(
    queries, provider, services: list[str] | None = None, kinds: list[str] | None = None
) -> dict[str, dict[str, float]]:
    """HNSW search against an exact scan, per query shape and overall (of `services`' or `kinds`' rows only, if given).

    Two figures: `ann` (ann-benchmarks' distance-threshold recall, the standard one) and
    `strict` (share of the exact top-10 ids returned, which counts equidistant swaps as misses).
    """
    from django.db import connection, transaction

    from knowledge import retrieval

    counts: dict[str, list[int]] = {}
    for query in queries:
        vector = str(provider.embed_one(query.text))
        approximate = {hit.id for hit in retrieval.vector_search(query.text, 10, services=services, kinds=kinds)}
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_indexscan = off")
            service_filter = "AND services && %s::varchar[] " if services else ""
            kind_filter = "AND kind = ANY(%s) " if kinds else ""
            cursor.execute(
                f"SELECT id, embedding <=> %s::halfvec AS distance FROM {TABLE} WHERE embedding_provider = %s "  # noqa: S608
                f"{service_filter}{kind_filter}ORDER BY distance LIMIT 10",
                [vector, provider.name, *([services] if services else []), *([kinds] if kinds else [])],
            )
            exact = cursor.fetchall()
            cursor.execute(
                f"SELECT embedding <=> %s::halfvec FROM {TABLE} WHERE id = ANY(%s)",  # noqa: S608
                [vector, list(approximate)],
            )
            approximate_distances = [row[0] for row in cursor.fetchall()]
        threshold = exact[-1][1] + EPSILON if exact else 0.0
        within = sum(distance <= threshold for distance in approximate_distances)
        strict = len(approximate & {row[0] for row in exact})
        for shape in (query.shape, "all"):
            found = counts.setdefault(shape, [0, 0, 0])
            found[0] += min(within, len(exact))
            found[1] += strict
            found[2] += len(exact)
    return {
        shape: {"ann": within / total, "strict": strict / total}
        for shape, (within, strict, total) in counts.items()
        if total
    }


def lexical_recall_at_10(queries, provider) -> dict[str, float]:
    """Share of the exact BM25F top 10 (every row with any query term scored) that `text_search` returns."""
    from django.contrib.postgres.search import SearchQuery
    from django.db import transaction

    from knowledge import retrieval
    from knowledge.models import KnowledgeEntry

    found = total = 0
    by_shape: dict[str, list[int]] = {}
    for query in queries:
        with transaction.atomic():
            terms, stats = retrieval._query_terms(retrieval.KNOWLEDGE, query.text)
            if not terms:
                continue
            matching = SearchQuery(" | ".join(f"'{term}'" for term, _ in terms), search_type="raw", config="simple")
            pool = set(KnowledgeEntry.objects.filter(lexemes=matching).order_by().values_list("pk", flat=True))
            vector = provider.embed_one(query.text)
            scores = {
                pk: bm25
                for pk, (bm25, _) in retrieval._measure(retrieval.KNOWLEDGE, pool, terms, stats, vector).items()
            }
        exact = sorted(scores, key=lambda pk: (-scores[pk], pk))[:10]
        threshold = scores[exact[-1]] - 1e-9
        pooled = retrieval.text_search(query.text, 10)
        within = sum((hit.bm25 or 0.0) >= threshold for hit in pooled)
        found += min(within, len(exact))
        total += len(exact)
        shape = by_shape.setdefault(query.shape, [0, 0])
        shape[0] += min(within, len(exact))
        shape[1] += len(exact)
    return {"all": found / total if total else 0.0, **{s: f / t for s, (f, t) in by_shape.items() if t}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--recall-queries", type=int, default=400)
    parser.add_argument("--lexical-recall-queries", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--skip-load", action="store_true", help="reuse a database kept with --keep")
    parser.add_argument(
        "--hnsw-with",
        default="",
        help='other HNSW parameters than the migration\'s, e.g. "m = 32, ef_construction = 128"',
    )
    args = parser.parse_args()

    if not args.skip_load:
        prepare_database()
    import django

    django.setup()
    from django.db import connection

    from bench.retrieval_text import SERVICES, generate_entries, generate_queries
    from knowledge import retrieval
    from knowledge.embeddings import get_provider

    provider = get_provider()
    if not args.skip_load:
        started = time.perf_counter()
        entries = generate_entries(args.entries)
        generate_seconds = time.perf_counter() - started
        loaded = load(entries, provider)
        index_timings = build_indexes(loaded["definitions"], args.hnsw_with)
        del entries
    queries = generate_queries(args.queries)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), pg_size_pretty(pg_total_relation_size('{TABLE}')) FROM {TABLE}")
        rows, size = cursor.fetchone()
        cursor.execute(
            "SELECT current_setting('shared_buffers'), pg_size_pretty(pg_relation_size('knowledge_embedding_hnsw')),"
            " pg_size_pretty(pg_relation_size('knowledge_kind_vectors')),"
            " pg_size_pretty(pg_total_relation_size('knowledge_servicevector'))"
        )
        shared_buffers, hnsw_size, kind_vectors_size, service_vectors_size = cursor.fetchone()

    hybrid = time_queries(retrieval.search, queries)
    vector = time_queries(retrieval.vector_search, queries)
    text = time_queries(retrieval.text_search, queries)
    filtered = time_queries(retrieval.search, queries, services=["payments"])
    by_kind = time_queries(retrieval.search, queries, kinds=["runbook"])
    # Wider filters: a kind of 20% of the entries (its own HNSW graph), and four services
    # together (20%, ranked exactly from the service vectors).
    by_wide_kind = time_queries(retrieval.search, queries, kinds=["fix"])
    by_services = time_queries(retrieval.search, queries, services=SERVICES[:4])
    recall = recall_at_10(queries[: args.recall_queries], provider)
    filtered_recall = recall_at_10(queries[: args.recall_queries], provider, services=["payments"])
    kind_recall = recall_at_10(queries[: args.recall_queries], provider, kinds=["fix"])
    lexical_recall = lexical_recall_at_10(queries[: args.lexical_recall_queries], provider)

    print(f"machine: {os.cpu_count()} cores; provider {provider.name}; {rows:,} entries ({size} with indexes)")
    print(
        f"server:         shared_buffers {shared_buffers}; HNSW index {hnsw_size}; kind vectors index "
        f"{kind_vectors_size}; service vectors {service_vectors_size} (table and indexes)"
    )
    if not args.skip_load:
        print(f"generate text:  {generate_seconds:.1f} s")
        print(
            f"load:           {loaded['load_s']:.1f} s  ({rows / loaded['load_s']:,.0f} rows/s, binary COPY, "
            f"embedding included)"
        )
        print(
            f"embedding:      {args.entries / loaded['embed_s']:,.0f} texts/s  "
            f"({loaded['embed_s']:.1f} s, batches of {BATCH})"
        )
        for name, seconds in index_timings.items():
            print(f"index build:    {name} {seconds:.1f} s")
    print(
        f"settings:       hnsw.ef_search={retrieval.EF_SEARCH} for documents, {retrieval.EF_SEARCH_PHRASE} for "
        f"phrases (≤ {retrieval.MAX_PHRASE_WORDS} words); semantic candidates ≥ {retrieval.MIN_CANDIDATES}, "
        f"lexical postings ≤ {retrieval.LEXICAL_CANDIDATES}"
    )
    for label, result in (
        ("hybrid search", hybrid),
        ("vector only", vector),
        ("BM25F only", text),
        ("hybrid, service", filtered),
        ("hybrid, runbooks", by_kind),
        ("hybrid, fixes", by_wide_kind),
        ("hybrid, 4 services", by_services),
    ):
        print(
            f"{label + ':':16}{result['p50']:6.1f} ms p50  {result['p95']:6.1f} ms p95  {result['max']:6.1f} ms max"
            f"  ({len(queries)} queries, top 10, {result['empty']} empty)"
        )
    shapes = ", ".join(
        f"{shape} {value['ann']:.3f}/{value['strict']:.3f}" for shape, value in recall.items() if shape != "all"
    )
    print(
        f"recall@10:      {recall['all']['ann']:.3f}  (HNSW vs exact scan, ann-benchmarks definition, "
        f"epsilon {EPSILON}; strict id overlap {recall['all']['strict']:.3f}; "
        f"{min(len(queries), args.recall_queries)} queries)"
    )
    print(f"recall by shape (ann/strict): {shapes}")
    print(
        f"recall@10, service: {filtered_recall['all']['ann']:.3f}  (searches filtered to one service vs an exact "
        f"scan of its rows; strict {filtered_recall['all']['strict']:.3f}; filters of ≤ "
        f"{retrieval.EXACT_SCAN_ROWS:,} rows are ranked exactly)"
    )

    print(
        f"recall@10, kind: {kind_recall['all']['ann']:.3f}  (searches filtered to the fixes, 20% of the rows, "
        f"through their own HNSW graph, vs an exact scan of them; strict {kind_recall['all']['strict']:.3f})"
    )

    lexical_shapes = ", ".join(f"{shape} {value:.3f}" for shape, value in lexical_recall.items() if shape != "all")
    print(
        f"BM25F recall@10: {lexical_recall['all']:.3f}  (pooled candidates vs exact BM25F over every row with a "
        f"query term; {min(len(queries), args.lexical_recall_queries)} queries; {lexical_shapes})"
    )

    if not args.keep:
        drop_database()


if __name__ == "__main__":
    main()

"""Retrieval: hybrid search over knowledge entries and over the signatures of past incidents.

Two rankings are made for a query and fused:

- **vector**: cosine distance (`<=>`) between the query's embedding and the stored ones,
  served by the HNSW indexes. `hnsw.ef_search` is set per query (`set_config(..., true)`
  is `SET LOCAL`, so it lasts for this transaction only); iterative index scans
  (pgvector ≥ 0.8) keep a filtered search (kind, service) from coming back short.
- **full-text**: `websearch_to_tsquery('english', ...)` on the generated `search_vector`
  column (GIN), ranked by `ts_rank_cd`. It finds what embeddings blur: an exact error
  code, an identifier, a ticket number. A long text (a traceback, an incident
  signature) is not a search phrase; it reorders the vector side's candidates by any
  of its words instead (see `_text_ranking`).

Reciprocal rank fusion (`1 / (60 + rank)` summed over the rankings a row appears in)
merges them without having to calibrate a cosine similarity against a text rank.
Every query is restricted to vectors of the current provider: vectors of two providers
live in one column but are not comparable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVectorExact
from django.db import connection, transaction
from django.db.models import F, QuerySet
from pgvector.django import CosineDistance

from knowledge.embeddings import get_provider
from knowledge.models import IncidentSignature, KnowledgeEntry
from knowledge.services import signature_text

# The constant of reciprocal rank fusion (Cormack et al. 2009): large enough that the
# first few places of one ranking do not outweigh agreement between the two.
RRF_K = 60
# HNSW candidate list sizes (`hnsw.ef_search`), by the shape of the query. A document (a
# title and a traceback, an incident signature: what diagnosis and similar-incident search
# send) lands among its neighbours: on the 100,000-entry benchmark (bench/retrieval.py)
# 100 gives recall@10 of 0.999 against an exact scan, 40 gives 0.99. A phrase of a few
# typed words sits far from every stored vector, and its nearest entries are often a
# small island (the notes that use its words), which a short candidate list misses:
# 0.92 at 100, 0.96 at 200, 0.98 at 400 (with the index's ef_construction of 400; with
# pgvector's default of 64, 0.58-0.86 at 100). Each doubling costs about 1.5 ms.
EF_SEARCH = 100
EF_SEARCH_PHRASE = 200
# Each side contributes this many candidates at least (more when k is larger), so that a
# row ranked modestly by both sides can still win the fusion.
MIN_CANDIDATES = 30
CANDIDATES_PER_RESULT = 3
TEXT_SEARCH_CONFIG = "english"  # the generated search_vector columns are built with it
# Longer texts are documents (a traceback, a signature), not search phrases; see _text_ranking.
MAX_PHRASE_WORDS = 16
# Full-text ranks every match when a query matches at most this many rows (see _text_ranking).
TEXT_RANK_BUDGET = 200
# Iterative scans may visit this many index tuples to fill a filtered result before giving up.
# On the benchmark, searches filtered to one service of twenty (5% of the rows): 20,000 gives
# recall@10 of 0.994 against an exact scan of that service's rows at p95 55 ms, 10,000 gives
# 0.983 at 38 ms, 5,000 0.977 at 31 ms. A rarer service does not get here: the planner reads
# its rows through the GIN index on `services` and ranks them exactly.
MAX_SCAN_TUPLES = 10_000

DEFERRED_FIELDS = ("embedding", "search_vector")

MATCHED_VECTOR = "vector"
MATCHED_TEXT = "text"
MATCHED_BOTH = "both"
INCIDENT_KIND = "incident"


@dataclass(frozen=True)
class Hit:
    """One retrieved row with how each side ranked it.

    `score` is the fused RRF score (higher is better); `vector_score` the cosine
    similarity (1 − distance) when the vector side found it; `text_rank` the
    `ts_rank_cd` when full-text did; `matched` says which of them did.
    """

    id: int
    title: str
    kind: str
    score: float
    vector_score: float | None
    text_rank: float | None
    matched: str
    object: Any = field(repr=False, compare=False)


def search(
    text: str, k: int = 10, *, kinds: Iterable[str] | None = None, services: Iterable[str] | None = None
) -> list[Hit]:
    """The `k` knowledge entries most relevant to `text`, vector and full-text rankings fused."""
    return _search_entries(text, k, kinds, services, vector=True, full_text=True)


def vector_search(
    text: str, k: int = 10, *, kinds: Iterable[str] | None = None, services: Iterable[str] | None = None
) -> list[Hit]:
    """Like `search`, by embedding similarity alone (what the benchmark measures recall on)."""
    return _search_entries(text, k, kinds, services, vector=True, full_text=False)


def text_search(
    text: str, k: int = 10, *, kinds: Iterable[str] | None = None, services: Iterable[str] | None = None
) -> list[Hit]:
    """Like `search`, by full-text rank alone."""
    return _search_entries(text, k, kinds, services, vector=False, full_text=True)


def similar_incidents(incident, k: int = 5, *, services: Iterable[str] | None = None) -> list[Hit]:
    """The `k` past incidents whose signatures are most like `incident`'s (never itself).

    The query vector is the incident's stored signature embedding when it has one of
    the current provider; otherwise its signature text is built and embedded now.
    """
    provider = get_provider()
    signature = IncidentSignature.objects.filter(incident=incident).defer("search_vector").first()
    if signature is not None:
        text = signature.text
        vector = signature.embedding if signature.embedding_provider == provider.name else None
    else:
        text = _signature_text(incident)
        vector = None
    if vector is None:
        vector = provider.embed_one(text)
    queryset = (
        IncidentSignature.objects.filter(embedding_provider=provider.name)
        .exclude(incident_id=incident.pk)
        .select_related("incident")
    )
    if services := _clean(services):
        queryset = queryset.filter(incident__service__in=services)
    # A signature is a document (exception, message, frames, service), never a search phrase.
    return _hybrid(queryset, text, _as_list(vector), k, to_hit=_signature_hit, document=True)


def _signature_text(incident) -> str:
    """The incident's signature text built now, from its latest event, as `embed_incident` builds it."""
    return signature_text(incident, incident.events.order_by("-received_at").first())


# --- the two rankings and their fusion ----------------------------------------------------


def _search_entries(text, k, kinds, services, *, vector: bool, full_text: bool) -> list[Hit]:
    provider = get_provider()
    queryset = KnowledgeEntry.objects.filter(embedding_provider=provider.name)
    if kinds := _clean(kinds):
        queryset = queryset.filter(kind__in=kinds)
    if services := _clean(services):
        queryset = queryset.filter(services__overlap=services)
    query_vector = provider.embed_one(text) if vector else None
    document = len(text.split()) > MAX_PHRASE_WORDS
    return _hybrid(queryset, text if full_text else "", query_vector, k, to_hit=_entry_hit, document=document)


def _hybrid(
    queryset: QuerySet, text: str, vector: Sequence[float] | None, k: int, *, to_hit, document: bool = False
) -> list[Hit]:
    limit = max(MIN_CANDIDATES, k * CANDIDATES_PER_RESULT)
    ef_search = EF_SEARCH if document else EF_SEARCH_PHRASE
    with transaction.atomic():
        vector_ranking = _vector_ranking(queryset, vector, limit, ef_search) if vector is not None else []
        vector_ids = [row_id for row_id, _ in vector_ranking]
        text_ranking = _text_ranking(queryset, text, limit, vector_ids, document=document) if text.strip() else []
        fused = _fuse(vector_ranking, text_ranking)[:k]
        # The vectors and tsvectors are large and not needed to show a hit.
        objects = queryset.defer(*DEFERRED_FIELDS).in_bulk([row_id for row_id, *_ in fused])
    return [
        to_hit(objects[row_id], score, similarity, rank)
        for row_id, score, similarity, rank in fused
        if row_id in objects
    ]


def _vector_ranking(
    queryset: QuerySet, vector: Sequence[float], limit: int, ef_search: int = EF_SEARCH
) -> list[tuple[int, float]]:
    """(id, cosine similarity), nearest first, through the HNSW index with a candidate list of `ef_search`."""
    with connection.cursor() as cursor:
        # set_config(..., true) is SET LOCAL with parameters: the enclosing transaction only.
        cursor.execute(
            "SELECT set_config('hnsw.ef_search', %s, true), set_config('hnsw.iterative_scan', 'relaxed_order', true),"
            " set_config('hnsw.max_scan_tuples', %s, true)",
            [str(max(ef_search, limit)), str(MAX_SCAN_TUPLES)],
        )
    rows = (
        queryset.filter(embedding__isnull=False)
        .annotate(distance=CosineDistance("embedding", vector))
        .order_by("distance")
        .values_list("pk", "distance")[:limit]
    )
    # relaxed_order may return a row slightly out of place; the exact distance puts it back.
    return sorted(((pk, 1.0 - distance) for pk, distance in rows), key=lambda row: -row[1])


class AnyWordsQuery(SearchQuery):
    """`plainto_tsquery` with its ANDs turned into ORs: entries with any of the text's words.

    Plain, not web-search, syntax: in an error message `[Errno -3]` is not an exclusion.
    """

    template = "replace(%(function)s(%(expressions)s)::text, ' & ', ' | ')::tsquery"

    def __init__(self, value: str):
        super().__init__(value, search_type="plain", config=TEXT_SEARCH_CONFIG)


def _text_ranking(
    queryset: QuerySet, text: str, limit: int, vector_ids: Sequence[int] = (), *, document: bool = False
) -> list[tuple[int, float]]:
    """(id, ts_rank_cd), best first, through the GIN index.

    A search phrase (up to `MAX_PHRASE_WORDS` words) must match with all its words
    (web-search syntax: "quoted phrases", `or`, `-word`). Ranking reads every matching
    row's tsvector (out of line, compressed), so it is only affordable for a selective
    phrase: when it matches more than `TEXT_RANK_BUDGET` rows (say "connection timeout"
    in a large knowledge base) its words cannot tell entries apart anyway, and only the
    vector side's candidates are ranked: full-text then confirms and reorders those.

    A longer text, or one the caller calls a `document` (an error message with its
    traceback, an incident's signature), is not a phrase: all its words together match
    nothing but a copy, which the vector side finds anyway, and any of them match most
    of the table. So the vector side's candidates are ranked by any of its words,
    `ts_rank_cd` preferring entries with more of them, closer together.
    """
    pool = set(vector_ids)
    if not document and len(text.split()) <= MAX_PHRASE_WORDS:
        query = SearchQuery(text, search_type="websearch", config=TEXT_SEARCH_CONFIG)
        matched_ids = _some_matches(queryset, query)
        if len(matched_ids) <= TEXT_RANK_BUDGET:
            pool.update(matched_ids)
    else:
        query = AnyWordsQuery(text)
    if not pool:
        return []
    # Select the pool by primary key and test the match per row: given `@@` in WHERE the
    # planner, which underestimates how often an error's words occur together, would
    # recheck every match of the GIN index instead.
    rows = (
        queryset.filter(pk__in=pool)
        .order_by()
        .annotate(
            rank=SearchRank(F("search_vector"), query, cover_density=True),
            matches=SearchVectorExact(F("search_vector"), query),
        )
        .values_list("pk", "rank", "matches")
    )
    ranked = sorted(((pk, rank) for pk, rank, matches in rows if matches), key=lambda row: (-row[1], row[0]))
    return ranked[:limit]


def _some_matches(queryset: QuerySet, query: SearchQuery) -> list[int]:
    """Up to TEXT_RANK_BUDGET + 1 matching ids: enough to tell whether the query is selective.

    No ORDER BY: the model's default ordering would make PostgreSQL fetch and sort every match.
    """
    return list(queryset.filter(search_vector=query).order_by().values_list("pk", flat=True)[: TEXT_RANK_BUDGET + 1])


def _fuse(
    vector_ranking: list[tuple[int, float]], text_ranking: list[tuple[int, float]]
) -> list[tuple[int, float, float | None, float | None]]:
    """Reciprocal rank fusion: (id, score, similarity, text rank), best first; ties by id."""
    scores: dict[int, float] = {}
    similarities: dict[int, float] = {}
    ranks: dict[int, float] = {}
    for position, (row_id, similarity) in enumerate(vector_ranking, 1):
        scores[row_id] = scores.get(row_id, 0.0) + 1.0 / (RRF_K + position)
        similarities[row_id] = similarity
    for position, (row_id, rank) in enumerate(text_ranking, 1):
        scores[row_id] = scores.get(row_id, 0.0) + 1.0 / (RRF_K + position)
        ranks[row_id] = rank
    ordered = sorted(scores, key=lambda row_id: (-scores[row_id], row_id))
    return [(row_id, scores[row_id], similarities.get(row_id), ranks.get(row_id)) for row_id in ordered]


def _matched(similarity: float | None, rank: float | None) -> str:
    if similarity is not None and rank is not None:
        return MATCHED_BOTH
    return MATCHED_VECTOR if similarity is not None else MATCHED_TEXT


def _entry_hit(entry: KnowledgeEntry, score, similarity, rank) -> Hit:
    return Hit(entry.pk, entry.title, entry.kind, score, similarity, rank, _matched(similarity, rank), entry)


def _signature_hit(signature: IncidentSignature, score, similarity, rank) -> Hit:
    incident = signature.incident
    return Hit(
        incident.pk, incident.title, INCIDENT_KIND, score, similarity, rank, _matched(similarity, rank), incident
    )


def _clean(values: Iterable[str] | None) -> list[str]:
    return [value for value in (values or []) if value]


def _as_list(vector) -> list[float]:
    return vector.tolist() if hasattr(vector, "tolist") else list(vector)

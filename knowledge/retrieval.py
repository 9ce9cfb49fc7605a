"""Retrieval: hybrid search over knowledge entries and over the signatures of past incidents.

Each search makes a pool of candidates from two sides and scores every candidate on both:

- **lexical (BM25F)**: the query is cut into lexemes exactly as documents are (the SQL
  function `knowledge_query_lexemes`: camelCase and snake_case split, punctuation and bare
  numbers out, 'english' stop words and stemming). Candidates are the entries that contain
  any of the query's rarer terms (OR-matching through the GIN index on `lexemes`), as many
  terms, rarest first, as fit in `LEXICAL_CANDIDATES` postings; the document frequencies
  come from `LexicalTerm`, kept current by triggers. Every candidate is then scored with
  BM25F over all query terms: term frequencies per field (title, tags, body: the weight
  labels of the stored tsvector), each field length-normalized against the corpus average
  (`LexicalCorpus`), weighted, summed and saturated once (Robertson & Zaragoza 2009).
- **semantic**: cosine similarity between the query's embedding and the stored ones,
  nearest first through the HNSW index (`hnsw.ef_search` per query by its shape; iterative
  scans keep a filtered search from coming back short), and computed exactly for the
  lexical side's candidates too. Each kind has an HNSW graph of its own for searches
  filtered to it. A search filtered to kinds or services whose rows are few enough ranks
  all of them exactly instead, reading the vectors from covering indexes
  (`knowledge_kind_vectors`, and `ServiceVector` for services).

The two are fused into one **calibrated score** in 0..1: a logistic function of the
normalized BM25 (`bm25 / Σ idf` of the query's known terms: the share of the query's
information an entry matches, comparable across queries) and of the cosine. Its weights
were fitted by logistic regression on the runbook benchmark (bench/runbooks.py --fit:
relevant against irrelevant candidates) and checked on the other half of its queries, so
the score reads as "how likely is this the right document". Ranking is by that score.
A row that matches no query term and is no near neighbour (score below `MIN_SCORE`) is
not returned: a search for "currency" does not list everything.

Every query is restricted to vectors of the current provider: vectors of two providers
live in one column but are not comparable.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.postgres.search import SearchQuery
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from pgvector.django import CosineDistance

from incidents.fingerprinting import normalize_message
from incidents.models import Incident
from knowledge.embeddings import get_provider
from knowledge.models import IncidentSignature, KnowledgeEntry
from knowledge.services import signature_text

# --- BM25F --------------------------------------------------------------------------------
# Standard parameters (Robertson & Zaragoza 2009; Lucene's defaults are k1 1.2, b 0.75). The
# field weights put a term in the title at three body occurrences and one in the tags at two.
# bench/runbooks.py --grid runs a grid over standard ranges (k1 0.9-2.0, b 0.5-0.9, title
# weight 1-5) with a split-half check; these values sit on its plateau rather than its peak.
K1 = 1.2
FIELD_WEIGHTS = {"A": 3.0, "B": 2.0, "D": 1.0}  # tsvector weight label: title, tags, body
TITLE_B = 0.5  # titles vary little in length; tags are not length-normalized at all
BODY_B = 0.75
# Lexical candidates: the query's terms, rarest first, whose postings add up to at most this
# many rows are OR-matched through the GIN index (all of them when the corpus is this small).
# A term found in more rows than that has too low an idf to find an entry on its own; it
# still counts in the score of every candidate that has it.
LEXICAL_CANDIDATES = 100
# A long query (a traceback, an incident signature) keeps its this many rarest terms: the
# commonest add little to any score (idf near 0) and each costs a pass over every candidate.
MAX_QUERY_TERMS = 32

# --- semantic side ------------------------------------------------------------------------
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
# The semantic side contributes this many candidates at least (more when k is larger).
MIN_CANDIDATES = 30
CANDIDATES_PER_RESULT = 3
# Longer texts are documents (a traceback, a signature), not search phrases.
MAX_PHRASE_WORDS = 16
# Iterative scans may visit this many index tuples to fill a filtered result before giving up.
# On the benchmark, searches filtered to one service of twenty (5% of the rows): 20,000 gives
# recall@10 of 0.994 against an exact scan of that service's rows at p95 55 ms, 10,000 gives
# 0.983 at 38 ms, 5,000 0.977 at 31 ms. A rarer service does not get here: its rows are ranked
# exactly (EXACT_SCAN_ROWS).
MAX_SCAN_TUPLES = 10_000
# A search filtered (kind, service) to at most this many rows ranks them by exact distance
# instead, through an index-only scan of the covering index for that filter (migration 0006):
# on the benchmark one service's or one kind's ~5,000 of 100,000 rows take ~2.5 ms, against
# ~12 ms read from the heap (one page visit per row) and p95 45 ms for an iterative HNSW
# scan of 10,000 tuples, which also misses 1% of the true neighbours. 20,000 rows cost ~10
# ms; a filter that keeps more than a fifth of the rows suits the HNSW scan well.
# Whether a filter is that selective is the planner's estimate (EXPLAIN, no rows read).
EXACT_SCAN_ROWS = 20_000
# A search filtered to one kind only has that kind's own HNSW graph (a partial index): past
# this many rows it is faster through it (the whole search p95 12 ms for the 20,000 fixes of
# the benchmark, where their exact ranking alone takes ~13 ms) and about as complete (recall@10
# 0.999 against an exact scan of them).
ONE_KIND_EXACT_ROWS = 8_000


# --- fusion and calibration -----------------------------------------------------------------
@dataclass(frozen=True)
class Calibration:
    """score = 1 / (1 + exp(-(bias + lexical·normalized BM25F + semantic·cosine))): one provider's fitted weights."""

    bias: float
    lexical: float
    semantic: float


# Fitted by bench/runbooks.py --fit: logistic regression, unweighted, of "is the runbook the
# alert links to" over every dev query's whole candidate pool (55 queries, ~3,200 rows). The
# weights belong to an embedding provider: its cosines have their own scale (the hashed
# embedding gives the right runbook 0.45 on average and the others 0.07; MiniLM 0.66 and
# 0.31), so the same weights would misread them.
# - local-v2: fits on either half of the queries give (-9.5, 9.0, 13.7) and (-9.4, 10.0, 11.7)
#   and rank the other half about as well as the full fit (recall@1 0.963 and 0.929). Of the
#   rows it scores 0.8 or more, 20 of 21 were the expected runbook. The hashed embedding
#   earns its weight: by BM25F alone the same pools rank at recall@1 0.836, fused at 0.945.
# - minilm: halves give (-9.7, 12.6, 6.1) and (-10.7, 12.7, 7.1). It ranks worse than the
#   hashed embedding here (fused recall@1 0.891 against 0.945) and, fitted beside it, gets a
#   negative weight: it adds nothing the hashed one lacks. With these weights a row sharing
#   no word with the query never reaches MIN_SCORE: MiniLM's cosine alone is no evidence.
CALIBRATIONS = {
    "local-v2": Calibration(-9.7, 9.6, 13.3),
    "minilm": Calibration(-10.3, 12.8, 6.7),
}
# A provider without a fit of its own (a new one, before bench/runbooks.py --fit has been run
# with it) is scored with the default provider's weights.
DEFAULT_CALIBRATION = CALIBRATIONS["local-v2"]
# A hit that shares no term with the query is returned only from this score on (a cosine of
# about 0.63 with the hashed embedding's weights: a near-copy, not a vague resemblance).
MIN_SCORE = 0.2
# Identical past incidents (same fingerprint, or same exception type and culprit) are not
# "likely" the same problem, they are it.
IDENTICAL_SCORE = 1.0
# The same error (exception type and normalized title) raised elsewhere, or in another
# service: the closest thing to it short of identical, whatever else their texts share.
SAME_ERROR_SCORE = 0.9
# How many past incidents of one exception type are compared by message (latest first).
SAME_ERROR_CANDIDATES = 200

DEFERRED_FIELDS = ("embedding", "lexemes")

MATCHED_LEXICAL = "lexical"
MATCHED_SEMANTIC = "semantic"
MATCHED_BOTH = "both"
MATCHED_IDENTICAL = "identical"
MATCHED_SAME_ERROR = "same_error"
MATCHED_CHOICES = (MATCHED_LEXICAL, MATCHED_SEMANTIC, MATCHED_BOTH, MATCHED_SAME_ERROR, MATCHED_IDENTICAL)
INCIDENT_KIND = "incident"


@dataclass(frozen=True)
class Hit:
    """One retrieved row: its calibrated `score` (0..1, higher is more likely relevant) and how it was found.

    `matched` says which side found it: "lexical" (it has query terms), "semantic" (a near
    neighbour of the query's embedding without any of its terms), "both", "same_error" (a past
    incident with the same exception type and message, raised elsewhere), or "identical" (a
    past incident with the same fingerprint, or the same exception and culprit).
    `bm25` is the raw BM25F score (None without a term in common), `similarity` the cosine
    similarity of the embeddings.
    """

    id: int
    title: str
    kind: str
    score: float
    matched: str
    bm25: float | None
    similarity: float | None
    object: Any = field(repr=False, compare=False)


@dataclass(frozen=True)
class Candidate:
    """A pooled row with both sides' measures, before it becomes a `Hit` (the benchmark fits on these)."""

    id: int
    bm25: float
    lexical: float  # bm25 / Σ idf of the query's known terms, in 0..1
    similarity: float
    neighbour: bool  # among the semantic side's nearest candidates
    score: float


@dataclass(frozen=True)
class _Corpus:
    """What differs between the two searchable tables."""

    name: str  # LexicalCorpus.name
    table: str
    title_length: str  # SQL for a row's title length (signatures have no title)


KNOWLEDGE = _Corpus("knowledge", KnowledgeEntry._meta.db_table, "e.title_length")
SIGNATURES = _Corpus("signatures", IncidentSignature._meta.db_table, "0")


def calibration_for(provider: str) -> Calibration:
    """The fitted weights of the embedding provider whose vectors are compared (by its stored name)."""
    return CALIBRATIONS.get(provider, DEFAULT_CALIBRATION)


def calibrated_score(lexical: float, similarity: float, calibration: Calibration = DEFAULT_CALIBRATION) -> float:
    """The fused, calibrated relevance in 0..1 of a row with these normalized BM25 and cosine values."""
    z = calibration.bias + calibration.lexical * lexical + calibration.semantic * similarity
    return 1.0 / (1.0 + math.exp(-z))


def search(
    text: str, k: int = 10, *, kinds: Iterable[str] | None = None, services: Iterable[str] | None = None
) -> list[Hit]:
    """The `k` knowledge entries most relevant to `text`, both sides fused; irrelevant rows left out."""
    return _search_entries(text, k, kinds, services, semantic=True, lexical=True)


def vector_search(
    text: str, k: int = 10, *, kinds: Iterable[str] | None = None, services: Iterable[str] | None = None
) -> list[Hit]:
    """The `k` nearest entries by embedding alone, unfiltered (what the benchmark measures HNSW recall on)."""
    return _search_entries(text, k, kinds, services, semantic=True, lexical=False)


def text_search(
    text: str, k: int = 10, *, kinds: Iterable[str] | None = None, services: Iterable[str] | None = None
) -> list[Hit]:
    """The `k` entries with the highest BM25F score (entries with none of the query's terms left out)."""
    return _search_entries(text, k, kinds, services, semantic=False, lexical=True)


def similar_incidents(incident, k: int = 5, *, services: Iterable[str] | None = None) -> list[Hit]:
    """The `k` past incidents most like `incident` (never itself), identical ones first.

    Identical means the same fingerprint, or the same exception type and culprit: those
    come first with a score of 1 whatever their texts. Then the same error (exception type and
    normalized title) raised elsewhere scores at least SAME_ERROR_SCORE: an earlier `KeyError:
    'currency'` in another module says more about this one than an IndexError of the same
    service whose frames and labels share more words. The rest follow by calibrated score.
    The query is the incident's stored signature (text and embedding, when of the current
    provider); otherwise its signature text is built and embedded now.
    """
    provider = get_provider()
    signature = IncidentSignature.objects.filter(incident=incident).defer("lexemes").first()
    if signature is not None:
        text = signature.text
        vector = signature.embedding if signature.embedding_provider == provider.name else None
    else:
        text = _signature_text(incident)
        vector = None
    if vector is None:
        vector = provider.embed_one(text)
    services = _clean(services)
    identical = _identical_incidents(incident, k, services)
    same_error = _same_error_incidents(
        incident, k - len(identical), services, [past.pk for past in identical], provider.name
    )
    queryset = (
        IncidentSignature.objects.filter(embedding_provider=provider.name)
        .exclude(incident_id=incident.pk)
        .exclude(incident_id__in=[past.pk for past in identical])
        .select_related("incident")
    )
    if services:
        queryset = queryset.filter(incident__service__in=services)
    hits = [
        Hit(past.pk, past.title, INCIDENT_KIND, IDENTICAL_SCORE, MATCHED_IDENTICAL, None, None, past)
        for past in identical
    ]
    if len(hits) < k:
        # A signature is a document (exception, message, frames, service), never a search phrase.
        wanted = k - len(hits)
        candidates = rank(
            SIGNATURES,
            queryset,
            text,
            _as_list(vector),
            wanted,
            ef_search=EF_SEARCH,
            exact_rows=EXACT_SCAN_ROWS if services else 0,
        )
        ranked = {hit.id: hit for hit in _hits(queryset, candidates, _signature_hit)}
        # The same error scores at least SAME_ERROR_SCORE, found by the ranking or not; then
        # everything is in score order, so a listed score never rises further down the list.
        for past in same_error:
            found = ranked.get(past.pk)
            ranked[past.pk] = Hit(
                past.pk,
                past.title,
                INCIDENT_KIND,
                max(SAME_ERROR_SCORE, found.score if found else 0.0),
                MATCHED_SAME_ERROR,
                found.bm25 if found else None,
                found.similarity if found else None,
                past,
            )
        hits += sorted(ranked.values(), key=lambda hit: (-hit.score, hit.id))[:wanted]
    return hits


def _identical_incidents(incident, k: int, services: list[str]) -> list:
    """Other incidents with the same fingerprint, or the same (non-empty) exception type and culprit; latest first."""
    same = Q(fingerprint=incident.fingerprint) if incident.fingerprint else Q(pk__in=[])
    if incident.exception_type and incident.culprit:
        same |= Q(exception_type=incident.exception_type, culprit=incident.culprit)
    queryset = Incident.objects.filter(same).exclude(pk=incident.pk)
    if services:
        queryset = queryset.filter(service__in=services)
    return list(queryset.order_by("-last_seen", "-pk")[:k])


def _same_error_incidents(incident, k: int, services: list[str], exclude: list[int], provider: str) -> list:
    """Other incidents with the same (non-empty) exception type and the same normalized title; latest first."""
    if k <= 0 or not incident.exception_type:
        return []
    wanted = _error_text(incident)
    if not wanted:
        return []
    # Only incidents whose signature is of the current provider, like the ranked ones (the rest
    # wait for `manage.py reembed`).
    signed = IncidentSignature.objects.filter(embedding_provider=provider).values("incident_id")
    queryset = Incident.objects.filter(exception_type=incident.exception_type, pk__in=signed).exclude(
        pk__in=[incident.pk, *exclude]
    )
    if services:
        queryset = queryset.filter(service__in=services)
    latest = queryset.order_by("-last_seen", "-pk")[:SAME_ERROR_CANDIDATES]
    return [past for past in latest if _error_text(past) == wanted][:k]


def _error_text(incident) -> str:
    # An error incident's title is "<Type>: <value>" whatever the source (its message varies:
    # "Unhandled KeyError in POST /api/orders/1042/pay" from one, empty from another).
    # Normalized, so ids and numbers do not tell two occurrences apart.
    return normalize_message(incident.title or incident.message).strip()


def _signature_text(incident) -> str:
    """The incident's signature text built now, from its latest event, as `embed_incident` builds it."""
    return signature_text(incident, incident.events.order_by("-received_at").first())


# --- the pool, its two measures and the fusion ----------------------------------------------


def _search_entries(text, k, kinds, services, *, semantic: bool, lexical: bool) -> list[Hit]:
    provider = get_provider()
    queryset = KnowledgeEntry.objects.filter(embedding_provider=provider.name)
    if kinds := _clean(kinds):
        queryset = queryset.filter(kind__in=kinds)
    if services := _clean(services):
        queryset = queryset.filter(services__overlap=services)
    vector = provider.embed_one(text)
    ef_search = EF_SEARCH if len(text.split()) > MAX_PHRASE_WORDS else EF_SEARCH_PHRASE
    exact_ranking, exact_rows = None, 0
    if kinds or services:
        exact_rows = ONE_KIND_EXACT_ROWS if len(kinds) == 1 and not services else EXACT_SCAN_ROWS

        def exact_ranking(vector, limit):
            return _filtered_entry_ranking(provider.name, kinds, services, vector, limit)

    candidates = rank(
        KNOWLEDGE,
        queryset,
        text,
        vector,
        k,
        ef_search=ef_search,
        semantic=semantic,
        lexical=lexical,
        exact_rows=exact_rows,
        exact_ranking=exact_ranking,
    )
    return _hits(queryset, candidates, _entry_hit)


def _filtered_entry_ranking(
    provider: str, kinds: list[str], services: list[str], vector: Sequence[float], limit: int
) -> list[tuple[int, float]]:
    """(id, cosine similarity), nearest first, of every entry of these kinds and services: an exact ranking.

    The vectors come from the covering index of the filter (an index-only scan: the rows it
    reads are packed together), services' from `ServiceVector`. An entry named under several
    of the services has a row under each, so the nearest `limit` × services rows hold at
    least `limit` entries: kept once each here, cheaper than grouping every row in SQL. The
    subquery is a fence: flattened, its ORDER BY distance would let the planner pick the
    HNSW index, which under a filter stops short.
    """
    params: list[Any] = [str(_as_list(vector))]
    rows = limit
    if services:
        sql = (
            "SELECT entry_id, distance FROM (SELECT entry_id, embedding <=> %s::halfvec AS distance"
            " FROM knowledge_servicevector WHERE service = ANY(%s) AND embedding_provider = %s"
        )
        params += [services, provider]
        if kinds:
            sql += " AND kind = ANY(%s)"
            params.append(kinds)
        sql += " OFFSET 0) d ORDER BY 2, 1 LIMIT %s"
        rows = limit * len(services)
    else:
        sql = (
            "SELECT id, distance FROM (SELECT id, embedding <=> %s::halfvec AS distance FROM knowledge_knowledgeentry"
            " WHERE embedding_provider = %s AND kind = ANY(%s) AND embedding IS NOT NULL OFFSET 0) d"
            " ORDER BY 2, 1 LIMIT %s"
        )
        params += [provider, kinds]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, rows])
        nearest = {}
        for pk, distance in cursor.fetchall():  # nearest first
            nearest.setdefault(pk, 1.0 - distance)
    return list(nearest.items())[:limit]


def rank(
    corpus: _Corpus,
    queryset: QuerySet,
    text: str,
    vector: Sequence[float],
    k: int,
    *,
    ef_search: int = EF_SEARCH,
    semantic: bool = True,
    lexical: bool = True,
    keep_all: bool = False,
    exact_rows: int = 0,
    exact_ranking: Callable[[Sequence[float], int], list[tuple[int, float]]] | None = None,
) -> list[Candidate]:
    """The best `k` candidates of `queryset` for `text` / `vector`, by calibrated score.

    With `lexical` off only the semantic side's nearest rows are ranked (by cosine, nothing
    left out); with `semantic` off only rows sharing a query term are. `keep_all` returns
    the whole scored pool, relevant or not (the benchmark fits the calibration on it).
    `exact_rows`: the queryset is restricted (kind, service) and, if the planner expects at
    most this many rows, is ranked exactly rather than through the HNSW index:
    `exact_ranking(vector, limit)` then ranks it (faster than computing the distances of the
    queryset's rows from the heap, which is the default).
    """
    limit = max(MIN_CANDIDATES, k * CANDIDATES_PER_RESULT)
    calibration = calibration_for(get_provider().name)
    with transaction.atomic():
        exact = bool(exact_rows) and semantic and _at_most(queryset, exact_rows)
        if exact and exact_ranking is not None:
            neighbours = dict(exact_ranking(vector, limit))
        else:
            neighbours = dict(_vector_ranking(queryset, vector, limit, ef_search, exact=exact)) if semantic else {}
        if not lexical:
            ordered = sorted(neighbours.items(), key=lambda row: (-row[1], row[0]))[:k]
            return [
                Candidate(pk, 0.0, 0.0, cosine, True, calibrated_score(0.0, cosine, calibration))
                for pk, cosine in ordered
            ]
        terms, stats = _query_terms(corpus, text)
        # With the semantic side on, its neighbours are the pool for common terms; alone,
        # the lexical side needs candidates for them too.
        pool = set(neighbours) | set(_lexical_candidates(queryset, terms, stats, common_terms=not semantic))
        measures = _measure(corpus, pool, terms, stats, vector)
    idf_total = sum(idf for _, idf in terms) or 1.0
    candidates = []
    for pk, (bm25, similarity) in measures.items():
        if not semantic and bm25 <= 0:
            continue
        normalized = min(1.0, bm25 / idf_total)
        candidates.append(
            Candidate(
                pk,
                bm25,
                normalized,
                similarity,
                pk in neighbours,
                calibrated_score(normalized, similarity, calibration),
            )
        )
    if semantic:
        candidates.sort(key=lambda candidate: (-candidate.score, candidate.id))
    else:  # the lexical side alone: BM25F's own order
        candidates.sort(key=lambda candidate: (-candidate.bm25, candidate.id))
    if keep_all:
        return candidates
    return [candidate for candidate in candidates if candidate.bm25 > 0 or candidate.score >= MIN_SCORE][:k]


def _query_terms(corpus: _Corpus, text: str) -> tuple[list[tuple[str, float]], dict]:
    """The query's lexemes that the corpus has, with their idf, rarest first; and the corpus statistics.

    idf = ln(1 + (N − df + 0.5) / (df + 0.5)), BM25's, never negative. A lexeme no document
    has cannot match and is left out (it would only shrink every candidate's normalized score).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT documents, title_length, body_length FROM knowledge_lexicalcorpus WHERE name = %s", [corpus.name]
        )
        row = cursor.fetchone()
        documents, title_total, body_total = row or (0, 0, 0)
        stats = {
            "documents": documents,
            "title_average": title_total / documents if documents else 0.0,
            "body_average": body_total / documents if documents else 0.0,
            "frequencies": {},
        }
        if not documents or not text.strip():
            return [], stats
        cursor.execute(
            "SELECT t.term, t.documents FROM unnest(knowledge_query_lexemes(%s)) AS q(term)"
            " JOIN knowledge_lexicalterm t ON t.corpus = %s AND t.term = q.term",
            [text, corpus.name],
        )
        frequencies = dict(cursor.fetchall())
    stats["frequencies"] = frequencies
    terms = [
        (term, math.log(1.0 + (documents - df + 0.5) / (df + 0.5)))
        for term, df in sorted(frequencies.items(), key=lambda item: (item[1], item[0]))[:MAX_QUERY_TERMS]
    ]
    return terms, stats


def _lexical_candidates(
    queryset: QuerySet, terms: list[tuple[str, float]], stats: dict, *, common_terms: bool = False
) -> list[int]:
    """Ids of rows with the query's rarer terms (GIN): as many terms, rarest first, as fit the budget.

    With `common_terms`, when common terms are left over (all of a short query's terms may
    be common in a large knowledge base), the budget's remainder goes to rows that have one
    of them in their title or tags, where BM25F weighs a term most. That costs a heap
    recheck per row, so the hybrid search leaves common terms to the semantic side's pool.
    """
    rare, common, postings = [], [], 0
    for term, _ in terms:  # rarest first
        df = stats["frequencies"][term]
        if not common and (stats["documents"] <= LEXICAL_CANDIDATES or postings + df <= LEXICAL_CANDIDATES):
            rare.append(term)
            postings += df
        else:
            common.append(term)
    ids: list[int] = []
    # Lexemes are letters and digits only (knowledge_words), so quoting them is enough.
    # No ORDER BY: the model's default ordering would make PostgreSQL sort every match.
    if rare:
        query = SearchQuery(" | ".join(f"'{term}'" for term in rare), search_type="raw", config="simple")
        ids += queryset.filter(lexemes=query).order_by().values_list("pk", flat=True)
    if common_terms and common and len(ids) < LEXICAL_CANDIDATES:
        query = SearchQuery(" | ".join(f"'{term}':AB" for term in common), search_type="raw", config="simple")
        ids += (
            queryset.filter(lexemes=query)
            .exclude(pk__in=ids)
            .order_by()
            .values_list("pk", flat=True)[: LEXICAL_CANDIDATES - len(ids)]
        )
    return ids


def _measure(
    corpus: _Corpus, pool: set[int], terms: list[tuple[str, float]], stats: dict, vector: Sequence[float]
) -> dict[int, tuple[float, float]]:
    """(BM25F, cosine similarity) of every pooled row, from one read of each row.

    BM25F per query term: tf̃ = Σ_field weight · tf_field / (1 − b + b · length_field /
    average_field), then idf · tf̃ / (k1 + tf̃): one saturation over the weighted fields, as
    BM25F has it, so a term in both title and body does not count as two saturated fields.
    The tsvector's position weight labels say the field (A title, B tags, D body).
    """
    if not pool:
        return {}
    idf = dict(terms)
    title_average = stats["title_average"] or 1.0
    body_average = stats["body_average"] or 1.0
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT e.id, e.embedding <=> %s::halfvec, {corpus.title_length}, e.body_length,"  # noqa: S608 (constants)
            " ARRAY(SELECT u.lexeme || ' ' || array_to_string(u.weights, '') FROM unnest(e.lexemes) u"
            "   WHERE u.lexeme = ANY(%s))"
            f" FROM {corpus.table} e WHERE e.id = ANY(%s)",
            [str(_as_list(vector)), list(idf), list(pool)],
        )
        rows = cursor.fetchall()
    measures: dict[int, tuple[float, float]] = {}
    for pk, distance, title_length, body_length, postings in rows:
        title_weight = FIELD_WEIGHTS["A"] / (1.0 - TITLE_B + TITLE_B * (title_length or 0) / title_average)
        body_weight = FIELD_WEIGHTS["D"] / (1.0 - BODY_B + BODY_B * (body_length or 0) / body_average)
        score = 0.0
        for posting in postings:
            term, labels = posting.split(" ")
            tf = labels.count("A") * title_weight + labels.count("B") * FIELD_WEIGHTS["B"]
            tf += labels.count("D") * body_weight
            score += idf[term] * tf / (K1 + tf)
        measures[pk] = (score, 1.0 - distance if distance is not None else 0.0)
    return measures


def _at_most(queryset: QuerySet, rows: int) -> bool:
    """Whether the planner expects `queryset` to have at most `rows` rows (its statistics; no rows are read)."""
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return plan[0]["Plan"]["Plan Rows"] <= rows


def _vector_ranking(
    queryset: QuerySet, vector: Sequence[float], limit: int, ef_search: int = EF_SEARCH, *, exact: bool = False
) -> list[tuple[int, float]]:
    """(id, cosine similarity), nearest first: through the HNSW index with a candidate list of
    `ef_search`, or, when `exact`, by computing every row's distance (a small filtered set)."""
    with connection.cursor() as cursor:
        # set_config(..., true) is SET LOCAL with parameters: the enclosing transaction only.
        if exact:
            # No index scan: the HNSW one would win the plan; bitmap scans of the filter stay.
            cursor.execute("SELECT set_config('enable_indexscan', 'off', true)")
        else:
            cursor.execute(
                "SELECT set_config('hnsw.ef_search', %s, true),"
                " set_config('hnsw.iterative_scan', 'relaxed_order', true), set_config('hnsw.max_scan_tuples', %s, true)",
                [str(max(ef_search, limit)), str(MAX_SCAN_TUPLES)],
            )
    rows = (
        queryset.filter(embedding__isnull=False)
        .annotate(distance=CosineDistance("embedding", vector))
        .order_by("distance")
        .values_list("pk", "distance")[:limit]
    )
    rows = list(rows)
    if exact:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('enable_indexscan', 'on', true)")
    # relaxed_order may return a row slightly out of place; the exact distance puts it back.
    return sorted(((pk, 1.0 - distance) for pk, distance in rows), key=lambda row: -row[1])


def _matched(candidate: Candidate) -> str:
    if candidate.bm25 > 0 and candidate.neighbour:
        return MATCHED_BOTH
    return MATCHED_LEXICAL if candidate.bm25 > 0 else MATCHED_SEMANTIC


def _hits(queryset: QuerySet, candidates: list[Candidate], to_hit) -> list[Hit]:
    # The vectors and tsvectors are large and not needed to show a hit.
    objects = queryset.defer(*DEFERRED_FIELDS).in_bulk([candidate.id for candidate in candidates])
    return [to_hit(objects[candidate.id], candidate) for candidate in candidates if candidate.id in objects]


def _entry_hit(entry: KnowledgeEntry, candidate: Candidate) -> Hit:
    return Hit(
        entry.pk,
        entry.title,
        entry.kind,
        candidate.score,
        _matched(candidate),
        candidate.bm25 or None,
        candidate.similarity,
        entry,
    )


def _signature_hit(signature: IncidentSignature, candidate: Candidate) -> Hit:
    incident = signature.incident
    return Hit(
        incident.pk,
        incident.title,
        INCIDENT_KIND,
        candidate.score,
        _matched(candidate),
        candidate.bm25 or None,
        candidate.similarity,
        incident,
    )


def _clean(values: Iterable[str] | None) -> list[str]:
    return [value for value in (values or []) if value]


def _as_list(vector) -> list[float]:
    return vector.tolist() if hasattr(vector, "tolist") else list(vector)

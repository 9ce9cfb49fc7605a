"""Product search: a small ranking over the catalogue (name words weigh more than tags)."""

from __future__ import annotations

import re

from shop.catalog import PRODUCTS

_WORD = re.compile(r"[a-z0-9]+")
NAME_WEIGHT = 3
TAG_WEIGHT = 1


def tokenize(text: str) -> list[str]:
    """Lower-case words of a query or a product name."""
    return _WORD.findall(text.lower())


def score(product: dict, words: list[str]) -> int:
    """How well a product matches the query words; 0 is no match."""
    name_words = set(tokenize(product["name"]))
    tags = set(product.get("tags", []))
    return sum(NAME_WEIGHT * (word in name_words) + TAG_WEIGHT * (word in tags) for word in words)


def search_products(query: str, catalog: list[dict] | None = None) -> list[dict]:
    """Matching products, best first; products in stock before sold-out ones of the same score."""
    words = tokenize(query)
    scored = [(score(product, words), product) for product in (PRODUCTS if catalog is None else catalog)]
    matches = [(points, product) for points, product in scored if points > 0]
    matches.sort(key=lambda pair: (-pair[0], pair[1]["stock"] == 0, pair[1]["name"]))
    return [product for _, product in matches]


def top_result(results: list) -> dict:
    """The product shown in the search box's "best match" slot."""
    return results[0]

"""Shared helpers for the source-adapter tests: documented fixtures and damaged copies of them."""

import copy
import json
from pathlib import Path

from hypothesis import strategies as st

# Each source keeps its documentation-derived fixtures in its own folder: incidents/sources/<kind>/fixtures/.
SOURCES = Path(__file__).resolve().parent.parent / "incidents" / "sources"

# Any JSON value, small.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def fixture_loader(source: str):
    """load(name) for one source's fixture folder."""

    def load(name: str):
        return json.loads((SOURCES / source / "fixtures" / name).read_text())

    return load


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


@st.composite
def mutated(draw, document):
    """The document with one field, anywhere in it, replaced by random JSON or removed."""
    document = copy.deepcopy(document)
    path = draw(st.sampled_from(list(_paths(document))[1:]))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(JSON)
    return document

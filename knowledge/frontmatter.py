"""Markdown documents with a YAML front matter block, as runbooks are written.

---
title: Postgres connection exhaustion
tags: [database, postgres]
services: [checkout, billing]
---
# Postgres connection exhaustion
...
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from knowledge.models import KnowledgeKind

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*(?:\r?\n|\Z)", re.DOTALL | re.MULTILINE)
_HEADING = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


KNOWN_KEYS = frozenset({"title", "tags", "services", "kind"})


class FrontMatterError(ValueError):
    """The front matter cannot be read; the message says what is wrong in it."""


@dataclass
class Document:
    """One parsed Markdown document: its metadata and the Markdown after the front matter."""

    title: str
    body: str
    kind: str = KnowledgeKind.RUNBOOK
    tags: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _string_list(value, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):  # `tags: database, postgres` is a common slip for a list
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list) and all(isinstance(item, (str, int, float)) for item in value):
        return [str(item).strip() for item in value if str(item).strip()]
    raise FrontMatterError(f"{name!r} must be a list of words, e.g. {name}: [a, b].")


def parse_document(text: str, *, fallback_title: str) -> Document:
    """Split front matter from body; the title falls back to the first `# heading`, then to `fallback_title`."""
    text = text.lstrip("\ufeff")
    metadata: dict = {}
    body = text
    if text.startswith("---"):
        match = _FRONT_MATTER.match(text)
        if match is None:
            raise FrontMatterError("The front matter starts with '---' but has no closing '---' line.")
        try:
            metadata = yaml.safe_load(match.group(1)) or {}
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 2})" if mark is not None else ""
            raise FrontMatterError(f"The front matter is not valid YAML{where}: {problem}.") from None
        if not isinstance(metadata, dict):
            raise FrontMatterError("The front matter must be 'key: value' lines.")
        body = text[match.end() :]
    warnings = []
    unknown = sorted(map(str, set(metadata) - KNOWN_KEYS))
    if unknown:
        # Kept, not fatal: runbooks carry owners and review dates Quench has no use for,
        # but a misspelt `tag:` should not pass unseen.
        warnings.append(f"ignored front matter keys: {', '.join(unknown)}")
    title = metadata.get("title")
    if title is not None and not isinstance(title, (str, int, float)):
        raise FrontMatterError("'title' must be text.")
    if not title:
        heading = _HEADING.search(body)
        title = heading.group(1) if heading else fallback_title
    kind = metadata.get("kind", KnowledgeKind.RUNBOOK)
    if kind not in KnowledgeKind.values:
        raise FrontMatterError(f"'kind' must be one of: {', '.join(KnowledgeKind.values)}.")
    body = body.strip()
    if not body:
        raise FrontMatterError("The document has no text after its front matter.")
    return Document(
        title=str(title).strip()[:300],
        body=body + "\n",
        kind=kind,
        tags=_string_list(metadata.get("tags"), "tags"),
        services=_string_list(metadata.get("services"), "services"),
        warnings=warnings,
    )

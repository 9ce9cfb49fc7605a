"""Markdown to safe HTML for the admin: knowledge bodies are written by people and by imports.

Raw HTML in the source is shown as text, never passed through, and links or images
with a scheme other than http(s) or mailto (``javascript:``, ``data:``) lose their target.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import markdown
from django.utils.safestring import SafeString, mark_safe
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

SAFE_SCHEMES = frozenset({"", "http", "https", "mailto"})


class _SafeLinks(Treeprocessor):
    def run(self, root):
        for element in root.iter():
            for attribute in ("href", "src"):
                value = element.get(attribute)
                if value is not None and urlsplit(value.strip()).scheme.lower() not in SAFE_SCHEMES:
                    element.set(attribute, "#")


class _NoRawHtml(Extension):
    def extendMarkdown(self, md):  # noqa: N802 - Python-Markdown's name
        # Without these two, <script> in a runbook would reach the page as markup; now it is escaped text.
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        md.treeprocessors.register(_SafeLinks(md), "quench_safe_links", 0)


def render_markdown(text: str) -> SafeString:
    """HTML for `text`, with raw HTML escaped and unsafe link targets removed."""
    html = markdown.markdown(text or "", extensions=["fenced_code", "tables", "sane_lists", _NoRawHtml()])
    return mark_safe(html)  # noqa: S308 - raw HTML was escaped by the parser above, links filtered

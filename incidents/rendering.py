"""Markdown to safe HTML for the admin's postmortem preview and printable page.

Postmortems mix text people wrote with text a model wrote, so the HTML that Markdown
makes is cleaned by nh3 (an allow-list of tags and attributes, http(s)/mailto links
only) before it reaches a page: a `<script>` or an `onerror=` in the source is dropped.
"""

from __future__ import annotations

import markdown
import nh3
from django.utils.safestring import SafeString, mark_safe

ALLOWED_TAGS = {
    "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "input",
    "li", "ol", "p", "pre", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "input": {"type", "checked", "disabled"},
    "td": {"align"},
    "th": {"align"},
}


def render_markdown(text: str) -> SafeString:
    """Sanitized HTML for Markdown `text` (tables, fenced code, task-list checkboxes)."""
    html = markdown.markdown(text or "", extensions=["fenced_code", "tables", "sane_lists"])
    # Task lists ("- [ ] follow-up") read as checkboxes in the preview and on paper.
    html = html.replace("<li>[ ] ", '<li><input type="checkbox" disabled> ').replace(
        "<li>[x] ", '<li><input type="checkbox" checked disabled> '
    )
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(clean)  # noqa: S308 - cleaned by nh3 just above

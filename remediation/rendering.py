"""HTML for patches: a unified diff as coloured lines, escaped."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join

# Line kind → (CSS class, inline style); inline so the admin needs no extra stylesheet.
_LINE_STYLES = {
    "+": ("diff-add", "background:#e6ffed;color:#22863a"),
    "-": ("diff-del", "background:#ffeef0;color:#b31d28"),
    "@": ("diff-hunk", "background:#f1f8ff;color:#005cc5"),
    "meta": ("diff-meta", "font-weight:bold;color:#24292e"),
    " ": ("diff-context", ""),
}


def _kind(line: str) -> tuple[str, str]:
    if line.startswith(("+++", "---", "diff --git", "new file mode", "index ", "\\ ")):
        return _LINE_STYLES["meta"]
    return _LINE_STYLES.get(line[:1], _LINE_STYLES[" "])


def diff_html(diff: str):
    """A unified diff as a <pre> block with added, removed and hunk lines coloured."""
    if not diff:
        return format_html('<p class="help">{}</p>', "No patch.")
    lines = format_html_join(
        "",
        '<span class="{}" style="display:block;{}">{}</span>',
        ((*_kind(line), line or " ") for line in diff.splitlines()),
    )
    return format_html(
        '<pre class="quench-diff" style="font-size:12px;line-height:1.4;overflow-x:auto;'
        'border:1px solid #ddd;padding:6px;max-height:600px">{}</pre>',
        lines,
    )


def output_html(output: str):
    """A test run's output in a scrollable <pre>."""
    return format_html(
        '<pre style="font-size:12px;max-height:400px;overflow:auto;border:1px solid #ddd;padding:6px">{}</pre>',
        output or "(no output)",
    )

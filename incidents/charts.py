"""Small server-side SVG charts for the admin dashboard: no JavaScript, no CDN.

Colours come from the admin's CSS variables (text, hairlines, links), so the charts follow
its light and dark themes; only the severity colours are fixed, chosen to read on both.
Every bar and point carries a `<title>` (a tooltip) and every bar its value as text, so the
figures are readable without hovering and by a screen reader.
"""

from __future__ import annotations

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

SEVERITY_COLOURS = {"P0": "#b91c1c", "P1": "#ef4444", "P2": "#f59e0b", "P3": "#3b82f6"}
LINE_COLOURS = ["#0ea5e9", "#f97316", "#22c55e", "#a855f7"]
WIDTH = 640
BAR_HEIGHT = 22


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if value <= step:
            return step
    return value


def _svg(height: int, title: str, body: str) -> SafeString:
    return format_html(
        '<svg class="quench-chart" role="img" aria-label="{}" viewBox="0 0 {} {}" width="100%" '
        'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        '<text class="chart-title" x="0" y="14">{}</text>{}</svg>',
        title,
        WIDTH,
        height,
        title,
        mark_safe(body),  # noqa: S308 - every piece below is built with escape()/format_html
    )


def stacked_bars(labels: list[str], series: dict[str, list[int]], *, colours: dict[str, str], title: str) -> SafeString:
    """Vertical bars per label, stacked by series (e.g. incidents per day by severity), with a legend."""
    top, bottom, left = 40, 30, 34
    height = 220
    plot_height = height - top - bottom
    totals = [sum(values[index] for values in series.values()) for index in range(len(labels))]
    scale_max = _nice_max(max(totals, default=0))
    step = (WIDTH - left) / max(len(labels), 1)
    bar_width = max(2.0, step * 0.7)
    parts = []
    for fraction in (0, 0.5, 1):
        y = top + plot_height * (1 - fraction)
        parts.append(
            f'<line class="grid" x1="{left}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{scale_max * fraction:g}</text>'
        )
    for index, label in enumerate(labels):
        x = left + index * step + (step - bar_width) / 2
        y = top + plot_height
        for name, values in series.items():
            value = values[index]
            if not value:
                continue
            bar = plot_height * value / scale_max
            y -= bar
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_width:.1f}" height="{bar:.1f}" fill="{colours[name]}">'
                f"<title>{escape(label)}: {value} {escape(name)}</title></rect>"
            )
        if totals[index]:
            parts.append(
                f'<text class="value" x="{x + bar_width / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle">{totals[index]}</text>'
            )
        if len(labels) <= 31 or index % max(1, len(labels) // 15) == 0:
            parts.append(
                f'<text class="axis" x="{x + bar_width / 2:.1f}" y="{height - bottom + 14}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    for offset, (name, colour) in enumerate(colours.items()):
        x = WIDTH - 240 + offset * 60
        parts.append(
            f'<rect x="{x}" y="4" width="12" height="12" fill="{colour}"/>'
            f'<text class="axis" x="{x + 16}" y="14">{escape(name)}</text>'
        )
    return _svg(height, title, "".join(parts))


def lines(labels: list[str], series: dict[str, list[float | None]], *, title: str) -> SafeString:
    """One line per series over the labels; missing values (None) leave gaps, points carry tooltips."""
    top, bottom, left = 40, 30, 44
    height = 220
    plot_height = height - top - bottom
    values = [value for points in series.values() for value in points if value is not None]
    scale_max = _nice_max(max(values, default=0))
    step = (WIDTH - left - 24) / max(len(labels) - 1, 1)  # room for the last label
    parts = []
    for fraction in (0, 0.5, 1):
        y = top + plot_height * (1 - fraction)
        parts.append(
            f'<line class="grid" x1="{left}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{scale_max * fraction:g}</text>'
        )
    for number, (name, points) in enumerate(series.items()):
        colour = LINE_COLOURS[number % len(LINE_COLOURS)]
        segment: list[str] = []
        for index, value in enumerate(points + [None]):
            if value is None:
                if len(segment) > 1:
                    parts.append(
                        f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(segment)}"/>'
                    )
                segment = []
                continue
            x = left + index * step
            y = top + plot_height * (1 - value / scale_max)
            segment.append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                f"<title>{escape(labels[index])}: {escape(name)} {value:.1f}</title></circle>"
            )
        parts.append(
            f'<rect x="{WIDTH - 250 + number * 125}" y="4" width="12" height="12" fill="{colour}"/>'
            f'<text class="axis" x="{WIDTH - 234 + number * 125}" y="14">{escape(name)}</text>'
        )
    for index, label in enumerate(labels):
        if len(labels) <= 16 or index % max(1, len(labels) // 15) == 0:
            parts.append(
                f'<text class="axis" x="{left + index * step:.1f}" y="{height - bottom + 14}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    if not values:
        parts.append(
            f'<text class="axis" x="{WIDTH / 2}" y="{top + plot_height / 2}" text-anchor="middle">no data</text>'
        )
    return _svg(height, title, "".join(parts))


def hbars(rows: list[tuple[str, int]], *, title: str) -> SafeString:
    """Horizontal bars, one per (label, value), the value written at the bar's end."""
    top, label_width = 26, 230
    height = top + max(len(rows), 1) * (BAR_HEIGHT + 6) + 4
    scale_max = _nice_max(max((value for _, value in rows), default=0))
    parts = []
    for index, (label, value) in enumerate(rows):
        y = top + index * (BAR_HEIGHT + 6)
        width = (WIDTH - label_width - 50) * value / scale_max
        parts.append(
            f'<text class="axis label" x="{label_width - 6}" y="{y + BAR_HEIGHT * 0.7:.1f}" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect class="bar" x="{label_width}" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT}">'
            f"<title>{escape(label)}: {value}</title></rect>"
            f'<text class="value" x="{label_width + width + 6:.1f}" y="{y + BAR_HEIGHT * 0.7:.1f}" '
            f'data-label="{escape(label)}">{value}</text>'
        )
    if not rows:
        parts.append(f'<text class="axis" x="0" y="{top + 14}">no data</text>')
    return _svg(height, title, "".join(parts))

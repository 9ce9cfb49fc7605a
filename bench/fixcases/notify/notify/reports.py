"""The delivery report the support team reads every morning."""

from __future__ import annotations


def delivery_rate(sent: int, delivered: int) -> float | None:
    """Share of the sent messages that were delivered, in percent; None when nothing was sent."""
    return round(100 * delivered / sent, 1)


def report_line(day: str, counts: dict) -> str:
    """One day of the report."""
    rate = delivery_rate(counts["sent"], counts["delivered"])
    shown = "n/a" if rate is None else f"{rate:.1f}%"
    return f"{day}: {counts['sent']} sent, {shown} delivered"


def daily_report(days: dict[str, dict]) -> list[str]:
    """The report, oldest day first."""
    return [report_line(day, days[day]) for day in sorted(days)]

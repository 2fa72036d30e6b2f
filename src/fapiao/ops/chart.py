"""Hourly bar charts drawn on the server as inline SVG: no script, no library, nothing from a CDN.

:func:`hourly_chart` turns 24 counts into the geometry of one small chart (its bars, the hour
labels under them, the largest count on the axis); the template ``ops/includes/hourly_chart.html``
writes the ``<svg>``.  Each series gets its own scale — a few 503s next to thousands of invoices
would otherwise be invisible — and every bar carries a ``<title>`` with its hour and count; the
same numbers are in a table under the charts for screen readers and for copying.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

WIDTH = 480
HEIGHT = 120
TOP = 14  # room for the largest count
BOTTOM = 16  # room for the hour labels
GAP = 2


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str  # the hour on screen, "14:00" (Beijing time)


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class HourlyChart:
    key: str  # issued / refused / unavailable: the chart's id and CSS class
    title: str
    bars: list[Bar]
    ticks: list[Tick]
    peak: int
    total: int
    width: int = WIDTH
    height: int = HEIGHT
    baseline: float = HEIGHT - BOTTOM


def hourly_chart(key: str, title: str, hours: list[datetime], counts: list[int]) -> HourlyChart:
    """The chart of ``counts`` (one per hour of ``hours``, oldest first, in the time zone to show)."""
    if len(hours) != len(counts) or not hours:
        raise ValueError("one count per hour, at least one hour")
    peak = max(counts)
    slot = WIDTH / len(hours)
    plot = HEIGHT - TOP - BOTTOM
    bars = []
    for index, (hour, count) in enumerate(zip(hours, counts, strict=True)):
        height = plot * count / peak if peak else 0.0
        if count and height < 1:
            height = 1.0  # a single event stays visible
        bars.append(
            Bar(
                x=round(index * slot + GAP / 2, 2),
                y=round(HEIGHT - BOTTOM - height, 2),
                width=round(slot - GAP, 2),
                height=round(height, 2),
                count=count,
                label=hour.strftime("%H:00"),
            )
        )
    ticks = [
        Tick(x=round(index * slot + slot / 2, 2), label=hour.strftime("%H"))
        for index, hour in enumerate(hours)
        if index % 3 == 0
    ]
    return HourlyChart(key, title, bars, ticks, peak, sum(counts))

"""Turns funnel rows into bar geometry for the ops page's SVG chart (no script, no inline style)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHART_WIDTH = 600
BAR_HEIGHT = 14
ROW_GAP = 10
LABEL_WIDTH = 150


@dataclass(frozen=True)
class FunnelBar:
    label: str
    y: int
    opened_width: int
    recovered_width: int
    opened: int
    recovered: int


def funnel_bars(rows: list[dict[str, Any]]) -> list[FunnelBar]:
    """One pair of bars (opened, recovered) per day and kind, scaled to the busiest row."""
    widest = max((int(row["opened"]) for row in rows), default=0) or 1
    usable = CHART_WIDTH - LABEL_WIDTH
    bars = []
    for index, row in enumerate(rows):
        opened, recovered = int(row["opened"]), int(row["recovered"] or 0)
        bars.append(
            FunnelBar(
                label=f"{row['day']} {str(row['kind']).replace('_', ' ')}",
                y=index * (2 * BAR_HEIGHT + ROW_GAP),
                opened_width=round(usable * opened / widest),
                recovered_width=round(usable * recovered / widest),
                opened=opened,
                recovered=recovered,
            )
        )
    return bars

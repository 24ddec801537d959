"""An inline SVG chart of an incident timeline: one lane per kind of event on a time axis.

The chart is plain SVG text built here, so the report needs no plotting library and no
script. Every label and tooltip is redacted and escaped. Postmortem entries (impact, root
cause, lessons...) are analysis written after the fact, so they are listed in their
sections and left off the chart, where their write-up time would stretch the axis.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any
from zoneinfo import ZoneInfo

from ..scrub import scrub
from .model import Kind

LANES = (
    ("Lifecycle", "#175cd3", (Kind.DETECTED, Kind.ACKNOWLEDGED, Kind.UNACKNOWLEDGED,
                              Kind.CONTAINED, Kind.RESOLVED, Kind.VERIFIED, Kind.CLOSED,
                              Kind.REOPENED)),
    ("Alerts", "#b42318", (Kind.ALERT_FIRED, Kind.ALERT_RESOLVED, "flapping")),
    ("Severity", "#b54708", (Kind.SEVERITY, Kind.ESCALATED, Kind.ASSIGNED)),
    ("Notes", "#5b6475", (Kind.NOTE,)),
)
MILESTONES = (("detected_at", "detected"), ("acknowledged_at", "acknowledged"),
              ("contained_at", "contained"), ("resolved_at", "resolved"))
WIDTH, LEFT, RIGHT, TOP, LANE_HEIGHT = 960, 110, 30, 34, 34
TICKS = 5
TOOLTIP_CHARS = 300


def timeline_svg(rows: list[dict[str, Any]], milestones: dict[str, str | None],
                 zone: ZoneInfo) -> str:
    """Return the SVG of ``rows`` (effective timeline rows) with milestone lines.

    ``milestones`` maps ``detected_at``, ``acknowledged_at``... to ISO times or None.
    Returns an empty string when no row falls in a charted lane.
    """
    charted = [(row, lane) for row in rows
               for lane, (_name, _colour, kinds) in enumerate(LANES) if row["kind"] in kinds]
    if not charted:
        return ""

    marks = {name: dt.datetime.fromisoformat(value)
             for name, value in milestones.items() if value}
    times = [row["occurred_at"] for row, _lane in charted] + list(marks.values())
    axis = _Axis(min(times), max(times))
    height = TOP + LANE_HEIGHT * len(LANES) + 40

    parts = [f"<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"100%\" "
             f"viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"12\">",
             "<title>Incident timeline</title>"]
    parts.extend(_lanes())
    parts.extend(_milestone_lines(marks, MILESTONES, axis, height))
    parts.extend(_markers(charted, axis, zone))
    parts.extend(_ticks(axis, zone, height))
    parts.append("</svg>")
    return "\n".join(parts)


class _Axis:
    """The mapping from times to x positions; a timeline of one instant sits in the middle."""

    def __init__(self, start: dt.datetime, end: dt.datetime):
        self.start = start
        self.end = end
        self.span = (end - start).total_seconds()

    def x(self, moment: dt.datetime) -> float:
        usable = WIDTH - LEFT - RIGHT
        if self.span <= 0:
            return LEFT + usable / 2
        return LEFT + usable * (moment - self.start).total_seconds() / self.span


def _lane_y(lane: int) -> float:
    return TOP + LANE_HEIGHT * lane + LANE_HEIGHT / 2


def _lanes() -> list[str]:
    parts = []
    for lane, (name, colour, _kinds) in enumerate(LANES):
        y = _lane_y(lane)
        parts.append(f"<line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{WIDTH - RIGHT}\" y2=\"{y}\" "
                     f"stroke=\"#d9dee7\"/>")
        parts.append(f"<text x=\"8\" y=\"{y + 4}\" fill=\"{colour}\">{name}</text>")
    return parts


def _milestone_lines(marks: dict[str, dt.datetime], names: tuple[tuple[str, str], ...],
                     axis: _Axis, height: int) -> list[str]:
    parts = []
    reached = [(field, label) for field, label in names if field in marks]
    for index, (field, label) in enumerate(reached):
        x = round(axis.x(marks[field]), 1)
        # Alternate two label rows, so milestones minutes apart do not print over each other.
        label_y = TOP - 8 - 13 * (index % 2)
        parts.append(f"<line x1=\"{x}\" y1=\"{label_y + 2}\" x2=\"{x}\" y2=\"{height - 34}\" "
                     f"stroke=\"#1d2330\" stroke-dasharray=\"4 3\"/>")
        # A label near the right edge ends at its line instead of running off the chart.
        anchor, text_x = ("end", x - 3) if x > WIDTH - RIGHT - 90 else ("start", x + 3)
        parts.append(f"<text x=\"{text_x}\" y=\"{label_y}\" text-anchor=\"{anchor}\" "
                     f"fill=\"#1d2330\">{label}</text>")
    return parts


def _markers(charted: list[tuple[dict[str, Any], int]], axis: _Axis,
             zone: ZoneInfo) -> list[str]:
    parts = []
    for row, lane in charted:
        x = round(axis.x(row["occurred_at"]), 1)
        colour = LANES[lane][1]
        when = row["occurred_at"].astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")
        tooltip = f"{when} {row['kind']}: {row['description']}"[:TOOLTIP_CHARS]
        parts.append(f"<circle cx=\"{x}\" cy=\"{_lane_y(lane)}\" r=\"6\" fill=\"{colour}\" "
                     f"fill-opacity=\"0.8\"><title>{html.escape(scrub(tooltip))}</title>"
                     f"</circle>")
    return parts


def _ticks(axis: _Axis, zone: ZoneInfo, height: int) -> list[str]:
    count = 1 if axis.span <= 0 else TICKS
    parts = []
    for index in range(count):
        fraction = 0.5 if count == 1 else index / (count - 1)
        moment = axis.start + dt.timedelta(seconds=axis.span * fraction)
        x = round(axis.x(moment), 1)
        label = moment.astimezone(zone).strftime("%m-%d %H:%M")
        anchor = "start" if index == 0 and count > 1 else \
            "end" if index == count - 1 and count > 1 else "middle"
        parts.append(f"<text x=\"{x}\" y=\"{height - 14}\" text-anchor=\"{anchor}\" "
                     f"fill=\"#5b6475\">{label}</text>")
    zone_name = html.escape(str(zone.key))
    parts.append(f"<text x=\"{WIDTH - RIGHT}\" y=\"{height - 1}\" text-anchor=\"end\" "
                 f"fill=\"#5b6475\">times in {zone_name}</text>")
    return parts

"""Formatting shared by the postmortem and incident review reports: times, durations, tables.

Every string that reaches HTML here is redacted with ``scrub`` and escaped, because titles,
descriptions and labels come from alert payloads that anyone able to fire an alert controls.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from ..errors import UsageError
from ..scrub import scrub
from .times import parse_time

MISSING = "–"


def parse_report_time(text: str, parameter: str) -> dt.datetime | None:
    """Read a notebook time parameter: "" is None, a date is its midnight UTC, else RFC 3339.

    Raise UsageError naming the parameter when the text is neither.
    """
    value = (text or "").strip()
    if not value:
        return None

    try:
        return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), dt.UTC)
    except ValueError:
        pass

    try:
        return parse_time(value)
    except ValueError:
        raise UsageError(f"{parameter} '{text}' is invalid; write a date such as 2026-03-01 or "
                         f"a time with a UTC offset such as 2026-03-01T12:00:00Z") from None


def format_duration(seconds: float | None) -> str:
    """Format seconds as ``1d 2h 3m 4s`` (rounded to the second), or a dash when unknown."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return MISSING

    total = round(seconds)
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{value}{unit}" for value, unit in ((days, "d"), (hours, "h"), (minutes, "m"))
             if value]
    if secs or not parts:
        parts.append(f"{secs}s")
    return sign + " ".join(parts)


def format_time(value: Any, zone: ZoneInfo) -> str:
    """Format an aware time (or pandas Timestamp) in ``zone`` with the zone's abbreviation."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return MISSING
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    moment = pd.Timestamp(value).to_pydatetime()
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def frame_html(frame: pd.DataFrame) -> str:
    """Render a DataFrame as an HTML table with every cell redacted and escaped."""
    cleaned = frame.map(lambda value: _one_line(scrub(value)) if isinstance(value, str)
                        else value)
    cleaned.columns = [scrub(str(column)) for column in cleaned.columns]
    return cleaned.to_html(index=False, escape=True, na_rep=MISSING, border=0)


def _one_line(text: str) -> str:
    # pandas prints a line break inside a cell as the two characters \n, so join the lines.
    return " / ".join(line.strip() for line in text.splitlines() if line.strip())


def status_html(status: str | None) -> str:
    """Render an SLA status (met, at risk, breached, on track) with the report's colours."""
    if status is None:
        return "<span class=\"meta\">no target</span>"
    css = {"met": "PASS", "breached": "FAIL", "at risk": "PENDING"}.get(status, "SKIPPED")
    return f"<span class=\"status status-{css}\">{html.escape(status)}</span>"

"""The incident review across many incidents: per-severity metrics, breaches, open incidents.

The numbers come from ``metrics.incident_table`` and ``metrics.severity_metrics``, the same
functions behind ``tinysdlc-nb incident metrics``, so the notebook and the CLI agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from ..config import load_config
from ..gates.display import escaped
from ..store import open_store, utc_now
from .metrics import incident_table, severity_metrics
from .model import DONE_STATUSES
from .records import display_id
from .report_format import MISSING, format_duration, format_time, frame_html, parse_report_time
from .sla import BREACHED, SlaPolicy
from .times import load_zone

_DURATION_COLUMNS = {"tta_median_s": "TTA median", "tta_p90_s": "TTA p90",
                     "ttc_median_s": "TTC median", "ttr_median_s": "TTR median",
                     "ttr_p90_s": "TTR p90"}


@dataclass(frozen=True)
class Review:
    """The incident table and per-severity metrics of one project, as of ``now``."""

    project: str
    table: pd.DataFrame
    metrics: pd.DataFrame
    since: dt.datetime | None
    now: dt.datetime
    zone: ZoneInfo


def load_review(project_dir: str | Path, *, database_url: str | None = None,
                since: str | None = None, now: str | None = None) -> Review:
    """Read every incident detected at or after ``since`` (all when empty)."""
    config = load_config(Path(project_dir))
    start = parse_report_time(since or "", "since")
    moment = parse_report_time(now or "", "now") or utc_now()

    store = open_store(database_url or config.database_url)
    try:
        table = incident_table(store, SlaPolicy.from_config(config.sla), now=moment,
                               since=start)
    finally:
        store.close()
    return Review(config.name, table, severity_metrics(table), start, moment,
                  load_zone(config.project["display_zone"]))


def header(review: Review) -> str:
    scope = f"detected since {format_time(review.since, review.zone)}" if review.since \
        else "all incidents"
    meta = (f"{len(review.table)} incident(s), {scope} · judged at "
            f"{format_time(review.now, review.zone)}")
    return (f"<h1>{escaped(f'Incident review: {review.project}')}</h1>"
            f"<p class=\"meta\">{escaped(meta)}</p>")


def severity_table(review: Review) -> str:
    """Return the per-severity metrics, durations as ``1h 2m 3s`` rounded to the second."""
    frame = pd.DataFrame({"Severity": review.metrics["severity"],
                          "Incidents": review.metrics["count"],
                          "Open": review.metrics["open"]})
    for column, title in _DURATION_COLUMNS.items():
        frame[title] = review.metrics[column].map(format_duration)
    frame["SLA breaches"] = review.metrics["sla_breaches"]
    return ("<h2>Response metrics by severity</h2>" + frame_html(frame)
            + "<p class=\"meta\">Times count from detection. An incident that has not reached "
              "a milestone is left out of that milestone's times.</p>")


def breaches(review: Review) -> str:
    """Return the incidents that breached their acknowledge or resolve target."""
    table = review.table
    rows = []
    for target in ("acknowledge", "resolve"):
        breached = table[table[f"{target}_sla"] == BREACHED]
        for _, incident in breached.iterrows():
            rows.append({"Incident": display_id(incident["incident_id"]),
                         "Title": incident["title"], "Severity": incident["severity"],
                         "Target": target, "Due": format_time(incident[f"{target}_due"],
                                                              review.zone),
                         "Status": incident["status"]})
    if not rows:
        return "<h2>SLA breaches</h2><p class=\"meta\">No incident breached its SLA.</p>"
    return "<h2>SLA breaches</h2>" + frame_html(pd.DataFrame(rows))


def open_incidents(review: Review) -> str:
    """Return the incidents not yet resolved, oldest first, with their age and SLA state."""
    table = review.table[~review.table["status"].isin(DONE_STATUSES)]
    if table.empty:
        return "<h2>Open incidents</h2><p class=\"meta\">No open incidents.</p>"

    table = table.sort_values("detected_at")
    now = pd.Timestamp(review.now)
    frame = pd.DataFrame({
        "Incident": table["incident_id"].map(display_id),
        "Title": table["title"],
        "Severity": table["severity"],
        "Status": table["status"],
        "Detected": table["detected_at"].map(lambda value: format_time(value, review.zone)),
        "Open for": (now - table["detected_at"]).dt.total_seconds().map(format_duration),
        "Acknowledge SLA": table["acknowledge_sla"].fillna("no target"),
        "Resolve SLA": table["resolve_sla"].fillna("no target"),
    })
    return "<h2>Open incidents</h2>" + frame_html(frame)


def incidents(review: Review) -> str:
    """Return one row per incident with its response times and SLA results."""
    table = review.table
    if table.empty:
        return "<h2>Incidents</h2><p class=\"meta\">No incidents recorded.</p>"

    def elapsed(column: str) -> pd.Series:
        return (table[column] - table["detected_at"]).dt.total_seconds().map(format_duration)

    frame = pd.DataFrame({
        "Incident": table["incident_id"].map(display_id),
        "Title": table["title"],
        "Service": table["service"].replace("", MISSING),
        "Source": table["source"],
        "Severity": table["severity"],
        "Status": table["status"],
        "Detected": table["detected_at"].map(lambda value: format_time(value, review.zone)),
        "TTA": elapsed("acknowledged_at"),
        "TTC": elapsed("contained_at"),
        "TTR": elapsed("resolved_at"),
        "Acknowledge SLA": table["acknowledge_sla"].fillna("no target"),
        "Resolve SLA": table["resolve_sla"].fillna("no target"),
    })
    return "<h2>Incidents</h2>" + frame_html(frame)

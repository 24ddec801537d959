"""Incident tables and response metrics, computed with pandas over the store's rows.

Times to acknowledge (TTA, human acknowledgements only), contain (TTC) and resolve (TTR)
are measured from detection. An incident that has not reached a milestone is left out of
that milestone's statistics and counted as open; nothing is measured up to "now".
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import String, or_, select, type_coerce

from ..store import Store
from ..store.schema import incidents, timeline
from .derive import STATUS_RANK, severity_changes, summarize
from .model import SEVERITIES, Kind
from .sla import SlaPolicy, evaluate

_NEEDED_KINDS = [str(kind) for kind in (*STATUS_RANK, Kind.SEVERITY, Kind.RETRACTION)]
METRIC_COLUMNS = ("severity", "count", "open", "tta_median_s", "tta_p90_s", "ttc_median_s",
                  "ttr_median_s", "ttr_p90_s", "sla_breaches")


def lifecycle_frame(store: Store) -> pd.DataFrame:
    """Load the rows that milestones, status and severity depend on, for every incident.

    The time column is read as the driver returns it and converted by one
    ``pd.to_datetime`` call: SQLAlchemy's per-row parsing of SQLite's time strings took
    most of the load time on a large history.
    """
    columns = [timeline.c[name] for name in ("id", "incident_id", "kind", "actor_kind",
                                              "severity", "supersedes")]
    raw_time = type_coerce(timeline.c.occurred_at, String).label("occurred_at")
    query = select(*columns, raw_time).where(or_(timeline.c.kind.in_(_NEEDED_KINDS),
                                                 timeline.c.supersedes.is_not(None)))
    with store.engine.connect() as connection:
        result = connection.execute(query)
        names = list(result.keys())
        rows = result.fetchall()
    # Columns built from transposed tuples: pandas reads Row objects one by one otherwise.
    columns = zip(*rows, strict=True) if rows else ([] for _ in names)
    frame = pd.DataFrame(dict(zip(names, map(list, columns), strict=True)))
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True, format="ISO8601")
    return frame.astype({"id": "int64", "incident_id": "int64", "supersedes": "float64"})


def incident_table(store: Store, policy: SlaPolicy, *, now: dt.datetime,
                   since: dt.datetime | None = None,
                   rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return one row per incident: title, service, status, severity, milestones and SLA.

    ``rows`` may pass an already loaded ``lifecycle_frame``; ``since`` keeps incidents
    detected at or after that time.
    """
    rows = lifecycle_frame(store) if rows is None else rows
    table = table_from_rows(rows, policy, now=now)
    names = store.frame(select(incidents.c.id.label("incident_id"), incidents.c.title,
                               incidents.c.service, incidents.c.source))
    table = names.merge(table, on="incident_id", how="inner")
    table["detected_estimated"] = table["incident_id"].isin(_estimated_detections(store))
    if since is not None:
        table = table[table["detected_at"] >= pd.Timestamp(since)]
    return table.sort_values("incident_id").reset_index(drop=True)


def _estimated_detections(store: Store) -> list[int]:
    """Return the incidents whose detection time is a guess: opened by a resolve or an
    acknowledgement that carried no start time, and never corrected since."""
    superseded = select(timeline.c.supersedes).where(timeline.c.supersedes.is_not(None))
    query = select(timeline.c.incident_id).where(
        timeline.c.kind == str(Kind.DETECTED),
        timeline.c.details.contains('"detected_time_estimated": true'),
        timeline.c.id.not_in(superseded))
    return list(store.frame(query)["incident_id"])


def table_from_rows(rows: pd.DataFrame, policy: SlaPolicy, *, now: dt.datetime) -> pd.DataFrame:
    """Derive the per-incident table (without titles) from lifecycle rows."""
    summary = summarize(rows)
    return evaluate(summary, severity_changes(rows), policy, now)


def severity_metrics(table: pd.DataFrame) -> pd.DataFrame:
    """Return per severity: count, open, TTA/TTC/TTR statistics in seconds, SLA breaches.

    Incidents whose detection time is only estimated count, but are left out of the
    time statistics, because their durations would be made up.
    """
    if "detected_estimated" in table:
        table = table.assign(detected_at=table["detected_at"].where(
            ~table["detected_estimated"].astype(bool)))
    table = table.assign(
        tta=(table["acknowledged_at"] - table["detected_at"]).dt.total_seconds(),
        ttc=(table["contained_at"] - table["detected_at"]).dt.total_seconds(),
        ttr=(table["resolved_at"] - table["detected_at"]).dt.total_seconds(),
        is_open=~table["status"].isin(["resolved", "verified", "closed"]),
        breached=(table.filter(like="_sla") == "breached").any(axis=1),
    )
    grouped = table.groupby("severity")
    result = pd.DataFrame({
        "count": grouped.size(),
        "open": grouped["is_open"].sum(),
        "tta_median_s": grouped["tta"].median(),
        "tta_p90_s": grouped["tta"].quantile(0.9),
        "ttc_median_s": grouped["ttc"].median(),
        "ttr_median_s": grouped["ttr"].median(),
        "ttr_p90_s": grouped["ttr"].quantile(0.9),
        "sla_breaches": grouped["breached"].sum(),
    })
    result = result.reindex(list(SEVERITIES))
    result["count"] = result["count"].fillna(0).astype("int64")
    result["open"] = result["open"].fillna(0).astype("int64")
    result["sla_breaches"] = result["sla_breaches"].fillna(0).astype("int64")
    return result.rename_axis("severity").reset_index()

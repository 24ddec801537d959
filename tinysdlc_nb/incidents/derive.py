"""Milestones, status and severity derived from timeline rows, never stored twice.

``summarize`` works on a whole timeline DataFrame at once (pandas group-bys, no Python
loop per row), so a list of every incident or the metrics over a large history cost a
few vectorised passes.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .model import SEVERITIES, Kind

# Rank of each status-moving kind. A reset kind starts a new episode of the incident; the
# highest rank reached in the newest episode is its status.
STATUS_RANK = {
    Kind.DETECTED: 0, Kind.REOPENED: 0, Kind.UNACKNOWLEDGED: 0,
    Kind.ACKNOWLEDGED: 1, Kind.CONTAINED: 2, Kind.RESOLVED: 3, Kind.VERIFIED: 4,
    Kind.CLOSED: 5,
}
RESET_KINDS = (Kind.DETECTED, Kind.REOPENED, Kind.UNACKNOWLEDGED)
STATUS_NAMES = ("open", "acknowledged", "contained", "resolved", "verified", "closed")
RESOLVED_RANK = 3

SUMMARY_COLUMNS = ("incident_id", "status", "severity", "max_severity", "detected_at",
                   "acknowledged_at", "contained_at", "resolved_at", "verified_at",
                   "closed_at")


def effective(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop rows that a later row supersedes, and the retraction rows themselves."""
    superseded = frame["supersedes"].dropna().astype("int64")
    keep = ~frame["id"].isin(superseded) & (frame["kind"] != str(Kind.RETRACTION))
    return frame[keep]


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Return one row per incident: status, current and highest severity, and milestones.

    ``frame`` has the timeline columns (at least id, incident_id, occurred_at, kind,
    actor_kind, severity, supersedes). Milestones are UTC times or NaT.
    acknowledged_at counts human acknowledgements only, and only they move the status.
    contained_at is the first containment, which a resolution implies. resolved_at,
    verified_at and closed_at belong to the newest episode and are NaT while the incident
    is open again. ``summarize_rows`` applies the same rules to one incident's rows.
    """
    rows = effective(frame).sort_values(["incident_id", "occurred_at", "id"])
    ids = pd.Index(frame["incident_id"].unique(), name="incident_id")
    summary = pd.DataFrame(index=ids)

    moves_status = rows["kind"].isin([str(kind) for kind in STATUS_RANK]) & ~(
        (rows["kind"] == str(Kind.ACKNOWLEDGED)) & (rows["actor_kind"] != "human"))
    life = rows[moves_status]
    rank = life["kind"].map({str(kind): value for kind, value in STATUS_RANK.items()})
    is_reset = life["kind"].isin([str(kind) for kind in RESET_KINDS])
    episode = is_reset.astype("int64").groupby(life["incident_id"]).cumsum()
    newest = episode == episode.groupby(life["incident_id"]).transform("max")
    current_rank = rank[newest].groupby(life["incident_id"][newest]).max()
    summary["status_rank"] = current_rank.reindex(ids).fillna(0).astype("int64")
    summary["status"] = summary["status_rank"].map(dict(enumerate(STATUS_NAMES)))

    with_severity = rows[rows["severity"].notna()]
    summary["severity"] = with_severity.groupby("incident_id")["severity"].last().reindex(ids)
    # A string minimum would run in Python per group; the rank of each severity does not.
    rank_of = {severity: rank for rank, severity in enumerate(SEVERITIES)}
    ranks = with_severity["severity"].map(rank_of)
    highest = ranks.groupby(with_severity["incident_id"]).min()
    summary["max_severity"] = highest.map(dict(enumerate(SEVERITIES))).reindex(ids)

    summary["detected_at"] = _first(rows, rows["kind"] == str(Kind.DETECTED), ids)
    human_ack = (rows["kind"] == str(Kind.ACKNOWLEDGED)) & (rows["actor_kind"] == "human")
    summary["acknowledged_at"] = _first(rows, human_ack, ids)
    summary["contained_at"] = _first(life, rank >= STATUS_RANK[Kind.CONTAINED], ids)
    for column, least in (("resolved_at", 3), ("verified_at", 4), ("closed_at", 5)):
        # The milestone's own row counts first. A later stage reached without it (closed
        # with no resolve row) is used in its place.
        own = _first(life, newest & (rank == least), ids)
        reached = own.fillna(_first(life, newest & (rank >= least), ids))
        summary[column] = reached.where(summary["status_rank"] >= least)

    return summary.drop(columns="status_rank").reset_index()


def _first(rows: pd.DataFrame, mask: pd.Series, ids: pd.Index) -> pd.Series:
    chosen = rows[mask]
    return chosen.groupby("incident_id")["occurred_at"].min().reindex(ids)


def severity_changes(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the effective rows that set a severity, oldest first: the severity history."""
    rows = effective(frame)
    rows = rows[rows["severity"].notna()]
    return rows.sort_values(["incident_id", "occurred_at", "id"])[
        ["incident_id", "occurred_at", "severity"]]


def summarize_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return ``summarize``'s fields for one incident from its rows as dicts (times as
    aware datetimes, missing values None), without building a DataFrame.

    The engine calls this once per signal, where a DataFrame would cost more than the
    rows themselves.
    """
    superseded = {row["supersedes"] for row in rows if row["supersedes"] is not None}
    live = sorted((row for row in rows if row["id"] not in superseded
                   and row["kind"] != Kind.RETRACTION),
                  key=lambda row: (row["occurred_at"], row["id"]))

    episode: list[tuple[int, dict[str, Any]]] = []
    first: dict[str, Any] = {"detected": None, "acknowledged": None, "contained": None}
    severity = max_severity = None
    for row in live:
        kind = row["kind"]
        if row["severity"] is not None:
            severity = row["severity"]
            max_severity = min(max_severity or "P9", row["severity"])
        if kind == Kind.DETECTED and first["detected"] is None:
            first["detected"] = row["occurred_at"]
        human = row["actor_kind"] == "human"
        if kind == Kind.ACKNOWLEDGED and not human:
            continue
        if kind == Kind.ACKNOWLEDGED and first["acknowledged"] is None:
            first["acknowledged"] = row["occurred_at"]
        if kind not in STATUS_RANK:
            continue
        rank = STATUS_RANK[Kind(kind)]
        if rank >= STATUS_RANK[Kind.CONTAINED] and first["contained"] is None:
            first["contained"] = row["occurred_at"]
        if kind in RESET_KINDS:
            episode = []
        episode.append((rank, row))

    status_rank = max((rank for rank, _ in episode), default=0)
    summary = {"status": STATUS_NAMES[status_rank], "severity": severity,
               "max_severity": max_severity, "detected_at": first["detected"],
               "acknowledged_at": first["acknowledged"], "contained_at": first["contained"]}
    for column, least in (("resolved_at", 3), ("verified_at", 4), ("closed_at", 5)):
        own = [row["occurred_at"] for rank, row in episode if rank == least]
        reached = [row["occurred_at"] for rank, row in episode if rank >= least]
        summary[column] = None if status_rank < least else (own or reached)[0]
    return summary

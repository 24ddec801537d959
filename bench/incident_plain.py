"""The incident table and per-severity metrics in plain Python: the benchmark's baseline.

A straightforward loop over the rows that ``metrics.lifecycle_frame`` loads, fetched with
the standard ``sqlite3`` module from the same store, applying the same definitions as
``derive.summarize``, ``sla.evaluate`` and ``metrics.severity_metrics``:

- a row that another row supersedes, and every retraction row, does not count;
- the status is the highest status rank reached in the newest episode, where detected,
  reopened and unacknowledged rows start an episode. An agent's acknowledgement neither
  moves the status nor counts as acknowledged_at;
- acknowledged_at is the first human acknowledgement, and contained_at the first row of
  rank contained or higher. resolved_at, verified_at and closed_at are the first row of
  their own kind in the newest episode, else its first row of a later stage, and are set
  only while the status is at least that far;
- an incident whose detected row is marked ``detected_time_estimated`` (opened by a
  resolve without a start time, never corrected) counts, but stays out of the time
  statistics;
- an SLA deadline runs from detection. A stricter severity moves it to the earlier of the
  old deadline and the change plus the new target, and a looser one to the later of the
  old deadline and detection plus the looser target (or to no target). A deadline passed
  before a change stays breached, and a looser change after it leaves it where it was;
- medians and 90th percentiles interpolate linearly between ranks, as numpy does.

It shares no code with the product, only the SLA targets read from the same config.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
from collections import defaultdict

from tinysdlc_nb.incidents.sla import SlaPolicy

STATUS_RANK = {"detected": 0, "reopened": 0, "unacknowledged": 0, "acknowledged": 1,
               "contained": 2, "resolved": 3, "verified": 4, "closed": 5}
RESET_KINDS = ("detected", "reopened", "unacknowledged")
STATUS_NAMES = ("open", "acknowledged", "contained", "resolved", "verified", "closed")
SEVERITIES = ("P0", "P1", "P2", "P3")
DONE = ("resolved", "verified", "closed")
LOADED_KINDS = (*STATUS_RANK, "severity", "retraction")
MILESTONES = ("detected_at", "acknowledged_at", "contained_at", "resolved_at", "verified_at",
              "closed_at")

_WHERE = f"kind IN ({', '.join('?' * len(LOADED_KINDS))}) OR supersedes IS NOT NULL"
ROWS_SQL = ("SELECT id, incident_id, occurred_at, kind, actor_kind, severity, supersedes "
            f"FROM timeline WHERE {_WHERE}")
COUNT_SQL = f"SELECT count(*) FROM timeline WHERE {_WHERE}"
ESTIMATED_SQL = ("SELECT incident_id FROM timeline WHERE kind = 'detected' "
                 "AND details LIKE '%\"detected_time_estimated\": true%' AND id NOT IN "
                 "(SELECT supersedes FROM timeline WHERE supersedes IS NOT NULL)")


def compute(database: str, policy: SlaPolicy, now: dt.datetime) -> tuple[list[dict], list[dict]]:
    """Return the incident table (one dict per incident, by id) and the severity metrics."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute(ROWS_SQL, LOADED_KINDS).fetchall()
        names = {row[0]: row[1:] for row in
                 connection.execute("SELECT id, title, service, source FROM incidents")}
        estimated = {row[0] for row in connection.execute(ESTIMATED_SQL)}

    superseded = {row[6] for row in rows if row[6] is not None}
    by_incident: dict[int, list[tuple]] = defaultdict(list)
    for row_id, incident_id, occurred, kind, actor_kind, severity, _ in rows:
        if row_id in superseded or kind == "retraction":
            # The incident stays listed even when none of its loaded rows count.
            by_incident.setdefault(incident_id, [])
            continue
        at = dt.datetime.fromisoformat(occurred).replace(tzinfo=dt.UTC)
        by_incident[incident_id].append((at, row_id, kind, actor_kind, severity))

    table = []
    for incident_id in sorted(by_incident):
        if incident_id not in names:
            continue
        history = sorted(by_incident[incident_id])
        entry = {"incident_id": incident_id, "title": names[incident_id][0],
                 "service": names[incident_id][1], "source": names[incident_id][2],
                 "detected_estimated": incident_id in estimated}
        entry.update(summarize(history))
        entry.update(evaluate(entry, history, policy, now))
        table.append(entry)
    return table, severity_metrics(table)


def summarize(history: list[tuple]) -> dict:
    """Return status, severities and milestones of one incident's effective rows, in order."""
    severities = [row[4] for row in history if row[4] is not None]
    life = [row for row in history if row[2] in STATUS_RANK
            and not (row[2] == "acknowledged" and row[3] != "human")]
    episode_start = 0
    for index, row in enumerate(life):
        if row[2] in RESET_KINDS:
            episode_start = index
    newest = life[episode_start:] if any(row[2] in RESET_KINDS for row in life) else life
    rank = max((STATUS_RANK[row[2]] for row in newest), default=0)

    summary = {
        "status": STATUS_NAMES[rank],
        "severity": severities[-1] if severities else None,
        "max_severity": min(severities) if severities else None,
        "detected_at": _first(row[0] for row in history if row[2] == "detected"),
        "acknowledged_at": _first(row[0] for row in history
                                  if row[2] == "acknowledged" and row[3] == "human"),
        "contained_at": _first(row[0] for row in life if STATUS_RANK[row[2]] >= 2),
    }
    for column, least in (("resolved_at", 3), ("verified_at", 4), ("closed_at", 5)):
        reached = _first(row[0] for row in newest if STATUS_RANK[row[2]] == least)
        if reached is None:
            reached = _first(row[0] for row in newest if STATUS_RANK[row[2]] >= least)
        summary[column] = reached if rank >= least else None
    return summary


def evaluate(entry: dict, history: list[tuple], policy: SlaPolicy, now: dt.datetime) -> dict:
    """Return the due time and SLA status of each target for one summarised incident."""
    changes = [(row[0], row[4]) for row in history if row[4] is not None]
    initial = changes[0][1] if changes else entry["severity"]
    detected = entry["detected_at"]
    result = {}
    for name, milestone in (("acknowledge", "acknowledged_at"), ("resolve", "resolved_at")):
        met_at = entry[milestone]
        if name == "acknowledge" and met_at is None:
            met_at = entry["resolved_at"]
        due = deadline(policy, initial, name, detected)
        breached_early = False
        if len(changes) > 1:
            due, breached_early = walk(policy, changes, detected, met_at, name)
        result[f"{name}_due"] = due
        result[f"{name}_sla"] = sla_status(detected, due, met_at, breached_early,
                                           policy.at_risk_fraction, now)
    return result


def deadline(policy: SlaPolicy, severity: str | None, name: str,
             start: dt.datetime | None) -> dt.datetime | None:
    target = policy.targets.get((severity, name)) if severity is not None else None
    if target is None or start is None:
        return None
    if isinstance(target, str):
        sprints_done = (start - policy.sprint_start) // policy.sprint
        return policy.sprint_start + (sprints_done + 2) * policy.sprint
    return start + dt.timedelta(seconds=target)


def walk(policy: SlaPolicy, changes: list[tuple], detected: dt.datetime,
         met_at: dt.datetime | None, name: str) -> tuple[dt.datetime | None, bool]:
    current = changes[0][1]
    due = deadline(policy, current, name, detected)
    breached = False
    for at, severity in changes[1:]:
        if met_at is not None and met_at <= at:
            break
        if due is not None and at > due:
            breached = True
        if SEVERITIES.index(severity) < SEVERITIES.index(current):
            new_due = deadline(policy, severity, name, at)
            if due is None or (new_due is not None and new_due < due):
                due = new_due
        elif severity != current and not breached:
            looser = deadline(policy, severity, name, detected)
            due = looser if due is None or looser is None else max(due, looser)
        current = severity
    return due, breached


def sla_status(start: dt.datetime, due: dt.datetime | None, met_at: dt.datetime | None,
               breached_early: bool, fraction: float, now: dt.datetime) -> str | None:
    if due is None:
        return None
    met = met_at is not None
    if (met and met_at > due) or (not met and now > due) or breached_early:
        return "breached"
    if met:
        return "met"
    if now >= start + (due - start) * fraction:
        return "at risk"
    return "on track"


def severity_metrics(table: list[dict]) -> list[dict]:
    """Return count, open, TTA/TTC/TTR statistics (seconds) and SLA breaches per severity."""
    groups: dict[str, list[dict]] = {severity: [] for severity in SEVERITIES}
    for entry in table:
        if entry["severity"] is not None:
            groups[entry["severity"]].append(entry)

    result = []
    for severity, entries in groups.items():
        tta = _durations(entries, "acknowledged_at")
        ttc = _durations(entries, "contained_at")
        ttr = _durations(entries, "resolved_at")
        result.append({
            "severity": severity,
            "count": len(entries),
            "open": sum(entry["status"] not in DONE for entry in entries),
            "tta_median_s": quantile(tta, 0.5),
            "tta_p90_s": quantile(tta, 0.9),
            "ttc_median_s": quantile(ttc, 0.5),
            "ttr_median_s": quantile(ttr, 0.5),
            "ttr_p90_s": quantile(ttr, 0.9),
            "sla_breaches": sum("breached" in (entry["acknowledge_sla"], entry["resolve_sla"])
                                for entry in entries),
        })
    return result


def quantile(values: list[float], fraction: float) -> float:
    """Return the linearly interpolated quantile, NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower = math.floor(position)
    if lower + 1 >= len(ordered):
        return ordered[lower]
    if fraction == 0.5 and len(ordered) % 2 == 0:
        return (ordered[lower] + ordered[lower + 1]) / 2
    return ordered[lower] + (position - lower) * (ordered[lower + 1] - ordered[lower])


def _durations(entries: list[dict], milestone: str) -> list[float]:
    return [(entry[milestone] - entry["detected_at"]).total_seconds() for entry in entries
            if entry[milestone] is not None and entry["detected_at"] is not None
            and not entry["detected_estimated"]]


def _first(times) -> dt.datetime | None:
    return min(times, default=None)

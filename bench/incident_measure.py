"""Compute the incident metrics one way and print what it cost as one JSON object on stdout.

``run.py`` starts this script in a fresh process for each side and round, so the peak RSS
read here belongs to that side alone. It is read from ``/proc/self/status`` (VmHWM)
because ``ru_maxrss`` of a child that ``subprocess`` starts reported the parent's larger
peak instead. The computed table and metrics go to OUT as JSON with times in integer
microseconds, so that the sides can be compared value by value.

Usage: ``python bench/incident_measure.py pandas|plain|breakdown DATABASE OUT``
"""

from __future__ import annotations

import cProfile
import datetime as dt
import json
import math
import pstats
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path

import incident_history
import incident_plain
import measure
import pandas as pd

from tinysdlc_nb.incidents import metrics
from tinysdlc_nb.incidents.derive import severity_changes, summarize
from tinysdlc_nb.incidents.settings import SLA_SECTION, validate_sla
from tinysdlc_nb.incidents.sla import SlaPolicy, evaluate
from tinysdlc_nb.store import open_store

NOW = incident_history.NOW
# The default SLA has no resolve targets; these give every severity one, so that the
# resolve column is computed too. P3 uses the "next sprint" rule.
SLA = {"p0_resolve": "4h", "p1_resolve": "1d", "p2_resolve": "3d", "p3_resolve": "next-sprint"}
TABLE_COLUMNS = ("incident_id", "title", "service", "source", "status", "severity",
                 "max_severity", *incident_plain.MILESTONES, "detected_estimated",
                 "acknowledge_due", "acknowledge_sla", "resolve_due", "resolve_sla")
METRIC_COLUMNS = metrics.METRIC_COLUMNS
LIFECYCLE_STEP = "lifecycle_frame (fetch through SQLAlchemy and pandas)"
FAST_FETCH_STEP = "fetch with sqlite3 and one pd.to_datetime"
# Functions whose cumulative time the profile of the pandas side reports.
PROFILED = ("read_sql", "to_datetime", "summarize", "severity_changes", "evaluate", "_walk",
            "deadlines", "merge", "severity_metrics")


def policy() -> SlaPolicy:
    return SlaPolicy.from_config(validate_sla({**SLA_SECTION.defaults(), **SLA}, "bench"))


def main(argv: list[str]) -> int:
    side, database, out = argv
    sla = policy()
    if side == "breakdown":
        print(json.dumps(breakdown(database, sla, Path(out))))
        return 0

    store = open_store(f"sqlite:///{database}") if side == "pandas" else None
    measure.wait_for_quiet_machine()
    peak_reset = _reset_peak_rss()
    rss_before_kib = _status_kib("VmRSS")
    busy_before = measure.machine_busy_s()
    cpu_before = time.process_time()
    started = time.perf_counter()
    if side == "pandas":
        table = metrics.incident_table(store, sla, now=NOW)
        result = metrics.severity_metrics(table)
    else:
        table, result = incident_plain.compute(database, sla, NOW)
    wall_s = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_before
    busy_s = measure.machine_busy_s() - busy_before
    peak_kib = _status_kib("VmHWM")

    canonical = canonical_pandas(table, result) if side == "pandas" else \
        canonical_plain(table, result)
    Path(out).write_text(json.dumps(canonical), encoding="utf-8")
    statuses = Counter(row[TABLE_COLUMNS.index("status")] for row in canonical["table"])
    print(json.dumps({"side": side, "wall_s": wall_s, "cpu_s": cpu_s, "statuses": statuses,
                      "other_cpu_s": max(busy_s - cpu_s, 0.0),
                      "rss_before_kib": rss_before_kib, "peak_rss_kib": peak_kib,
                      "peak_reset": peak_reset,
                      "incidents": len(canonical["table"])}))
    return 0


def breakdown(database: str, sla: SlaPolicy, out: Path) -> dict:
    """Time each step of the pandas side, profile it once, and time a faster fetch.

    The faster fetch reads the same rows with ``sqlite3`` and parses their times with one
    vectorised ``pd.to_datetime``. Its result goes to OUT, to be compared with the product's.
    """
    store = open_store(f"sqlite:///{database}")
    steps: dict[str, float] = {}
    measure.wait_for_quiet_machine()

    with _timed(steps, LIFECYCLE_STEP):
        rows = metrics.lifecycle_frame(store)
    with _timed(steps, "derive.summarize"):
        summary = summarize(rows)
    with _timed(steps, "derive.severity_changes"):
        changes = severity_changes(rows)
    with _timed(steps, "sla.evaluate"):
        evaluated = evaluate(summary, changes, sla, NOW)
    with _timed(steps, "incident_table on the loaded rows (the three above, titles, merge)"):
        table = metrics.incident_table(store, sla, now=NOW, rows=rows)
    with _timed(steps, "severity_metrics"):
        result = metrics.severity_metrics(table)

    fast: dict[str, float] = {}
    with sqlite3.connect(database) as connection:
        with _timed(fast, "SQLite's scan alone (SELECT count(*) with the same WHERE)"):
            connection.execute(incident_plain.COUNT_SQL, incident_plain.LOADED_KINDS).fetchone()
        with _timed(fast, "the same rows as Python tuples (sqlite3 fetchall)"):
            connection.execute(incident_plain.ROWS_SQL, incident_plain.LOADED_KINDS).fetchall()
    with _timed(fast, FAST_FETCH_STEP):
        fast_rows = fetch_with_sqlite3(database)
    with _timed(fast, "incident_table and severity_metrics on those rows"):
        fast_table = metrics.incident_table(store, sla, now=NOW, rows=fast_rows)
        fast_result = metrics.severity_metrics(fast_table)
    out.write_text(json.dumps(canonical_pandas(fast_table, fast_result)), encoding="utf-8")

    profile = cProfile.Profile()
    profile.enable()
    metrics.severity_metrics(metrics.incident_table(store, sla, now=NOW))
    profile.disable()

    return {"side": "breakdown", "rows_loaded": len(rows), "incidents": len(evaluated),
            "steps": steps, "fast_fetch": fast, "profile": profiled(profile),
            "product_equals_fast": canonical_pandas(table, result)
            == canonical_pandas(fast_table, fast_result)}


def fetch_with_sqlite3(database: str) -> pd.DataFrame:
    """Load the rows ``metrics.lifecycle_frame`` loads, with the same columns and types."""
    with sqlite3.connect(database) as connection:
        cursor = connection.execute(incident_plain.ROWS_SQL, incident_plain.LOADED_KINDS)
        frame = pd.DataFrame.from_records(cursor.fetchall(), columns=[
            "id", "incident_id", "occurred_at", "kind", "actor_kind", "severity",
            "supersedes"])
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True, format="ISO8601")
    return frame


def profiled(profile: cProfile.Profile) -> dict[str, float]:
    """Return the cumulative seconds of each PROFILED function, the largest entry per name."""
    stats = pstats.Stats(profile).stats
    found: dict[str, float] = {"total": max(entry[3] for entry in stats.values())}
    for (path, _line, name), (_calls, _recursive, _own, cumulative, _callers) in stats.items():
        if name in PROFILED and ("pandas" in path or "tinysdlc_nb" in path):
            found[name] = max(found.get(name, 0.0), cumulative)
    return found


def canonical_pandas(table: pd.DataFrame, result: pd.DataFrame) -> dict:
    rows = [[_value(row[column]) for column in TABLE_COLUMNS]
            for row in table.to_dict("records")]
    stats = [[_value(row[column]) for column in METRIC_COLUMNS]
             for row in result.to_dict("records")]
    return {"table": rows, "metrics": stats}


def canonical_plain(table: list[dict], result: list[dict]) -> dict:
    rows = [[_value(entry[column]) for column in TABLE_COLUMNS] for entry in table]
    stats = [[_value(entry[column]) for column in METRIC_COLUMNS] for entry in result]
    return {"table": rows, "metrics": stats}


def _value(value):
    """Return a JSON value: times as integer microseconds since the epoch, no NaN or NaT."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.value // 1000
    if isinstance(value, dt.datetime):
        return (value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


class _timed:
    def __init__(self, into: dict[str, float], name: str):
        self.into, self.name = into, name

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *_exc) -> None:
        self.into[self.name] = time.perf_counter() - self.started


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux 4.0 and later), so the peak is the call's own."""
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field} line; this benchmark needs Linux")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

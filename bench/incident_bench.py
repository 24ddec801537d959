"""Run the incident benchmarks: metrics over a generated history, and payload ingestion.

The metrics sides run in child processes (``incident_measure.py``), alternating within
every round. Their results are compared value by value before any ratio is reported.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import incident_history
import incident_ingest

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
METRIC_SIDES = ("pandas", "plain")
# Floats may differ in the last bits: pandas and the loop round durations and
# interpolations in a different order. Everything else must be identical.
REL_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Sizes:
    incidents: int = 50_000
    rows: int = 1_000_000
    payloads: int = 1_000
    stdin_payloads: int = 30
    clients: int = 4


class ResultsDiffer(RuntimeError):
    """The pandas side and the plain Python side computed different results."""


def run(rounds: int, sizes: Sizes) -> dict:
    """Run both incident benchmarks and return every measurement."""
    with tempfile.TemporaryDirectory(prefix="bench-incidents-") as work:
        work_path = Path(work)
        metrics = run_metrics(work_path, rounds, sizes)
        ingestion = run_ingestion(work_path, rounds, sizes)
    return {"sizes": sizes.__dict__, "metrics": metrics, "ingestion": ingestion}


def run_metrics(work: Path, rounds: int, sizes: Sizes) -> dict:
    database = work / "history.db"
    log.info("generating %d timeline rows for %d incidents in %s", sizes.rows,
             sizes.incidents, database)
    started = time.perf_counter()
    generated = incident_history.generate(database, sizes.incidents, sizes.rows)
    generated["seconds"] = time.perf_counter() - started
    generated.update(history_counts(database))

    runs: dict[str, list[dict]] = {side: [] for side in METRIC_SIDES}
    outputs: dict[str, Path] = {}
    for number in range(1, rounds + 1):
        for side in METRIC_SIDES:
            log.info("metrics round %d of %d: %s", number, rounds, side)
            outputs[side] = work / f"{side}-{number}.json"
            measured = _child(side, database, outputs[side])
            log.info("%s: %.2f s wall, %.2f s CPU, peak RSS %.0f MiB", side,
                     measured["wall_s"], measured["cpu_s"], measured["peak_rss_kib"] / 1024)
            runs[side].append(measured)
        comparison = compare(outputs["pandas"], outputs["plain"])

    log.info("metrics: timing the steps of the pandas side")
    breakdown = _child("breakdown", database, work / "fast.json")
    comparison["fast_fetch_equal"] = compare(outputs["pandas"], work / "fast.json")["equal"]
    return {"history": generated, "runs": runs, "comparison": comparison,
            "breakdown": breakdown}


def run_ingestion(work: Path, rounds: int, sizes: Sizes) -> dict:
    payloads = incident_ingest.write_payloads(work / "payloads", sizes.payloads, seed=1)
    sizes_bytes = [path.stat().st_size for path in payloads]
    ways = {
        "cli_files": lambda folder: incident_ingest.bench_cli_files(folder, payloads),
        "cli_stdin": lambda folder: incident_ingest.bench_cli_stdin(
            folder, payloads[:sizes.stdin_payloads]),
        "serve_sequential": lambda folder: incident_ingest.bench_serve(folder, payloads, 1),
        "serve_concurrent": lambda folder: incident_ingest.bench_serve(folder, payloads,
                                                                       sizes.clients),
    }
    runs: dict[str, list[dict]] = {way: [] for way in ways}
    for number in range(1, rounds + 1):
        for way, bench in ways.items():
            log.info("ingestion round %d of %d: %s", number, rounds, way)
            measured = bench(work / f"round-{number}")
            log.info("%s: %d payloads in %.1f s, %.1f payloads/s", way, measured["payloads"],
                     measured["wall_s"], measured["payloads_per_s"])
            runs[way].append(measured)
    return {"runs": runs, "payload_bytes": {"min": min(sizes_bytes), "max": max(sizes_bytes),
                                            "mean": sum(sizes_bytes) / len(sizes_bytes)},
            "alerts": sum(len(json.loads(path.read_bytes())["alerts"]) for path in payloads)}


def compare(first: Path, second: Path) -> dict:
    """Compare two canonical results; raise ResultsDiffer naming the first difference."""
    left = json.loads(first.read_text(encoding="utf-8"))
    right = json.loads(second.read_text(encoding="utf-8"))
    if len(left["table"]) != len(right["table"]):
        raise ResultsDiffer(f"{first.name} has {len(left['table'])} incidents, "
                            f"{second.name} {len(right['table'])}")

    largest = 0.0
    for part in ("table", "metrics"):
        for row, (mine, theirs) in enumerate(zip(left[part], right[part], strict=True)):
            for column, (a, b) in enumerate(zip(mine, theirs, strict=True)):
                largest = max(largest, _difference(a, b, f"{part} row {row} column {column}",
                                                   first, second))
    return {"equal": True, "incidents": len(left["table"]), "metric_rows": len(left["metrics"]),
            "values_compared": sum(len(row) for part in ("table", "metrics")
                                   for row in left[part]),
            "largest_relative_difference": largest}


def _difference(a, b, where: str, first: Path, second: Path) -> float:
    """Return the relative difference of two equal values; raise ResultsDiffer otherwise.

    Only floats may differ, within REL_TOLERANCE; integers (counts, times in
    microseconds), strings and None must be identical.
    """
    if a == b:
        return 0.0
    floats = isinstance(a, float) or isinstance(b, float)
    numbers = all(isinstance(value, int | float) and not isinstance(value, bool)
                  for value in (a, b))
    if floats and numbers and math.isclose(a, b, rel_tol=REL_TOLERANCE):
        return abs(a - b) / max(abs(a), abs(b))
    raise ResultsDiffer(f"{where}: {first.name} has {a!r}, {second.name} has {b!r}")


def history_counts(database: Path) -> dict:
    """Return rows per kind, agent acknowledgements, corrections and estimated detections."""
    with sqlite3.connect(database) as connection:
        kinds = dict(connection.execute(
            "SELECT kind, count(*) FROM timeline GROUP BY kind ORDER BY count(*) DESC"))
        agent_acks = connection.execute(
            "SELECT count(*) FROM timeline WHERE kind = 'acknowledged' "
            "AND actor_kind = 'agent'").fetchone()[0]
        corrections = dict(connection.execute(
            "SELECT kind, count(*) FROM timeline WHERE supersedes IS NOT NULL "
            "AND kind != 'retraction' GROUP BY kind"))
        estimated = connection.execute(
            "SELECT count(*) FROM timeline WHERE details LIKE "
            "'%\"detected_time_estimated\": true%'").fetchone()[0]
    return {"kinds": kinds, "agent_acknowledgements": agent_acks, "corrections": corrections,
            "estimated_detections": estimated}


def _child(side: str, database: Path, out: Path) -> dict:
    completed = subprocess.run(
        [sys.executable, str(HERE / "incident_measure.py"), side, str(database), str(out)],
        stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(completed.stdout)

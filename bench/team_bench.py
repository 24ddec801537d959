"""Run the team messaging benchmark: the queue against a folder queue, and the tag parser.

Both queues run in this one command, part by part: tinysdlc-nb's SQLite queue first,
then the folder baseline, each on a new project or folder (``team_queue.py``). The
parser and its regex baseline run over one generated corpus (``team_parse.py``). Then
the worker loop runs once under cProfile, to show where its time goes.
"""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import measure
import team_parse
import team_queue

from tinysdlc_nb.team.options import TEAM_SECTION

log = logging.getLogger(__name__)

SIDES = tuple(team_queue.SIDES)


@dataclass(frozen=True)
class Sizes:
    """How much each part measures; ``bench/run.py --team-messages`` sets ``messages``.

    NOTE: one round takes about three minutes on an idle two-core machine. When other
    processes keep the CPU busy, the worker slows down and a round can take twice as
    long; ``--team-messages 1000`` shortens it.
    """

    messages: int = 5_000
    latency_messages: int = 200
    latency_interval_s: float = 0.02
    slow_messages: int = 50
    slow_interval_s: float = 0.1
    profile_messages: int = 300
    parse_passes: int = 5


def run(rounds: int, sizes: Sizes) -> dict:
    """Run every part ``rounds`` times and return the raw measurements."""
    for name in team_queue.ISOLATED_ENV:
        os.environ.pop(name, None)
    # Every new store logs its migrations at INFO; they would bury the progress lines.
    for name in ("alembic", "tinysdlc_nb.store"):
        logging.getLogger(name).setLevel(logging.WARNING)

    queue: dict[str, dict[str, list[dict]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-team-") as work:
        work_path = Path(work)
        sqlite_settings = _sqlite_settings(work_path / "settings-probe")
        for number in range(1, rounds + 1):
            for part, call in _parts(sizes).items():
                for side in SIDES:
                    folder = work_path / f"{number}-{part}-{side}"
                    folder.mkdir()
                    log.info("team round %d of %d: %s, %s", number, rounds, part, side)
                    measured = _measured(side, folder, call)
                    queue.setdefault(part, {}).setdefault(side, []).append(measured)
                    log.info("  %s", _summary(part, measured))

        profiles = {}
        for name in ("ours", "ours_batch"):
            log.info("team: profiling the worker loop (%s) over %d messages", name,
                     sizes.profile_messages)
            profile_folder = work_path / f"profile-{name}"
            profile_folder.mkdir()
            profiles[name] = team_queue.profile_ours(team_queue.SIDES[name], profile_folder,
                                                     sizes.profile_messages)

    log.info("team: timing the tag parser and the regex baseline")
    parse = team_parse.run(sizes.parse_passes)
    return {"sizes": sizes.__dict__, "rounds": rounds, "queue": queue, "profiles": profiles,
            "parse": parse, "sqlite": sqlite_settings,
            "poll_interval_s": _poll_interval_s()}


def _parts(sizes: Sizes) -> dict:
    return {
        "latency": lambda side, log_path: team_queue.measure_latency(
            side, log_path, sizes.latency_messages, sizes.latency_interval_s),
        "slow_latency": lambda side, log_path: team_queue.measure_latency(
            side, log_path, sizes.slow_messages, sizes.slow_interval_s),
        "drain": lambda side, log_path: team_queue.measure_drain(side, log_path,
                                                                 sizes.messages),
        "concurrent": lambda side, log_path: team_queue.measure_concurrent(
            side, log_path, sizes.messages),
    }


def _measured(side_name: str, folder: Path, call) -> dict:
    """Run one part for one side; add the CPU time other processes used meanwhile."""
    side = team_queue.SIDES[side_name](folder)
    busy_before = measure.machine_busy_s()
    own_before = time.process_time()
    try:
        measured = call(side, folder / "hand-overs.log")
    finally:
        side.close()
    own_cpu = time.process_time() - own_before
    measured["producer_cpu_s"] = own_cpu
    measured["other_cpu_s"] = max(0.0, measure.machine_busy_s() - busy_before - own_cpu
                                  - measured["consumer_process_cpu_s"])
    return measured


def _summary(part: str, measured: dict) -> str:
    if "latency_ms" in measured:
        return (f"latency median {statistics.median(measured['latency_ms']):.1f} ms, "
                f"p99 {percentile(measured['latency_ms'], 99):.1f} ms")
    return f"{measured['per_s']:.0f} messages/s over {measured['count']} messages"


def percentile(values: list[float], percent: float) -> float:
    """Return the ``percent`` percentile with linear interpolation between ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * percent / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _sqlite_settings(folder: Path) -> dict:
    folder.mkdir()
    side = team_queue.OursSide(folder)
    try:
        return team_queue.sqlite_settings(side)
    finally:
        side.close()


def _poll_interval_s() -> float:
    return TEAM_SECTION.defaults()["poll_interval_s"]

"""Run the scheduler benchmark: start lateness of 100 second-level jobs, and idle CPU.

Lateness: 100 jobs with 6-field cron expressions (every 5 to 30 seconds, spread over the
minute) run for two minutes through ``Scheduler.run_forever`` on a SQLite store, with an
in-process runner that records when each run really started. The baseline is a heap of
the same cron expressions with ``time.sleep`` until the earliest one, which has no store,
no claims and no records. Both sides run one after the other in this process, and each
start's lateness is its real start minus the time the cron expression gave.

Idle CPU: a ``tinysdlc-nb scheduler`` process with 100 schedules that are not due during
the measurement, against a Python process that wakes once per poll interval and does
nothing. The CPU time each process used (psutil) over the same wall time gives its share
of one core.
"""

from __future__ import annotations

import datetime as dt
import heapq
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from tinysdlc_nb.config import load_config
from tinysdlc_nb.schedules.cron import parse_cron
from tinysdlc_nb.schedules.inprocess import RecordingRunner
from tinysdlc_nb.schedules.model import ScheduleSpec
from tinysdlc_nb.schedules.records import add_schedule
from tinysdlc_nb.schedules.scheduler import Scheduler
from tinysdlc_nb.store import open_store, utc_now

log = logging.getLogger(__name__)

JOBS = 100
DURATION_S = 120.0
IDLE_S = 60.0
IDLE_WARMUP_S = 5.0
PERIODS_S = (5, 10, 15, 20, 30)
CLI = Path(sys.executable).parent / "tinysdlc-nb"
ISOLATED_ENV = ("TINYSDLC_NB_HOME", "TINYSDLC_NB_DATABASE_URL", "TINYSDLC_NB_SETTINGS")
IDLE_BASELINE = "import time\nwhile True:\n    time.sleep({poll})\n"


def cron_expressions(jobs: int = JOBS) -> list[str]:
    """Second-level expressions: job i fires every PERIODS_S[i % 5] s, at its own offset."""
    expressions = []
    for index in range(jobs):
        period = PERIODS_S[index % len(PERIODS_S)]
        expressions.append(f"{index % period}-59/{period} * * * * *")
    return expressions


def run(duration_s: float = DURATION_S, idle_s: float = IDLE_S, jobs: int = JOBS) -> dict:
    """Run every side once and return their raw figures."""
    expressions = cron_expressions(jobs)
    data = {"jobs": jobs, "duration_s": duration_s, "idle_s": idle_s,
            "expressions": sorted(set(expressions)), "machine_cpus": os.cpu_count()}
    log.info("baseline: heap of %d cron expressions for %gs", jobs, duration_s)
    data["baseline"] = heap_side(expressions, duration_s)
    log.info("scheduler: %d schedules through Scheduler.run_forever for %gs", jobs, duration_s)
    data["scheduler"] = scheduler_side(expressions, duration_s)
    log.info("idle CPU: tinysdlc-nb scheduler and a sleeping loop for %gs each", idle_s)
    data["idle"] = idle_sides(jobs, idle_s)
    return data


def heap_side(expressions: list[str], duration_s: float) -> dict:
    """Sleep until the earliest fire of any expression, record the start, repeat."""
    crons = [parse_cron(expression, "UTC") for expression in expressions]
    started = utc_now()
    end = started + dt.timedelta(seconds=duration_s)
    heap = [(cron.next_after(started), index) for index, cron in enumerate(crons)]
    heapq.heapify(heap)
    lateness = []
    cpu_before, wall_before = time.process_time(), time.monotonic()

    while heap[0][0] <= end:
        due, index = heapq.heappop(heap)
        wait = (due - utc_now()).total_seconds()
        if wait > 0:
            time.sleep(wait)
        lateness.append((utc_now() - due).total_seconds())
        heapq.heappush(heap, (crons[index].next_after(due), index))

    return {"lateness_s": lateness, "expected": len(lateness), "not_started": 0,
            "cpu_s": time.process_time() - cpu_before,
            "wall_s": time.monotonic() - wall_before}


def scheduler_side(expressions: list[str], duration_s: float) -> dict:
    """Run the real Scheduler with an in-process runner over a fresh SQLite store."""
    with tempfile.TemporaryDirectory(prefix="tinysdlc-sched-bench-") as folder:
        project = Path(folder)
        home = project / ".tinysdlc"
        home.mkdir()
        (home / "config.toml").write_text("[scheduler]\nmax_parallel = 500\n"
                                          "poll_interval_s = 1.0\n", encoding="utf-8")
        config = load_config(project)
        store = open_store(config.database_url)
        store.relax_durability()  # as the `scheduler` command does
        try:
            for index, expression in enumerate(expressions):
                add_schedule(store, ScheduleSpec(
                    name=f"job-{index:03d}", kind="notebook", target="heartbeat",
                    cron=expression, project=str(project), created_by="bench"))
            started = _restart_schedules(store, expressions)
            runner = RecordingRunner()
            scheduler = Scheduler(config, store, runner=runner, scheduler_id="bench")
            stopped: list[dt.datetime] = []

            def stop() -> None:
                stopped.append(utc_now())
                scheduler.stop("benchmark over")

            stopper = threading.Timer(duration_s, stop)
            cpu_before, wall_before = time.process_time(), time.monotonic()
            stopper.start()
            scheduler.run_forever()
            cpu_s, wall_s = time.process_time() - cpu_before, time.monotonic() - wall_before
            statuses = _statuses(store)
        finally:
            store.close()

    # Fires due up to one second before the stop must all have started by then.
    end = stopped[0] - dt.timedelta(seconds=1)
    expected = {(f"job-{index:03d}", moment) for index, expression in enumerate(expressions)
                for moment in _fires_between(parse_cron(expression, "UTC"), started, end)}
    starts = {(start.schedule_name, start.scheduled_for) for start in runner.starts}
    lateness = [start.lateness_s for start in runner.starts if start.lateness_s is not None]
    return {"lateness_s": lateness, "expected": len(expected),
            "not_started": len(expected - starts), "cpu_s": cpu_s, "wall_s": wall_s,
            "statuses": statuses}


def idle_sides(jobs: int, idle_s: float) -> dict:
    """CPU share of an idle ``tinysdlc-nb scheduler`` and of a loop sleeping as long."""
    with tempfile.TemporaryDirectory(prefix="tinysdlc-idle-bench-") as folder:
        project = Path(folder)
        env = {key: value for key, value in os.environ.items() if key not in ISOLATED_ENV}
        config = load_config(project)
        store = open_store(config.database_url)
        try:
            for index in range(jobs):
                add_schedule(store, ScheduleSpec(
                    name=f"idle-{index:03d}", kind="notebook", target="heartbeat",
                    cron="0 0 1 1 *", project=str(project), created_by="bench"))
        finally:
            store.close()
        poll = config.scheduler["poll_interval_s"]
        scheduler = _cpu_share([str(CLI), "scheduler", "--project", str(project)], env,
                               project, idle_s)
        baseline = _cpu_share([sys.executable, "-c", IDLE_BASELINE.format(poll=poll)], env,
                              project, idle_s)
    return {"scheduler": scheduler, "sleep_loop": baseline, "poll_interval_s": poll}


def _cpu_share(command: list[str], env: dict, cwd: Path, seconds: float) -> dict:
    """Start ``command``, skip its start-up, then measure its CPU time over ``seconds``."""
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        time.sleep(IDLE_WARMUP_S)
        watched = psutil.Process(process.pid)
        before, wall_before = watched.cpu_times(), time.monotonic()
        time.sleep(seconds)
        after, wall_after = watched.cpu_times(), time.monotonic()
        running = process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=60)
    cpu_s = (after.user - before.user) + (after.system - before.system)
    return {"cpu_s": cpu_s, "wall_s": wall_after - wall_before, "alive": running,
            "share": cpu_s / (wall_after - wall_before)}


def _restart_schedules(store, expressions: list[str]) -> dt.datetime:
    """Point every schedule at its first fire after now, so adding them costs no lateness."""
    from sqlalchemy import update

    from tinysdlc_nb.store.schema import schedules

    started = utc_now()
    with store.begin() as connection:
        for index, expression in enumerate(expressions):
            connection.execute(update(schedules).where(schedules.c.name == f"job-{index:03d}")
                               .values(next_run_at=parse_cron(expression, "UTC")
                                       .next_after(started)))
    return started


def _fires_between(cron, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    moments, moment = [], cron.next_after(start)
    while moment <= end:
        moments.append(moment)
        moment = cron.next_after(moment)
    return moments


def _statuses(store) -> dict[str, int]:
    from sqlalchemy import func, select

    from tinysdlc_nb.store.schema import schedule_runs

    with store.begin() as connection:
        rows = connection.execute(select(schedule_runs.c.status, func.count())
                                  .group_by(schedule_runs.c.status)).all()
    return {status: count for status, count in rows}

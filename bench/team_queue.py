"""Measure the message queue: tinysdlc-nb's SQLite queue against a folder of JSON files.

Each measurement starts on a new project (ours) or a new queue folder (the baseline),
with one consumer process (``team_worker.py``) whose agent replies at once and logs the
time of every hand-over. The producer is this process.

- Latency: messages enqueued one at a time at a steady pace to a waiting consumer.
  The latency of a message runs from the start of its enqueue call to the agent's
  hand-over time.
- Drain: N messages queued first (ours in one transaction), then a consumer started
  with ``--once``; the rate runs from the consumer's loop start to the last reply stored.
- Concurrent: a consumer already waiting, and N messages enqueued as fast as the
  producer can; the rate runs from the first enqueue to the last reply stored.
"""

from __future__ import annotations

import json
import logging
import os
import pstats
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import folder_queue
from sqlalchemy import func, select

from tinysdlc_nb.config import load_config
from tinysdlc_nb.store import as_utc, open_store
from tinysdlc_nb.store.schema import team_messages
from tinysdlc_nb.team.agents import register_provider
from tinysdlc_nb.team.conversations import insert_conversation, start_conversation
from tinysdlc_nb.team.model import HUMAN
from tinysdlc_nb.team.routing import route_user_message
from tinysdlc_nb.team.settings import load_team_settings

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
WORKER_SCRIPT = HERE / "team_worker.py"
PROVIDER = "instant"
AGENT = "devops"
# Variables that would point the benchmark's processes at another store or settings file.
ISOLATED_ENV = ("TINYSDLC_NB_HOME", "TINYSDLC_NB_DATABASE_URL", "TINYSDLC_NB_SETTINGS")
WAIT_TIMEOUT_S = 300.0
# The idle consumer settles into its polling loop before the latency run starts.
SETTLE_S = 0.5

# The batch size the shipped offline agent (protocol) declares, used by the batch side.
BATCH_SIZE = 16


class OursSide:
    """tinysdlc-nb's queue on a new project: the CLI's routing and ``start_conversation``.

    The agent's ``batch_size`` is 1, so the worker claims one message at a time, as it
    does for the anthropic agent, which declares no batch size.
    """

    name = "ours"
    kind = "ours"
    options: tuple[str, ...] = ()

    def __init__(self, folder: Path):
        self.root = folder / "project"
        home = self.root / ".tinysdlc"
        home.mkdir(parents=True)
        (home / "settings.json").write_text(json.dumps({"agents": {
            AGENT: {"name": "DevOps", "provider": PROVIDER}}}), encoding="utf-8")
        # This process only reads the settings; the consumer process runs the agent.
        register_provider(PROVIDER, lambda _context: None)
        self.config = load_config(self.root)
        self.settings = load_team_settings(self.config.home)
        self.store = open_store(self.config.database_url)

    def enqueue(self, sequence: int) -> int:
        text = f"@{AGENT} ping {sequence}"
        decision = route_user_message(text, self.settings, None)
        started = start_conversation(
            self.store, decision, text=text, started_by="bench", sender=HUMAN, origin="bench",
            max_messages=self.config.team["max_conversation_messages"],
            max_attempts=self.config.team["max_attempts"])
        return started.message_ids[0]

    def backlog(self, count: int) -> None:
        """Queue ``count`` messages in one transaction, so building the backlog stays quick."""
        with self.store.begin() as connection:
            for sequence in range(count):
                text = f"@{AGENT} ping {sequence}"
                insert_conversation(
                    connection, route_user_message(text, self.settings, None), text=text,
                    started_by="bench", sender=HUMAN, origin="bench", team=None,
                    max_messages=self.config.team["max_conversation_messages"],
                    max_attempts=self.config.team["max_attempts"])

    def finished_count(self) -> int:
        with self.store.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(team_messages)
                                      .where(team_messages.c.status == "done")).scalar_one()

    def last_finish(self) -> float:
        with self.store.engine.connect() as connection:
            finished = connection.execute(
                team_messages.select().with_only_columns(team_messages.c.finished_at)
                .order_by(team_messages.c.finished_at.desc()).limit(1)).scalar_one()
        return as_utc(finished).timestamp()

    def store_waits(self) -> list[float]:
        """Return started_at - created_at of every message, in seconds."""
        with self.store.engine.connect() as connection:
            rows = connection.execute(team_messages.select().with_only_columns(
                team_messages.c.created_at, team_messages.c.started_at)).all()
        return [(as_utc(started) - as_utc(created)).total_seconds()
                for created, started in rows]

    def close(self) -> None:
        self.store.close()


class BatchSide(OursSide):
    """tinysdlc-nb's queue with an agent that lets the worker claim up to BATCH_SIZE at once."""

    name = "ours_batch"
    options = ("--batch-size", str(BATCH_SIZE))


class FolderSide:
    """The baseline: a folder of JSON files per state, listed once a second."""

    name = "folder"
    kind = "folder"
    options: tuple[str, ...] = ()

    def __init__(self, folder: Path):
        self.root = folder / "queue"
        folder_queue.prepare(self.root)

    def enqueue(self, sequence: int) -> int:
        folder_queue.enqueue(self.root, sequence, f"@{AGENT} ping {sequence}")
        return sequence

    def backlog(self, count: int) -> None:
        for sequence in range(count):
            self.enqueue(sequence)

    def finished_count(self) -> int:
        return folder_queue.outgoing_count(self.root)

    def last_finish(self) -> float:
        return folder_queue.last_reply_time(self.root)

    def close(self) -> None:
        pass


SIDES = {"ours": OursSide, "ours_batch": BatchSide, "folder": FolderSide}


def measure_latency(side, log_path: Path, count: int, interval_s: float) -> dict:
    """Enqueue ``count`` messages ``interval_s`` apart to an idle consumer; return latencies."""
    process = start_consumer(side, log_path)
    time.sleep(SETTLE_S)
    called, returned = {}, {}
    start = time.monotonic()
    for sequence in range(count):
        before = time.time()
        key = side.enqueue(sequence)
        returned[key] = time.time()
        called[key] = before
        pause = start + (sequence + 1) * interval_s - time.monotonic()
        if pause > 0:
            time.sleep(pause)

    wait_for(lambda: hand_over_count(log_path) >= count, process, "hand-overs")
    summary = stop_consumer(process)
    hand_overs = read_hand_overs(log_path)
    result = {
        "count": count, "interval_s": interval_s,
        "latency_ms": [(hand_overs[key] - called[key]) * 1000 for key in called],
        "after_enqueue_ms": [(hand_overs[key] - returned[key]) * 1000 for key in returned],
        "enqueue_ms": [(returned[key] - called[key]) * 1000 for key in called],
        "consumer_cpu_s": summary["cpu_s"],
        "consumer_process_cpu_s": summary["process_cpu_s"],
    }
    if isinstance(side, OursSide):
        result["store_wait_ms"] = [seconds * 1000 for seconds in side.store_waits()]
    return result


def measure_drain(side, log_path: Path, count: int) -> dict:
    """Queue ``count`` messages, then time one consumer that stops when they are done."""
    side.backlog(count)

    process = start_consumer(side, log_path, "--once")
    summary = stop_consumer(process, signal_first=False)
    if summary["handled"] != count or side.finished_count() != count:
        raise RuntimeError(f"{side.name} drain handled {summary['handled']} of {count} "
                           f"messages")
    drain_s = side.last_finish() - summary["run_start"]
    return {"count": count, "drain_s": drain_s, "per_s": count / drain_s,
            "consumer_cpu_s": summary["cpu_s"],
            "consumer_process_cpu_s": summary["process_cpu_s"]}


def measure_concurrent(side, log_path: Path, count: int) -> dict:
    """Enqueue ``count`` messages as fast as possible to a waiting consumer; time the whole."""
    process = start_consumer(side, log_path)
    time.sleep(SETTLE_S)
    first = time.time()
    for sequence in range(count):
        side.enqueue(sequence)
    produced_s = time.time() - first

    wait_for(lambda: side.finished_count() >= count, process, "finished messages")
    total_s = side.last_finish() - first
    summary = stop_consumer(process)
    return {"count": count, "produce_s": produced_s, "total_s": total_s,
            "per_s": count / total_s, "consumer_cpu_s": summary["cpu_s"],
            "consumer_process_cpu_s": summary["process_cpu_s"]}


def profile_ours(side_class, folder: Path, count: int, top: int = 12) -> dict:
    """Run the worker loop over ``count`` queued messages under cProfile; return the top costs.

    The top costs are the functions with the most own time, and the tinysdlc_nb
    functions with the most cumulative time.
    """
    side = side_class(folder)
    try:
        side.backlog(count)
        stats_path = folder / "worker.prof"
        process = start_consumer(side, folder / "hand-overs.log", "--once", "--profile",
                                 str(stats_path))
        stop_consumer(process, signal_first=False)
    finally:
        side.close()

    stats = pstats.Stats(str(stats_path))
    rows = []
    for (file_name, line, function), (_calls, calls, own, cumulative, _callers) \
            in stats.stats.items():
        rows.append({"function": _label(file_name, line, function), "calls": calls,
                     "own_s": own, "cumulative_s": cumulative})
    product = sorted((row for row in rows if row["function"].startswith("tinysdlc_nb/")),
                     key=lambda row: row["cumulative_s"], reverse=True)
    rows.sort(key=lambda row: row["own_s"], reverse=True)
    return {"side": side_class.name, "messages": count, "total_s": stats.total_tt,
            "top_own": rows[:top], "product_cumulative": product[:top]}


def sqlite_settings(side: OursSide) -> dict:
    """Return the journal mode and synchronous level the store's connections use."""
    with side.store.engine.connect() as connection:
        raw = connection.connection.driver_connection
        journal = raw.execute("PRAGMA journal_mode").fetchone()[0]
        synchronous = raw.execute("PRAGMA synchronous").fetchone()[0]
    levels = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return {"journal_mode": journal, "synchronous": levels.get(synchronous, str(synchronous)),
            "sqlite_version": sqlite3.sqlite_version}


def start_consumer(side, log_path: Path, *options: str) -> subprocess.Popen:
    """Start ``team_worker.py`` for ``side`` and wait for its ready line."""
    env = {name: value for name, value in os.environ.items() if name not in ISOLATED_ENV}
    process = subprocess.Popen(
        [sys.executable, str(WORKER_SCRIPT), side.kind, str(side.root), str(log_path),
         *side.options, *options], stdout=subprocess.PIPE, text=True, env=env, cwd=HERE)
    ready = process.stdout.readline()
    if not ready:
        process.wait()
        raise RuntimeError(f"the {side.name} consumer exited with code {process.returncode} "
                           f"before it was ready; see its messages above")
    return process


def stop_consumer(process: subprocess.Popen, signal_first: bool = True) -> dict:
    """Stop the consumer (SIGTERM, or wait for ``--once``) and return its closing line."""
    if signal_first:
        process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=WAIT_TIMEOUT_S)
    if process.returncode != 0:
        raise RuntimeError(f"the consumer exited with code {process.returncode}")
    return json.loads(output.strip().splitlines()[-1])


def wait_for(condition, process: subprocess.Popen, description: str) -> None:
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    while not condition():
        if process.poll() is not None:
            raise RuntimeError(f"the consumer exited with code {process.returncode} while "
                               f"waiting for {description}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"timed out after {WAIT_TIMEOUT_S:g} s waiting for {description}")
        time.sleep(0.02)


def hand_over_count(log_path: Path) -> int:
    return log_path.read_bytes().count(b"\n") if log_path.exists() else 0


def read_hand_overs(log_path: Path) -> dict[int, float]:
    hand_overs = {}
    for line in log_path.read_text(encoding="ascii").splitlines():
        key, at = line.split()
        hand_overs.setdefault(int(key), float(at))
    return hand_overs


def _label(file_name: str, line: int, function: str) -> str:
    """Shorten a profile entry to ``package/module.py:line(function)``."""
    if file_name == "~":
        return function
    path = Path(file_name)
    for anchor in ("tinysdlc_nb", "sqlalchemy", "pandas"):
        if anchor in path.parts:
            index = path.parts.index(anchor)
            return f"{'/'.join(path.parts[index:])}:{line}({function})"
    return f"{path.name}:{line}({function})"

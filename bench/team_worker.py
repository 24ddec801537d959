"""One consumer process of the team benchmark, with an agent that replies "ok" at once.

Usage::

    python bench/team_worker.py ours PROJECT LOG [--once] [--profile OUT]
    python bench/team_worker.py folder QUEUE_DIR LOG [--once]

``ours`` runs tinysdlc-nb's worker (``build_worker``, one thread) on the project's
SQLite store. ``folder`` runs the folder-queue baseline (``folder_queue.consume``).
On each hand-over the agent appends ``KEY TIME`` to LOG with one ``O_APPEND`` write,
where TIME is ``time.time()`` and KEY is the message id (ours) or the file's sequence
number (folder).

The process prints one JSON line when it is ready to consume and one when it stops:
``run_start`` and ``run_end`` (``time.time()`` around the consuming loop, after the
imports and the store are ready), ``handled``, ``cpu_s`` (CPU seconds after the
imports) and ``process_cpu_s`` (CPU seconds of the whole process). SIGTERM
stops it; with ``--once`` it stops when the queue is empty. With ``--profile OUT`` it
claims messages one by one in the main thread under cProfile and writes the stats to
OUT, so the profile covers the worker loop's own work and none of its idle waits.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import folder_queue

from tinysdlc_nb.config import load_config
from tinysdlc_nb.store import open_store
from tinysdlc_nb.team.agents import register_provider
from tinysdlc_nb.team.commands import build_worker
from tinysdlc_nb.team.model import AgentReply
from tinysdlc_nb.team.settings import load_team_settings

# The provider name the benchmark's settings.json gives every agent.
PROVIDER = "instant"
REPLY = "ok"


class HandOverLog:
    """The LOG file: one ``KEY TIME`` line per hand-over, written with O_APPEND."""

    def __init__(self, path: str):
        self.descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.count = 0

    def record(self, key: int) -> None:
        os.write(self.descriptor, f"{key} {time.time():.6f}\n".encode())
        self.count += 1


class InstantAgent:
    """The agent of ``ours``: logs the hand-over and replies "ok".

    ``batch_size`` is how many of one agent's messages the worker may claim at once;
    ``--batch-size`` sets it.
    """

    hand_overs: HandOverLog | None = None
    batch_size = 1

    def __init__(self, _context):
        pass

    def reply(self, request, spec) -> AgentReply:
        InstantAgent.hand_overs.record(request.message_id)
        return AgentReply(text=REPLY)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("side", choices=["ours", "folder"])
    parser.add_argument("root", type=Path, help="project folder (ours) or queue folder")
    parser.add_argument("log", help="file that receives one line per hand-over")
    parser.add_argument("--once", action="store_true", help="stop when the queue is empty")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the loop here")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="messages of one agent the worker may claim at once (ours)")
    args = parser.parse_args(argv)

    hand_overs = HandOverLog(args.log)
    started_cpu = time.process_time()
    InstantAgent.batch_size = args.batch_size
    if args.side == "ours":
        run_start, run_end = run_ours(args.root, hand_overs, args.once, args.profile)
    else:
        run_start, run_end = run_folder(args.root, hand_overs, args.once)
    _print({"run_start": run_start, "run_end": run_end, "handled": hand_overs.count,
            "cpu_s": time.process_time() - started_cpu,
            "process_cpu_s": time.process_time()})
    return 0


def run_ours(project: Path, hand_overs: HandOverLog, once: bool,
             profile: Path | None) -> tuple[float, float]:
    InstantAgent.hand_overs = hand_overs
    register_provider(PROVIDER, InstantAgent)
    config = load_config(project)
    settings = load_team_settings(config.home)
    store = open_store(config.database_url)
    try:
        worker = build_worker(store, config, settings, once=once, concurrency=1)
        _print({"ready": True, "pid": os.getpid()})
        run_start = time.time()
        if profile is None:
            worker.run()
        else:
            profiler = cProfile.Profile()
            profiler.enable()
            while worker.process_one():
                pass
            profiler.disable()
            profiler.dump_stats(str(profile))
        return run_start, time.time()
    finally:
        store.close()


def run_folder(root: Path, hand_overs: HandOverLog, once: bool) -> tuple[float, float]:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _number, _frame: stop.set())

    def agent(message: dict) -> dict:
        hand_overs.record(message["sequence"])
        return {"sequence": message["sequence"], "reply": REPLY}

    _print({"ready": True, "pid": os.getpid()})
    run_start = time.time()
    folder_queue.consume(root, agent, once=once, stop=stop)
    return run_start, time.time()


def _print(value: dict) -> None:
    print(json.dumps(value), flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sys.exit(main())

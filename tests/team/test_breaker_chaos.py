"""SIGKILL while workers hold messages, with checks that a kill hit work in flight.

The kills in test_chaos.py follow a fixed schedule from the moment the workers start, and
a worker needs a second or more to import its modules, so every kill there can land before
the first claim. Here each victim is a worker that has already handed a message to its
agent, so the kill lands while workers are working.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from test_chaos import MESSAGES, WORKERS, enqueue, open_messages, write_project

from tinysdlc_nb.store import open_store
from tinysdlc_nb.store.schema import team_conversations, team_events, team_messages

KILLS = 12
# chaos_worker.py with one more line per hand-over, ``end ID ATTEMPT PID``, written when
# the agent returns, so the log shows when each agent call started and ended. The first
# argument is the folder of chaos_worker.py; the rest are chaos_worker's own arguments.
WORKER_CODE = """
import os, sys
sys.path.insert(0, sys.argv.pop(1))
import chaos_worker

class EndLoggingAgent(chaos_worker.LoggingAgent):
    def reply(self, request, spec):
        reply = super().reply(request, spec)
        line = "end %d %d %d\\n" % (request.message_id, request.attempt, os.getpid())
        os.write(self.descriptor, line.encode())
        return reply

chaos_worker.LoggingAgent = EndLoggingAgent
sys.exit(chaos_worker.main())
"""
# How long a kill waits for some worker to hand a message over before it is skipped.
WORK_WAIT_S = 20.0


def start_worker(project, log_file, env) -> subprocess.Popen:
    """Start a worker whose stderr goes to a file, so a full pipe can never block it."""
    with open(log_file.with_name("workers.err"), "ab") as errors:
        return subprocess.Popen([sys.executable, "-c", WORKER_CODE, str(Path(__file__).parent),
                                 str(project), str(log_file)],
                                env=env, stdout=subprocess.DEVNULL, stderr=errors)


def handed_by(log_file, pid: int) -> int:
    if not log_file.exists():
        return 0
    return sum(line.endswith(f" {pid}") for line in log_file.read_text().splitlines())


def overlapping_calls(lines: list[str], recipient: dict[int, str]) -> list[tuple[int, int]]:
    """Return pairs of messages whose agent calls to the same agent overlapped in the log.

    A call without an end line (its worker was killed) is left out.
    """
    started, ended = {}, {}
    for index, line in enumerate(lines):
        parts = line.split()
        if parts[0] == "end":
            ended[(int(parts[1]), int(parts[2]))] = index
        else:
            started[(int(parts[0]), int(parts[1]))] = index
    calls = sorted((started[key], ended[key], key[0]) for key in ended)

    pairs = []
    for position, (_start, end, message_id) in enumerate(calls):
        for next_start, _end, other_id in calls[position + 1:]:
            if next_start > end:
                break
            if other_id != message_id and recipient[other_id] == recipient[message_id]:
                pairs.append((message_id, other_id))
    return pairs


def pick_working(log_file, workers, chooser) -> int | None:
    """Return the index of a random worker that has handed a message over, or None."""
    deadline = time.monotonic() + WORK_WAIT_S
    while time.monotonic() < deadline:
        working = [index for index, worker in enumerate(workers)
                   if handed_by(log_file, worker.pid)]
        if working:
            return chooser.choice(working)
        time.sleep(0.01)
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
def chaos_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'project' / '.tinysdlc' / 'state.db'}"
    return request.getfixturevalue("pg_url")


def test_kill_in_flight_recovers(tmp_path, chaos_url):
    project = tmp_path / "project"
    write_project(project)
    log_file = tmp_path / "handovers.log"
    env = {**os.environ, "TINYSDLC_NB_DATABASE_URL": chaos_url}
    store = open_store(chaos_url)
    enqueue(store)
    chooser = random.Random(20261206)

    workers = [start_worker(project, log_file, env) for _ in range(WORKERS)]
    kills_in_flight = 0
    try:
        for _ in range(KILLS):
            if not open_messages(store):
                break
            victim = pick_working(log_file, workers, chooser)
            if victim is None:
                continue
            time.sleep(chooser.uniform(0, 0.02))
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait()
            kills_in_flight += 1
            workers[victim] = start_worker(project, log_file, env)

        deadline = time.monotonic() + 180
        while open_messages(store) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=30)

    with store.engine.connect() as connection:
        rows = connection.execute(select(team_messages.c.id, team_messages.c.recipient,
                                         team_messages.c.status,
                                         team_messages.c.attempts)).all()
        conversations = connection.execute(select(team_conversations.c.status)).scalars().all()
        answered = connection.execute(
            select(team_events.c.conversation_id, func.count())
            .where(team_events.c.kind == "answered")
            .group_by(team_events.c.conversation_id)).all()
    store.close()

    assert kills_in_flight >= KILLS // 2
    statuses = [row.status for row in rows]
    assert statuses.count("done") + statuses.count("dead") == MESSAGES
    assert any(row.attempts > 1 for row in rows), "no kill hit a message in hand"
    assert conversations.count("answered") == MESSAGES
    assert all(count == 1 for _conversation, count in answered)

    lines = log_file.read_text().splitlines()
    handovers = [tuple(line.split()[:2]) for line in lines if not line.startswith("end ")]
    assert len(handovers) == len(set(handovers)), "an attempt was handed to an agent twice"
    recipient = {row.id: row.recipient for row in rows}
    assert overlapping_calls(lines, recipient) == []

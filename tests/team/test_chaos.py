"""Workers killed with SIGKILL at random points while 1,000 messages flow through them."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select

from tinysdlc_nb.store import open_store
from tinysdlc_nb.store.schema import team_attempts, team_messages
from tinysdlc_nb.team.conversations import start_conversation
from tinysdlc_nb.team.model import HUMAN, Delivery, RouteDecision

MESSAGES = 1000
AGENTS = [f"a{index}" for index in range(5)]
WORKERS = 3
KILLS = 12
SCRIPT = Path(__file__).with_name("chaos_worker.py")


def write_project(folder: Path) -> None:
    home = folder / ".tinysdlc"
    home.mkdir(parents=True)
    (home / "config.toml").write_text(
        "[team]\nlease_s = 1.0\nmax_attempts = 4\nbackoff_base_s = 0.05\n"
        "backoff_max_s = 0.2\npoll_interval_s = 0.005\nconcurrency = 2\n")
    agents = {name: {"name": name, "provider": "instant", "max_delegation_depth": 0}
              for name in AGENTS}
    (home / "settings.json").write_text(json.dumps({"agents": agents, "teams": {}}))


def enqueue(store) -> None:
    for index in range(MESSAGES):
        agent = AGENTS[index % len(AGENTS)]
        decision = RouteDecision((Delivery(agent, f"job {index}", f"job {index}"),), (), "")
        start_conversation(store, decision, text=f"@{agent} job {index}", started_by="load",
                           sender=HUMAN, max_messages=5, max_attempts=4)


def start_worker(project: Path, log_file: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(SCRIPT), str(project), str(log_file)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def open_messages(store) -> int:
    with store.engine.connect() as connection:
        statuses = connection.execute(select(team_messages.c.status)).scalars().all()
    return sum(status in ("pending", "processing") for status in statuses)


@pytest.fixture(params=["sqlite", "postgresql"])
def chaos_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'project' / '.tinysdlc' / 'state.db'}"
    return request.getfixturevalue("pg_url")


def test_sigkill_loses_nothing(tmp_path, chaos_url):
    project = tmp_path / "project"
    write_project(project)
    log_file = tmp_path / "handovers.log"
    env = {**os.environ, "TINYSDLC_NB_DATABASE_URL": chaos_url}
    store = open_store(chaos_url)
    enqueue(store)
    chooser = random.Random(20261205)

    workers = [start_worker(project, log_file, env) for _ in range(WORKERS)]
    kills_in_flight = 0
    try:
        for _ in range(KILLS):
            time.sleep(chooser.uniform(0.05, 0.3))
            if not open_messages(store):
                break
            victim = chooser.randrange(WORKERS)
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

    # The kills must land while messages flow, or the test proves nothing.
    assert kills_in_flight >= KILLS // 2
    with store.engine.connect() as connection:
        rows = connection.execute(select(team_messages.c.id, team_messages.c.recipient,
                                         team_messages.c.status, team_messages.c.attempts,
                                         team_messages.c.last_error)).all()
        finished = connection.execute(
            select(team_attempts.c.message_id, team_attempts.c.attempt)
            .where(team_attempts.c.outcome == "done")).all()
    store.close()

    statuses = [row.status for row in rows]
    assert len(rows) == MESSAGES
    assert statuses.count("done") + statuses.count("dead") == MESSAGES
    assert all(row.last_error for row in rows if row.status == "dead")

    handovers = [tuple(int(part) for part in line.split()) for line in
                 log_file.read_text().splitlines()]
    pairs = [(message_id, attempt) for message_id, attempt, _pid in handovers]
    assert len(pairs) == len(set(pairs)), "an attempt was handed to an agent twice"

    done_attempt = {message_id: attempt for message_id, attempt in finished}
    assert set(done_attempt) == {row.id for row in rows if row.status == "done"}
    last_handover = defaultdict(int)
    for message_id, attempt in pairs:
        last_handover[message_id] = max(last_handover[message_id], attempt)
    for message_id, attempt in done_attempt.items():
        assert last_handover[message_id] == attempt, f"message {message_id} ran after done"

    # The hand-overs whose replies were stored reached each agent in mailbox order. A
    # killed worker's unfinished batch is handed over again from its first message, so
    # hand-overs that produced nothing are left out of this order.
    recipient = {row.id: row.recipient for row in rows}
    per_agent = defaultdict(list)
    for message_id, attempt in pairs:
        if done_attempt.get(message_id) == attempt:
            per_agent[recipient[message_id]].append(message_id)
    for agent, order in per_agent.items():
        assert order == sorted(order), f"{agent} saw its messages out of order"

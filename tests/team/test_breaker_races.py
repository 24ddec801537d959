"""Races of the queue on SQLite and PostgreSQL: concurrent finishes, retries and burials."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from functools import partial

import pytest
from sqlalchemy import func, select, text

from tinysdlc_nb.store.schema import team_attempts, team_events, team_messages
from tinysdlc_nb.team.claims import claim
from tinysdlc_nb.team.conversations import conversation_detail, start_conversation
from tinysdlc_nb.team.delivery import bury_expired, finish_with_failure, finish_with_reply
from tinysdlc_nb.team.model import HUMAN, AgentReply
from tinysdlc_nb.team.queue import LeaseLost, QueueOptions, retry_dead
from tinysdlc_nb.team.routing import route_user_message

OPTIONS = QueueOptions(max_attempts=3, backoff_base_s=10, backoff_max_s=60, lease_s=30)
ROUNDS = 25


def send(store, settings, text, max_messages=50, max_attempts=3):
    decision = route_user_message(text, settings, "devops")
    return start_conversation(store, decision, text=text, started_by="alice", sender=HUMAN,
                              max_messages=max_messages, max_attempts=max_attempts)


def event_count(store, conversation_id, kind):
    with store.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(team_events).where(
            team_events.c.conversation_id == conversation_id,
            team_events.c.kind == kind)).scalar_one()


def run_together(*calls):
    """Run each call in its own thread, released at the same moment; return results."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def runner(index, call):
        barrier.wait()
        try:
            results[index] = call()
        except Exception as error:  # the test inspects what each call raised
            results[index] = error

    threads = [threading.Thread(target=runner, args=(index, call))
               for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def drain(store, settings, files_dir):
    """Finish every claimable message with a plain reply, so each round starts empty."""
    while (held := claim(store, "drain", OPTIONS)) is not None:
        finish_with_reply(store, held, AgentReply("ok"), settings, files_dir)


def fan_out(store, settings, files_dir, max_messages=50):
    """Start a conversation whose root hands off to coder and tester; return both claims."""
    drain(store, settings, files_dir)
    started = send(store, settings, "@devops release", max_messages=max_messages)
    root = claim(store, "w0", OPTIONS)
    finish_with_reply(store, root, AgentReply("[@coder: build] [@tester: test]"), settings,
                      files_dir)
    first = claim(store, "w1", OPTIONS)
    second = claim(store, "w2", OPTIONS)
    return started.conversation_id, first, second


def test_last_branches_answer_once(any_store, team_settings, tmp_path):
    for _ in range(ROUNDS):
        conversation_id, first, second = fan_out(any_store, team_settings, tmp_path)

        outcomes = run_together(
            partial(finish_with_reply, any_store, first, AgentReply("built"), team_settings,
                    tmp_path),
            partial(finish_with_reply, any_store, second, AgentReply("tested"), team_settings,
                    tmp_path))

        answers = [outcome.answer for outcome in outcomes if outcome.answer is not None]
        assert len(answers) == 1
        assert event_count(any_store, conversation_id, "answered") == 1
        detail = conversation_detail(any_store, conversation_id)
        assert detail["status"] == "answered"
        assert "@coder: built" in detail["answer"]
        assert "@tester: tested" in detail["answer"]


def test_dead_and_reply_answer_once(any_store, team_settings, tmp_path):
    for _ in range(ROUNDS):
        conversation_id, first, second = fan_out(any_store, team_settings, tmp_path)

        run_together(
            partial(finish_with_reply, any_store, first, AgentReply("built"), team_settings,
                    tmp_path),
            partial(finish_with_failure, any_store, second, "broken", OPTIONS, permanent=True))

        assert event_count(any_store, conversation_id, "answered") == 1
        detail = conversation_detail(any_store, conversation_id)
        assert "@coder: built" in detail["answer"]
        assert "no reply; the message is dead" in detail["answer"]


def test_cap_race_keeps_limit(any_store, team_settings, tmp_path):
    for _ in range(ROUNDS):
        conversation_id, first, second = fan_out(any_store, team_settings, tmp_path,
                                                 max_messages=4)

        run_together(
            partial(finish_with_reply, any_store, first, AgentReply("[@pjm: plan it]"),
                    team_settings, tmp_path),
            partial(finish_with_reply, any_store, second, AgentReply("[@reviewer: check]"),
                    team_settings, tmp_path))

        with any_store.engine.connect() as connection:
            used = connection.execute(select(func.count()).select_from(team_messages).where(
                team_messages.c.conversation_id == conversation_id)).scalar_one()
        assert used == 4


def test_bury_and_late_finish_race(any_store, team_settings, tmp_path):
    last_try = QueueOptions(max_attempts=1, lease_s=0.05)
    for _ in range(ROUNDS):
        started = send(any_store, team_settings, "@devops status", max_attempts=1)
        held = claim(any_store, "slow", last_try)
        later = held.claimed_at + dt.timedelta(seconds=5)

        results = run_together(
            partial(bury_expired, any_store, now=later),
            partial(finish_with_reply, any_store, held, AgentReply("late"), team_settings,
                    tmp_path))

        buried, finished = results
        detail = conversation_detail(any_store, started.conversation_id)
        status = detail["messages"][0]["status"]
        if isinstance(finished, LeaseLost):
            assert status == "dead"
            assert buried == [held.id]
        else:
            assert status == "done"
            assert buried == []
        assert event_count(any_store, started.conversation_id, "answered") == 1


def test_claim_and_retry_dead_race(any_store, team_settings, tmp_path):
    for _ in range(ROUNDS):
        message_id = send(any_store, team_settings, "@pjm plan").message_ids[0]
        held = claim(any_store, "w1", OPTIONS)
        finish_with_failure(any_store, held, "broken", OPTIONS, permanent=True)

        claimed, row = run_together(partial(claim, any_store, "w2", OPTIONS),
                                    partial(retry_dead, any_store, message_id, "alice"))
        again = claimed or claim(any_store, "w3", OPTIONS)

        assert not isinstance(claimed, Exception)
        assert row["id"] == message_id
        assert again.id == message_id
        assert again.attempt == 2
        finish_with_reply(any_store, again, AgentReply("ok"), team_settings, tmp_path)


def test_retried_dead_waits_for_held(any_store, team_settings, tmp_path):
    first = send(any_store, team_settings, "@coder one").message_ids[0]
    send(any_store, team_settings, "@coder two")
    held = claim(any_store, "w1", OPTIONS)
    finish_with_failure(any_store, held, "broken", OPTIONS, permanent=True)
    second = claim(any_store, "w2", OPTIONS)

    retry_dead(any_store, first, "alice")
    parallel = claim(any_store, "w3", OPTIONS)

    assert second.recipient == "coder"
    assert parallel is None, f"coder got message {parallel.id} while it holds {second.id}"


def test_handoff_after_dead_delivered(any_store, team_settings, tmp_path):
    send(any_store, team_settings, "@coder one")
    held = claim(any_store, "w1", OPTIONS)
    finish_with_failure(any_store, held, "broken", OPTIONS, permanent=True)
    send(any_store, team_settings, "@devops go")
    root = claim(any_store, "w1", OPTIONS)
    finish_with_reply(any_store, root, AgentReply("[@coder: fix it]"), team_settings, tmp_path)

    handoff = claim(any_store, "w1", OPTIONS)

    assert handoff.recipient == "coder"
    assert handoff.sender == "devops"


def test_concurrent_claims_one_per_agent(any_store, team_settings):
    for index in range(6):
        send(any_store, team_settings, f"@coder job {index}")

    for _ in range(ROUNDS):
        claims = run_together(*[partial(claim, any_store, worker, OPTIONS)
                                for worker in ("w1", "w2", "w3", "w4")])
        held = [item for item in claims if item is not None]
        assert not [item for item in claims if isinstance(item, Exception)]
        assert len(held) <= 1
        if not held:
            break
        with any_store.begin() as connection:
            connection.execute(team_messages.update().where(team_messages.c.id == held[0].id)
                               .values(status="done", lease_owner=None))


def test_attempt_rows_unique(any_store, team_settings, tmp_path):
    send(any_store, team_settings, "@devops status")
    short = QueueOptions(max_attempts=3, lease_s=0.05)
    first = claim(any_store, "crashed", short)
    second = claim(any_store, "w2", OPTIONS, now=first.claimed_at + dt.timedelta(seconds=1))

    late = run_together(
        partial(finish_with_reply, any_store, first, AgentReply("late"), team_settings,
                tmp_path),
        partial(finish_with_reply, any_store, second, AgentReply("on time"), team_settings,
                tmp_path))

    assert isinstance(late[0], LeaseLost)
    with any_store.engine.connect() as connection:
        rows = connection.execute(select(team_attempts.c.attempt, team_attempts.c.outcome)).all()
    assert [tuple(row) for row in rows] == [(2, "done")]


@pytest.mark.parametrize("kind", ["reply", "failure"])
def test_retry_dead_reopens_answered(any_store, team_settings, tmp_path, kind):
    started = send(any_store, team_settings, "@devops status")
    held = claim(any_store, "w1", OPTIONS)
    finish_with_failure(any_store, held, "broken", OPTIONS, permanent=True)

    retry_dead(any_store, held.id, "alice")
    reopened = conversation_detail(any_store, started.conversation_id)
    again = claim(any_store, "w1", OPTIONS)
    if kind == "reply":
        finish_with_reply(any_store, again, AgentReply("fixed"), team_settings, tmp_path)
    else:
        finish_with_failure(any_store, again, "still broken", OPTIONS, permanent=True)

    assert reopened["status"] == "open"
    assert event_count(any_store, started.conversation_id, "answered") == 2


def test_retry_dead_clears_answer(any_store, team_settings):
    started = send(any_store, team_settings, "@devops status")
    held = claim(any_store, "w1", OPTIONS)
    finish_with_failure(any_store, held, "broken", OPTIONS, permanent=True)

    retry_dead(any_store, held.id, "alice")

    reopened = conversation_detail(any_store, started.conversation_id)
    assert reopened["status"] == "open"
    assert reopened["answer"] is None, "an open conversation still shows the old answer"


def hold_write_lock(store, seconds: float) -> None:
    """Keep every writer of the queue waiting for ``seconds``, as a busy store would."""
    if store.dialect == "sqlite":
        blocker = sqlite3.connect(store.engine.url.database, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        time.sleep(seconds)
        blocker.rollback()
        blocker.close()
        return
    with store.engine.connect() as blocker:
        blocker.execute(text("LOCK TABLE team_messages IN EXCLUSIVE MODE"))
        time.sleep(seconds)
        blocker.rollback()


def test_claim_after_lock_wait_keeps_lease(any_store, team_settings):
    send(any_store, team_settings, "@devops status")
    options = QueueOptions(max_attempts=3, lease_s=1.0)
    blocker = threading.Thread(target=hold_write_lock, args=(any_store, 1.5))
    blocker.start()
    time.sleep(0.2)

    first = claim(any_store, "w1", options)
    blocker.join()
    second = claim(any_store, "w2", options)

    assert first is not None
    assert second is None, "a claim that waited for the lock got an already expired lease"

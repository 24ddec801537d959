"""The durable queue on SQLite and PostgreSQL: claims, leases, order, retries, answers."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest
from sqlalchemy import select, update
from teamkit import team_document

from tinysdlc_nb.errors import UsageError
from tinysdlc_nb.store.schema import team_attempts, team_events, team_messages, team_notifications
from tinysdlc_nb.team.claims import claim
from tinysdlc_nb.team.conversations import conversation_detail, start_conversation
from tinysdlc_nb.team.delivery import bury_expired, finish_with_failure, finish_with_reply
from tinysdlc_nb.team.model import HUMAN, AgentContext, AgentReply
from tinysdlc_nb.team.queue import LeaseLost, QueueOptions, queue_counts, retry_dead
from tinysdlc_nb.team.routing import route_user_message
from tinysdlc_nb.team.settings import parse_team_settings
from tinysdlc_nb.team.worker import Worker

OPTIONS = QueueOptions(max_attempts=3, backoff_base_s=10, backoff_max_s=60, lease_s=30)
LATER = dt.timedelta(hours=1)


def send(store, settings, text, max_messages=50, max_attempts=3):
    decision = route_user_message(text, settings, "devops")
    return start_conversation(store, decision, text=text, started_by="alice", sender=HUMAN,
                              max_messages=max_messages, max_attempts=max_attempts)


def status_of(store, message_id):
    with store.engine.connect() as connection:
        return connection.execute(select(team_messages.c.status).where(
            team_messages.c.id == message_id)).scalar_one()


def test_claim_then_reply_answers(any_store, team_settings, tmp_path):
    started = send(any_store, team_settings, "@devops status please")

    held = claim(any_store, "w1", OPTIONS)
    outcome = finish_with_reply(any_store, held, AgentReply("all green"), team_settings,
                                tmp_path)

    assert held.id == started.message_ids[0]
    assert held.attempt == 1
    assert outcome.answer == "all green"
    assert status_of(any_store, held.id) == "done"
    assert conversation_detail(any_store, started.conversation_id)["status"] == "answered"


def test_claim_empty_queue(any_store):
    assert claim(any_store, "w1", OPTIONS) is None


def test_agent_order_kept(any_store, team_settings, tmp_path):
    first = send(any_store, team_settings, "@coder one").message_ids[0]
    second = send(any_store, team_settings, "@coder two").message_ids[0]
    other = send(any_store, team_settings, "@pjm three").message_ids[0]

    held = claim(any_store, "w1", OPTIONS)
    parallel = claim(any_store, "w2", OPTIONS)
    blocked = claim(any_store, "w3", OPTIONS)
    finish_with_reply(any_store, held, AgentReply("done one"), team_settings, tmp_path)
    after = claim(any_store, "w3", OPTIONS)

    assert held.id == first
    assert parallel.id == other
    assert blocked is None
    assert after.id == second


def test_fan_out_waits_for_branches(any_store, team_settings, tmp_path):
    started = send(any_store, team_settings, "@devops deploy 1.4.0")
    root = claim(any_store, "w1", OPTIONS)
    fan_out = finish_with_reply(any_store, root, AgentReply(
        "Deploy of 1.4.0 requested.\n[@reviewer: confirm G3] [@pjm: deployment pending]"),
        team_settings, tmp_path)

    reviewer = claim(any_store, "w1", OPTIONS)
    pjm = claim(any_store, "w2", OPTIONS)
    partial = finish_with_reply(any_store, reviewer, AgentReply("G3 is missing a tester"),
                                team_settings, tmp_path)
    last = finish_with_reply(any_store, pjm, AgentReply("noted"), team_settings, tmp_path)

    assert len(fan_out.handoffs) == 2
    assert {reviewer.recipient, pjm.recipient} == {"reviewer", "pjm"}
    assert reviewer.depth == 1
    assert reviewer.hops == (("devops", "reviewer"),)
    assert "Deploy of 1.4.0 requested." in reviewer.body
    assert "confirm G3" in reviewer.body
    assert "deployment pending" not in reviewer.body
    assert partial.answer is None
    assert last.answer.startswith("@devops: Deploy of 1.4.0 requested.")
    assert "@reviewer: G3 is missing a tester" in last.answer
    assert "@pjm: noted" in last.answer
    assert conversation_detail(any_store, started.conversation_id)["status"] == "answered"


def test_lease_expiry_hands_again(any_store, team_settings, tmp_path):
    send(any_store, team_settings, "@devops status")
    short = QueueOptions(max_attempts=3, lease_s=0.5)
    first = claim(any_store, "crashed", short)
    now = dt.datetime.now(dt.UTC)

    too_early = claim(any_store, "w2", short, now=now)
    second = claim(any_store, "w2", short, now=now + dt.timedelta(seconds=1))

    assert too_early is None
    assert second.id == first.id
    assert second.attempt == 2
    with pytest.raises(LeaseLost):
        finish_with_reply(any_store, first, AgentReply("late"), team_settings, tmp_path)
    outcome = finish_with_reply(any_store, second, AgentReply("on time"), team_settings,
                                tmp_path)
    assert outcome.answer == "on time"


def test_failure_backs_off_then_dies(any_store, team_settings, tmp_path):
    started = send(any_store, team_settings, "@devops status")
    future = dt.datetime.now(dt.UTC)
    waits = []
    for attempt in range(1, 4):
        future += LATER
        held = claim(any_store, "w1", OPTIONS, now=future)
        assert held.attempt == attempt
        outcome = finish_with_failure(any_store, held, "HTTP 529 overloaded", OPTIONS)
        waits.append(outcome.status)
        assert claim(any_store, "w1", OPTIONS) is None

    assert waits == ["pending", "pending", "dead"]
    detail = conversation_detail(any_store, started.conversation_id)
    assert detail["status"] == "answered"
    assert "dead after 3 attempt(s)" in detail["answer"]
    assert "HTTP 529 overloaded" in detail["messages"][0]["last_error"]
    with any_store.engine.connect() as connection:
        outcomes = connection.execute(select(team_attempts.c.attempt, team_attempts.c.outcome)
                                      .order_by(team_attempts.c.attempt)).all()
    assert [tuple(row) for row in outcomes] == [(1, "retry"), (2, "retry"), (3, "dead")]


def test_backoff_doubles_and_caps():
    options = QueueOptions(backoff_base_s=2, backoff_max_s=10)

    assert [options.backoff_s(attempt) for attempt in (1, 2, 3, 4)] == [2, 4, 8, 10]
    assert options.backoff_s(1, retry_after_s=7) == 7
    assert options.backoff_s(1, retry_after_s=3600) == 10


def test_retry_after_sets_wait(any_store, team_settings):
    send(any_store, team_settings, "@devops status")
    held = claim(any_store, "w1", OPTIONS)
    finish_with_failure(any_store, held, "429", OPTIONS, retry_after_s=40)

    with any_store.engine.connect() as connection:
        available = connection.execute(select(team_messages.c.available_at)).scalar_one()
    wait = (available.replace(tzinfo=dt.UTC) - held.claimed_at).total_seconds()
    assert 39 < wait < 45


def test_permanent_failure_dies_at_once(any_store, team_settings):
    send(any_store, team_settings, "@devops status")
    held = claim(any_store, "w1", OPTIONS)

    outcome = finish_with_failure(any_store, held, "provider 'openai' is not run here",
                                  OPTIONS, permanent=True)

    assert outcome.status == "dead"
    assert "provider 'openai'" in outcome.answer


def test_retry_dead_requeues(any_store, team_settings, tmp_path):
    started = send(any_store, team_settings, "@devops status")
    held = claim(any_store, "w1", OPTIONS)
    finish_with_failure(any_store, held, "broken", OPTIONS, permanent=True)

    retry_dead(any_store, held.id, "alice")
    again = claim(any_store, "w1", OPTIONS)
    outcome = finish_with_reply(any_store, again, AgentReply("fixed"), team_settings, tmp_path)

    assert again.attempt == 2
    assert outcome.answer == "fixed"
    assert conversation_detail(any_store, started.conversation_id)["status"] == "answered"


def test_retry_rejects_live_message(any_store, team_settings):
    started = send(any_store, team_settings, "@devops status")

    with pytest.raises(UsageError, match="is pending, not dead"):
        retry_dead(any_store, started.message_ids[0], "alice")
    with pytest.raises(UsageError, match="message 999 not found"):
        retry_dead(any_store, 999, "alice")


def test_bury_lost_last_attempt(any_store, team_settings):
    started = send(any_store, team_settings, "@devops status", max_attempts=1)
    held = claim(any_store, "crashed", QueueOptions(max_attempts=1, lease_s=0.1))

    nothing = claim(any_store, "w2", OPTIONS, now=held.claimed_at + dt.timedelta(seconds=5))
    buried = bury_expired(any_store, now=held.claimed_at + dt.timedelta(seconds=5))

    assert nothing is None
    assert buried == [held.id]
    detail = conversation_detail(any_store, started.conversation_id)
    assert detail["status"] == "answered"
    assert "worker holding it stopped" in detail["answer"]


def test_drop_sends_notice(any_store, team_settings, tmp_path):
    started = send(any_store, team_settings, "@devops go")
    root = claim(any_store, "w1", OPTIONS)
    outcome = finish_with_reply(any_store, root, AgentReply("[@qa-bot: test it]"),
                                team_settings, tmp_path)
    notice = claim(any_store, "w1", OPTIONS)
    finish_with_reply(any_store, notice, AgentReply("[@nobody: still wrong]"), team_settings,
                      tmp_path)

    assert [item.mention for item in outcome.dropped] == ["qa-bot"]
    assert notice.kind == "notice"
    assert notice.recipient == "devops"
    assert "qa-bot" in notice.body
    assert claim(any_store, "w1", OPTIONS) is None
    detail = conversation_detail(any_store, started.conversation_id)
    assert "Not delivered:" in detail["answer"]
    assert "to @qa-bot" in detail["answer"]
    assert "to @nobody" in detail["answer"]


def test_message_cap_stops_handoffs(any_store, team_settings, tmp_path):
    send(any_store, team_settings, "@devops go", max_messages=2)
    root = claim(any_store, "w1", OPTIONS)

    outcome = finish_with_reply(any_store, root, AgentReply("[@coder: a] [@pjm: b]"),
                                team_settings, tmp_path)

    assert len(outcome.handoffs) == 1
    assert [str(item.reason) for item in outcome.dropped] == ["over_message_cap"]
    assert claim(any_store, "w1", OPTIONS).recipient == "coder"
    assert claim(any_store, "w2", OPTIONS) is None


def test_notification_kept_once(any_store, team_settings, tmp_path):
    for _ in range(2):
        send(any_store, team_settings, "@devops incidents?")
        held = claim(any_store, "w1", OPTIONS)
        finish_with_reply(any_store, held, AgentReply(
            "P1 open", notifications=(("Dana Ops", "INC-3 is P1: checkout down"),)),
            team_settings, tmp_path)

    with any_store.engine.connect() as connection:
        rows = connection.execute(select(team_notifications.c.recipient,
                                         team_notifications.c.text)).all()
    assert [tuple(row) for row in rows] == [("Dana Ops", "INC-3 is P1: checkout down")]


def test_secret_in_reply_redacted(any_store, team_settings, tmp_path, monkeypatch):
    monkeypatch.setenv("DEPLOY_TOKEN", "s3cr3t-deploy-value-123")
    started = send(any_store, team_settings, "@devops status")
    held = claim(any_store, "w1", OPTIONS)

    finish_with_reply(any_store, held, AgentReply(
        "token is s3cr3t-deploy-value-123 [@coder: use s3cr3t-deploy-value-123]"),
        team_settings, tmp_path)

    detail = conversation_detail(any_store, started.conversation_id)
    stored = json.dumps(detail, default=str)
    assert "s3cr3t-deploy-value-123" not in stored
    assert "[REDACTED:$DEPLOY_TOKEN]" in detail["messages"][1]["body"]


def test_worker_runs_queue(any_store, team_settings, config, scripted):
    def script(request):
        if request.agent_id == "devops":
            return "Fan out. [@coder: build] [@tester: test]"
        return f"{request.agent_id} finished"

    scripted.script = script
    conversations = [send(any_store, team_settings, f"@devops release {index}").conversation_id
                     for index in range(20)]
    context = AgentContext(any_store, config, team_settings, config.files_dir)
    worker = Worker(any_store, context, lambda: team_settings, OPTIONS, concurrency=4,
                    once=True)

    stats = worker.run()

    assert stats.done == 60
    assert stats.answered == 20
    assert queue_counts(any_store)["totals"] == {"pending": 0, "processing": 0, "done": 60,
                                                 "dead": 0}
    coder_order = [request.message_id for request in scripted.calls
                   if request.agent_id == "coder"]
    assert coder_order == sorted(coder_order)
    for conversation_id in conversations:
        answer = conversation_detail(any_store, conversation_id)["answer"]
        assert "@coder: coder finished" in answer
        assert "@tester: tester finished" in answer


def test_worker_kills_rejected_provider(any_store, config, scripted):
    document = team_document()
    document["agents"]["pjm"]["provider"] = "openai"
    settings = parse_team_settings(document)
    started = send(any_store, settings, "@pjm plan")
    context = AgentContext(any_store, config, settings, config.files_dir)

    Worker(any_store, context, lambda: settings, OPTIONS, concurrency=1, once=True).run()

    detail = conversation_detail(any_store, started.conversation_id)
    assert detail["messages"][0]["status"] == "dead"
    assert "provider 'openai'" in detail["messages"][0]["last_error"]


def test_events_record_handoffs(any_store, team_settings, tmp_path):
    started = send(any_store, team_settings, "@devops go")
    root = claim(any_store, "w1", OPTIONS)
    finish_with_reply(any_store, root, AgentReply("[@coder: fix]"), team_settings, tmp_path)

    with any_store.engine.connect() as connection:
        kinds = connection.execute(select(team_events.c.kind, team_events.c.target).where(
            team_events.c.conversation_id == started.conversation_id)
            .order_by(team_events.c.id)).all()
    assert [tuple(row) for row in kinds] == [("started", None), ("sent", "devops"),
                                             ("handoff", "coder")]


def test_stale_finish_after_retry_rejected(any_store, team_settings, tmp_path):
    send(any_store, team_settings, "@devops status")
    held = claim(any_store, "w1", OPTIONS)
    with any_store.begin() as connection:
        connection.execute(update(team_messages).values(lease_owner="someone-else"))

    with pytest.raises(LeaseLost):
        finish_with_failure(any_store, held, "x", OPTIONS)


def test_slow_agent_keeps_lease(any_store, team_settings, config, scripted):
    scripted.script = lambda request: time.sleep(1.5) or "slow but done"
    send(any_store, team_settings, "@devops status")
    options = QueueOptions(max_attempts=3, lease_s=0.6)
    context = AgentContext(any_store, config, team_settings, config.files_dir)
    worker = Worker(any_store, context, lambda: team_settings, options, concurrency=1,
                    once=True)
    thread = threading.Thread(target=worker.run)

    thread.start()
    time.sleep(1.0)
    stolen = claim(any_store, "other", options)
    thread.join(timeout=30)

    assert stolen is None
    assert worker.stats.done == 1
    assert len(scripted.calls) == 1

"""Finishing claimed messages: store the replies and their hand-offs, or retry, or give up.

A batch of messages is finished in one transaction that starts by checking, for each
message, that the worker still holds the attempt; a message whose lease was lost changes
nothing, so a worker that lost its lease can never add hand-offs or answer twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, update
from sqlalchemy.dialects import postgresql, sqlite

from ..scrub import scrub
from ..store import Store, utc_now
from ..store.schema import team_messages, team_notifications
from .conversations import finish_completed
from .files import FileRefused, extract_files, file_record, resolve_outgoing
from .model import AgentReply, Dropped, DropReason, RouteContext
from .queue import (
    DEAD,
    DONE,
    NOTICE,
    PENDING,
    PROCESSING,
    SYSTEM,
    Claimed,
    LeaseLost,
    NewMessage,
    QueueOptions,
    attempt_row,
    insert_message,
    lock_conversation,
    lock_conversations,
    mark_finished,
    message_count,
    record_attempts,
    record_event,
    release_held,
)
from .routing import route
from .settings import TeamSettings
from .tags import TAG_OPENING

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What finishing one message did: its new status, hand-offs, and the answer if any."""

    status: str
    handoffs: tuple[int, ...] = ()
    dropped: tuple[Dropped, ...] = ()
    answer: str | None = None


@dataclass(frozen=True)
class Result:
    """The result of one claimed message: the agent's reply, or a failure to record."""

    claimed: Claimed
    reply: AgentReply | None = None
    error: str = ""
    retry_after_s: float | None = None
    permanent: bool = False


LOST = "lost"
RELEASED = "released"


def finish_with_reply(store: Store, claimed: Claimed, reply: AgentReply,
                      settings: TeamSettings, files_dir: Path) -> Outcome:
    """Store one agent's reply; raise LeaseLost when the worker no longer holds the message."""
    return _single(finish_batch(store, [Result(claimed, reply)], settings=settings,
                                files_dir=files_dir, options=QueueOptions()), claimed)


def finish_with_failure(store: Store, claimed: Claimed, error: str, options: QueueOptions, *,
                        retry_after_s: float | None = None, permanent: bool = False) -> Outcome:
    """Schedule a retry after the backoff, or mark the message dead when none is left."""
    result = Result(claimed, error=error, retry_after_s=retry_after_s, permanent=permanent)
    return _single(finish_batch(store, [result], settings=None, files_dir=None,
                                options=options), claimed)


def _single(outcomes: list[Outcome], claimed: Claimed) -> Outcome:
    if outcomes[0].status == LOST:
        raise LeaseLost(f"message {claimed.id} attempt {claimed.attempt} is no longer held by "
                        f"{claimed.worker}")
    return outcomes[0]


def finish_batch(store: Store, results: list[Result], *, settings: TeamSettings | None,
                 files_dir: Path | None, options: QueueOptions,
                 unprocessed: list[Claimed] = ()) -> list[Outcome]:
    """Finish several claimed messages in one transaction; return one outcome per result.

    ``unprocessed`` are claimed messages the agent never saw (an earlier one of the same
    agent failed); they go back to the queue without spending their attempt. A message
    whose lease was lost gets the outcome ``lost`` and changes nothing.
    """
    now = utc_now()
    prepared = [_prepare(result, files_dir, options, now) for result in results]

    with store.begin() as connection:
        held = _finish_in_order(connection, results, prepared, now)
        for claimed in unprocessed:
            release_held(connection, claimed, now)
        kept = [index for index, is_held in enumerate(held) if is_held]
        touched = sorted({results[index].claimed.conversation_id for index in kept})
        lock_conversations(connection, touched)

        outcomes = [Outcome(LOST)] * len(results)
        attempts = []
        for index in kept:
            result = results[index]
            status, _values, extra = prepared[index]
            outcome_name = "retry" if status == PENDING else status
            attempts.append(attempt_row(result.claimed, outcome_name, now, result.error or None))
            if result.reply is not None:
                outcomes[index] = _after_reply(connection, result, settings, extra, now)
            else:
                outcomes[index] = _after_failure(connection, result, status, extra, now)
        record_attempts(connection, attempts)
        answers = finish_completed(connection, touched, now)

    for index in kept:
        if outcomes[index].status == DEAD:
            log.error("message %s to %s is dead: %s", results[index].claimed.id,
                      results[index].claimed.recipient, prepared[index][2])
    return [_with_answer(outcome, result, answers)
            for result, outcome in zip(results, outcomes, strict=True)]


def _finish_in_order(connection: Connection, results: list[Result], prepared: list[tuple],
                     now: dt.datetime) -> list[bool]:
    """Mark each held message finished; return which ones the worker still held.

    Once one message of an agent is lost (its lease expired and another worker took it),
    the later messages of that agent in the batch go back to the queue unfinished: their
    replies must not be stored before the lost one's, or the agent's order would break.
    """
    held = []
    lost_agents: set[str] = set()
    for result, (status, values, _extra) in zip(results, prepared, strict=True):
        claimed = result.claimed
        if claimed.recipient in lost_agents:
            # The agent has seen this attempt, so its number stays spent.
            mark_finished(connection, claimed, PENDING, now, available_at=now,
                          last_error="handed over again after an earlier message of the "
                                     "same agent was taken over by another worker")
            held.append(False)
            continue
        kept = mark_finished(connection, claimed, status, now, **values)
        if not kept:
            lost_agents.add(claimed.recipient)
        held.append(kept)
    return held


def _prepare(result: Result, files_dir: Path | None, options: QueueOptions,
             now: dt.datetime) -> tuple[str, dict[str, Any], Any]:
    """Return the message's new status, its column values, and what the next step needs."""
    claimed = result.claimed
    if result.reply is not None:
        text = scrub(result.reply.text)
        routed_text, paths = extract_files(text)
        accepted, refused = _check_files(paths, files_dir) if paths else ([], [])
        values = {"reply": text, "files": json.dumps(accepted), "finished_at": now}
        return DONE, values, (routed_text, refused)

    error = scrub(result.error)
    if result.permanent or claimed.attempt >= claimed.max_attempts:
        reason = error if result.permanent else (f"{error} (gave up after {claimed.attempt} "
                                                 f"of {claimed.max_attempts} attempts)")
        return DEAD, {"last_error": reason, "finished_at": now}, reason
    wait_s = options.backoff_s(claimed.attempt, result.retry_after_s)
    values = {"last_error": error, "available_at": now + dt.timedelta(seconds=wait_s)}
    return PENDING, values, {"wait_s": wait_s, "error": error}


def _after_reply(connection: Connection, result: Result, settings: TeamSettings | None,
                 extra: tuple[str, list[Dropped]], now: dt.datetime) -> Outcome:
    claimed = result.claimed
    routed_text, refused = extra
    handoffs: list[int] = []
    problems: list[Dropped] = list(refused)
    # Most replies carry no tag at all, and those need neither routing nor the counts.
    if TAG_OPENING in routed_text or problems:
        handoffs, problems = _route_reply(connection, claimed, routed_text, settings, refused,
                                          now)
    for recipient, note in result.reply.notifications:
        _notify(connection, claimed, recipient, note, now)
    return Outcome(DONE, tuple(handoffs), tuple(problems))


def _after_failure(connection: Connection, result: Result, status: str, extra: Any,
                   now: dt.datetime) -> Outcome:
    claimed = result.claimed
    if status == DEAD:
        record_event(connection, claimed.conversation_id, "dead", claimed.worker,
                     message_id=claimed.id, target=claimed.recipient, detail=extra, at=now)
        return Outcome(DEAD)
    record_event(connection, claimed.conversation_id, "retry", claimed.worker,
                 message_id=claimed.id, target=claimed.recipient, at=now,
                 detail={"attempt": claimed.attempt, **extra})
    return Outcome(PENDING)


def _with_answer(outcome: Outcome, result: Result, answers: dict[int, str]) -> Outcome:
    answer = answers.get(result.claimed.conversation_id)
    if answer is None or outcome.status == LOST:
        return outcome
    return Outcome(outcome.status, outcome.handoffs, outcome.dropped, answer)


def _route_reply(connection: Connection, claimed: Claimed, text: str, settings: TeamSettings,
                 refused: list[Dropped], now: dt.datetime) -> tuple[list[int], list[Dropped]]:
    """Enqueue the reply's hand-offs and record what was not delivered, with a notice."""
    conversation = lock_conversation(connection, claimed.conversation_id)
    used = message_count(connection, claimed.conversation_id)
    decision = route(claimed.recipient, text, settings, RouteContext(
        depth=claimed.depth, hops=claimed.hops, messages_used=used,
        max_messages=conversation["max_messages"]))

    handoffs = []
    for delivery in decision.deliveries:
        message_id = insert_message(connection, claimed.conversation_id, NewMessage(
            sender=claimed.recipient, recipient=delivery.to, directed=delivery.directed,
            shared_context=decision.shared_context, body=delivery.message,
            depth=claimed.depth + 1, hops=(*claimed.hops, (claimed.recipient, delivery.to)),
            parent_id=claimed.id,
        ), claimed.max_attempts, now)
        handoffs.append(message_id)
        record_event(connection, claimed.conversation_id, "handoff", claimed.recipient,
                     message_id=message_id, target=delivery.to, at=now,
                     detail={"directed": delivery.directed, "parent": claimed.id})

    problems = [*decision.dropped, *refused]
    for dropped in problems:
        record_event(connection, claimed.conversation_id, "dropped", claimed.recipient,
                     message_id=claimed.id, target=dropped.mention, detail=dropped.as_json(),
                     at=now)
    if problems and claimed.kind != NOTICE \
            and used + len(handoffs) < conversation["max_messages"]:
        _send_notice(connection, claimed, problems, now)
    return handoffs, problems


def bury_expired(store: Store, now: dt.datetime | None = None) -> list[int]:
    """Mark dead every held message whose lease expired on its last allowed attempt.

    Such a message was taken by workers that all stopped before finishing it, so no claim
    will take it again.
    """
    now = now or utc_now()
    buried = []
    with store.engine.connect() as connection:
        candidates = connection.execute(
            team_messages.select().with_only_columns(team_messages.c.id,
                                                     team_messages.c.conversation_id)
            .where(team_messages.c.status == PROCESSING,
                   team_messages.c.lease_expires_at < now,
                   team_messages.c.attempts >= team_messages.c.max_attempts)).all()
    for message_id, conversation_id in candidates:
        with store.begin() as connection:
            reason = "every attempt ended without a result (the worker holding it stopped)"
            result = connection.execute(
                update(team_messages)
                .where(team_messages.c.id == message_id, team_messages.c.status == PROCESSING,
                       team_messages.c.lease_expires_at < now)
                .values(status=DEAD, lease_owner=None, lease_expires_at=None,
                        finished_at=now, last_error=reason))
            if result.rowcount != 1:
                continue
            lock_conversations(connection, [conversation_id])
            record_event(connection, conversation_id, "dead", SYSTEM, message_id=message_id,
                         detail=reason, at=now)
            finish_completed(connection, [conversation_id], now)
        buried.append(message_id)
        log.error("message %s is dead: %s", message_id, reason)
    return buried


def _check_files(paths: list[str], files_dir: Path) -> tuple[list[dict], list[Dropped]]:
    accepted, refused = [], []
    for path_text in paths:
        try:
            accepted.append(file_record(resolve_outgoing(path_text, files_dir), files_dir))
        except FileRefused as error:
            refused.append(Dropped(f"send_file:{path_text}", DropReason.FILE_REFUSED,
                                   str(error)))
    return accepted, refused


def _send_notice(connection: Connection, claimed: Claimed, problems: list[Dropped],
                 now: dt.datetime) -> None:
    """Tell the agent which of its hand-offs or files did not go out, and why."""
    lines = [f"- {item.mention}: {item.detail}" for item in problems]
    body = ("Some parts of your last reply were not delivered:\n" + "\n".join(lines)
            + "\nFix the mention or the file path if the hand-off is still needed.")
    message_id = insert_message(connection, claimed.conversation_id, NewMessage(
        sender=SYSTEM, recipient=claimed.recipient, directed=body, shared_context="",
        body=body, depth=claimed.depth, hops=claimed.hops, kind=NOTICE,
        parent_id=claimed.id,
    ), claimed.max_attempts, now)
    record_event(connection, claimed.conversation_id, "notice", SYSTEM,
                 message_id=message_id, target=claimed.recipient, at=now,
                 detail={"problems": len(problems)})


def _notify(connection: Connection, claimed: Claimed, recipient: str, text: str,
            now: dt.datetime) -> None:
    """Queue a text for a person once; the same text to the same person is kept only once."""
    text = scrub(text)
    key = hashlib.sha256(f"{recipient}\n{text}".encode()).hexdigest()
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" \
        else sqlite.insert
    statement = dialect_insert(team_notifications).values(
        conversation_id=claimed.conversation_id, message_id=claimed.id,
        recipient=scrub(recipient), text=text, dedup_key=key, created_at=now,
    ).on_conflict_do_nothing(index_elements=["dedup_key"])
    if connection.execute(statement).rowcount:
        record_event(connection, claimed.conversation_id, "notified", claimed.recipient,
                     message_id=claimed.id, target=recipient, detail=text, at=now)

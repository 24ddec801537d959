"""Finishing a claimed message: store the reply and its hand-offs, or retry, or give up.

Each finish is one transaction that starts by checking the worker still holds the
attempt, so a worker that lost its lease can never add hand-offs or answer twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, update
from sqlalchemy.dialects import postgresql, sqlite

from ..scrub import scrub
from ..store import Store, utc_now
from ..store.schema import team_messages, team_notifications
from .conversations import finish_if_complete
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
    NewMessage,
    QueueOptions,
    insert_message,
    lock_conversation,
    mark_finished,
    message_count,
    record_attempt,
    record_event,
)
from .routing import route
from .settings import TeamSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What finishing one message did: its new status, hand-offs, and the answer if any."""

    status: str
    handoffs: tuple[int, ...] = ()
    dropped: tuple[Dropped, ...] = ()
    answer: str | None = None


def finish_with_reply(store: Store, claimed: Claimed, reply: AgentReply,
                      settings: TeamSettings, files_dir: Path) -> Outcome:
    """Store the agent's reply, enqueue its hand-offs and answer the conversation if it ended."""
    text = scrub(reply.text)
    routed_text, paths = extract_files(text)
    accepted, refused = _check_files(paths, files_dir)
    now = utc_now()

    with store.begin() as connection:
        mark_finished(connection, claimed, DONE, now, reply=text, finished_at=now,
                      files=json.dumps(accepted))
        conversation = lock_conversation(connection, claimed.conversation_id)
        used = message_count(connection, claimed.conversation_id)
        decision = route(claimed.recipient, routed_text, settings, RouteContext(
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
                         message_id=claimed.id, target=dropped.mention,
                         detail=dropped.as_json(), at=now)
        if problems and claimed.kind != NOTICE \
                and used + len(handoffs) < conversation["max_messages"]:
            _send_notice(connection, claimed, problems, now)

        for recipient, note in reply.notifications:
            _notify(connection, claimed, recipient, note, now)
        record_attempt(connection, claimed, DONE, now)
        record_event(connection, claimed.conversation_id, "replied", claimed.recipient,
                     message_id=claimed.id, at=now,
                     detail={"attempt": claimed.attempt, "handoffs": len(handoffs),
                             "dropped": len(problems), **reply.meta})
        answer = finish_if_complete(connection, claimed.conversation_id, now)
    return Outcome(DONE, tuple(handoffs), tuple(problems), answer)


def finish_with_failure(store: Store, claimed: Claimed, error: str, options: QueueOptions, *,
                        retry_after_s: float | None = None, permanent: bool = False) -> Outcome:
    """Schedule a retry after the backoff, or mark the message dead when none is left."""
    error = scrub(error)
    now = utc_now()
    give_up = permanent or claimed.attempt >= claimed.max_attempts

    with store.begin() as connection:
        if not give_up:
            wait_s = options.backoff_s(claimed.attempt, retry_after_s)
            mark_finished(connection, claimed, PENDING, now, last_error=error,
                          available_at=now + dt.timedelta(seconds=wait_s))
            record_attempt(connection, claimed, "retry", now, error)
            record_event(connection, claimed.conversation_id, "retry", claimed.worker,
                         message_id=claimed.id, target=claimed.recipient, at=now,
                         detail={"attempt": claimed.attempt, "wait_s": wait_s, "error": error})
            return Outcome(PENDING)

        reason = error if permanent else (f"{error} (gave up after {claimed.attempt} of "
                                          f"{claimed.max_attempts} attempts)")
        mark_finished(connection, claimed, DEAD, now, last_error=reason, finished_at=now)
        record_attempt(connection, claimed, DEAD, now, error)
        lock_conversation(connection, claimed.conversation_id)
        record_event(connection, claimed.conversation_id, "dead", claimed.worker,
                     message_id=claimed.id, target=claimed.recipient, detail=reason, at=now)
        answer = finish_if_complete(connection, claimed.conversation_id, now)
    log.error("message %s to %s is dead: %s", claimed.id, claimed.recipient, reason)
    return Outcome(DEAD, answer=answer)


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
            lock_conversation(connection, conversation_id)
            record_event(connection, conversation_id, "dead", SYSTEM, message_id=message_id,
                         detail=reason, at=now)
            finish_if_complete(connection, conversation_id, now)
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

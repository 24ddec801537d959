"""The durable message queue in the store: enqueue, finish, retry, and its statements.

A message is ``pending`` until a worker claims it (``claims.py``), ``processing`` while
the worker holds its lease, and ``done`` or ``dead`` at the end. Every finish checks that
the worker still holds the attempt it claimed, so a worker whose lease expired and whose
message another worker took again cannot store a second result.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..errors import UsageError
from ..scrub import scrub
from ..store import Store, as_utc, utc_now
from ..store.schema import (
    team_attempts,
    team_conversations,
    team_events,
    team_mailboxes,
    team_messages,
)

log = logging.getLogger(__name__)

PENDING, PROCESSING, DONE, DEAD = "pending", "processing", "done", "dead"
OPEN_STATUSES = (PENDING, PROCESSING)
TASK, NOTICE = "task", "notice"
# The sender name of messages the tool writes itself (notices of undelivered mentions).
SYSTEM = "tinysdlc-nb"


@dataclass(frozen=True)
class QueueOptions:
    """Retry, backoff and lease settings, from the ``[team]`` section of config.toml."""

    max_attempts: int = 5
    backoff_base_s: float = 2.0
    backoff_max_s: float = 300.0
    lease_s: float = 60.0

    @classmethod
    def from_config(cls, team: dict[str, Any]) -> QueueOptions:
        return cls(max_attempts=team["max_attempts"], backoff_base_s=team["backoff_base_s"],
                   backoff_max_s=team["backoff_max_s"], lease_s=team["lease_s"])

    def backoff_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Return the wait after failed attempt number ``attempt`` (1 for the first)."""
        wait = min(self.backoff_max_s, self.backoff_base_s * 2 ** max(attempt - 1, 0))
        if retry_after_s is not None:
            wait = max(wait, min(retry_after_s, self.backoff_max_s))
        return wait


@dataclass(frozen=True)
class NewMessage:
    """A message to insert: who sends it to whom, and where it sits in its conversation."""

    sender: str
    recipient: str
    directed: str
    shared_context: str
    body: str
    depth: int = 0
    hops: tuple[tuple[str, str], ...] = ()
    kind: str = TASK
    parent_id: int | None = None


@dataclass(frozen=True)
class Claimed:
    """A message a worker holds: its row plus the attempt number and lease it claimed."""

    id: int
    conversation_id: int
    parent_id: int | None
    sender: str
    recipient: str
    kind: str
    depth: int
    hops: tuple[tuple[str, str], ...]
    body: str
    attempt: int
    max_attempts: int
    worker: str
    claimed_at: dt.datetime


class LeaseLost(RuntimeError):
    """The worker's lease expired and another worker took the message; drop the result."""


# Statements of the hot path, built once: building a statement per call costs more than
# running it on SQLite.
_INSERT_MESSAGE = insert(team_messages)
_INSERT_EVENT = insert(team_events)
_INSERT_ATTEMPT = insert(team_attempts)
_FINISH_HELD = (update(team_messages)
                .where(team_messages.c.id == bindparam("held_id"),
                       team_messages.c.status == PROCESSING,
                       team_messages.c.lease_owner == bindparam("held_worker"),
                       team_messages.c.attempts == bindparam("held_attempt")))
_READ_CONVERSATION = select(team_conversations).where(
    team_conversations.c.id == bindparam("conversation"))
_LOCK_CONVERSATION = _READ_CONVERSATION.with_for_update()
_LOCK_CONVERSATIONS = (select(team_conversations.c.id)
                       .where(team_conversations.c.id.in_(bindparam("ids", expanding=True)))
                       .order_by(team_conversations.c.id).with_for_update())
_COUNT_MESSAGES = select(func.count()).select_from(team_messages).where(
    team_messages.c.conversation_id == bindparam("conversation"))
_COUNT_OPEN = _COUNT_MESSAGES.where(team_messages.c.status.in_(OPEN_STATUSES))


def insert_message(connection: Connection, conversation_id: int, message: NewMessage,
                   max_attempts: int, now: dt.datetime) -> int:
    """Insert one pending message and return its id; the text is redacted first."""
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" \
        else sqlite.insert
    connection.execute(dialect_insert(team_mailboxes).values(agent=message.recipient)
                       .on_conflict_do_nothing(index_elements=["agent"]))
    result = connection.execute(_INSERT_MESSAGE, dict(
        conversation_id=conversation_id, parent_id=message.parent_id, sender=message.sender,
        recipient=message.recipient, kind=message.kind, depth=message.depth,
        hops=json.dumps([list(hop) for hop in message.hops]),
        directed=scrub(message.directed), shared_context=scrub(message.shared_context),
        body=scrub(message.body), status=PENDING, attempts=0, max_attempts=max_attempts,
        available_at=now, created_at=now,
    ))
    return result.inserted_primary_key[0]


def record_event(connection: Connection, conversation_id: int, kind: str, actor: str, *,
                 message_id: int | None = None, target: str | None = None,
                 detail: Any = "", at: dt.datetime | None = None) -> None:
    """Append one event of a conversation; the detail is stored redacted, as JSON."""
    connection.execute(_INSERT_EVENT, dict(
        conversation_id=conversation_id, message_id=message_id, at=at or utc_now(), kind=kind,
        actor=scrub(actor), target=scrub(target) if target else target,
        detail=json.dumps(_scrub_detail(detail))))


def mark_finished(connection: Connection, claimed: Claimed, status: str, now: dt.datetime,
                  **values: Any) -> bool:
    """Move a held message to ``status``; return False when the worker no longer holds it.

    This is the first statement of a finishing transaction, so on SQLite it also takes
    the write lock before anything is read.
    """
    result = connection.execute(_FINISH_HELD, {
        "held_id": claimed.id, "held_worker": claimed.worker,
        "held_attempt": claimed.attempt, "status": status, "lease_owner": None,
        "lease_expires_at": None, **values})
    return result.rowcount == 1


def release_held(connection: Connection, claimed: Claimed, now: dt.datetime) -> bool:
    """Put a held message back as pending without spending its attempt."""
    result = connection.execute(_FINISH_HELD, {
        "held_id": claimed.id, "held_worker": claimed.worker,
        "held_attempt": claimed.attempt, "status": PENDING, "lease_owner": None,
        "lease_expires_at": None, "attempts": claimed.attempt - 1, "available_at": now})
    return result.rowcount == 1


def attempt_row(claimed: Claimed, outcome: str, now: dt.datetime,
                error: str | None = None) -> dict[str, Any]:
    """Return the ``team_attempts`` row of one finished hand-over."""
    return dict(message_id=claimed.id, attempt=claimed.attempt, worker=claimed.worker,
                agent=claimed.recipient, claimed_at=claimed.claimed_at, finished_at=now,
                outcome=outcome, error=scrub(error) if error else None)


def record_attempts(connection: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        connection.execute(_INSERT_ATTEMPT, rows)


def lock_conversations(connection: Connection, conversation_ids: list[int]) -> None:
    """Lock conversations on PostgreSQL, in id order so that two workers cannot deadlock.

    Without the lock, two workers finishing the last two branches of one conversation at
    once would each see the other's branch still open, and neither would write the answer.
    """
    if connection.dialect.name == "postgresql" and conversation_ids:
        connection.execute(_LOCK_CONVERSATIONS, {"ids": sorted(conversation_ids)}).all()


def lock_conversation(connection: Connection, conversation_id: int) -> dict[str, Any]:
    """Read a conversation row, locked on PostgreSQL (see ``lock_conversations``)."""
    query = _LOCK_CONVERSATION if connection.dialect.name == "postgresql" \
        else _READ_CONVERSATION
    return dict(connection.execute(query, {"conversation": conversation_id}).mappings().one())


def message_count(connection: Connection, conversation_id: int) -> int:
    return connection.execute(_COUNT_MESSAGES, {"conversation": conversation_id}).scalar_one()


def open_count(connection: Connection, conversation_id: int) -> int:
    return connection.execute(_COUNT_OPEN, {"conversation": conversation_id}).scalar_one()


def release(store: Store, claimed: Claimed, reason: str) -> None:
    """Give a held message back without spending its attempt (the agent could not start)."""
    now = utc_now()
    with store.begin() as connection:
        if release_held(connection, claimed, now):
            record_event(connection, claimed.conversation_id, "released", claimed.worker,
                         message_id=claimed.id, target=claimed.recipient, detail=reason,
                         at=now)


def retry_dead(store: Store, message_id: int, by: str) -> dict[str, Any]:
    """Put a dead message back in the queue with a fresh set of attempts; return its row.

    Attempt numbers keep counting up, so each stays unique to one hand-over. The
    conversation reopens when it had already been answered, so the answer is
    rewritten once the retried branch ends.
    """
    now = utc_now()
    with store.begin() as connection:
        result = connection.execute(
            update(team_messages)
            .where(team_messages.c.id == message_id, team_messages.c.status == DEAD)
            .values(status=PENDING, available_at=now, finished_at=None, last_error=None,
                    max_attempts=team_messages.c.attempts + team_messages.c.max_attempts))
        row = connection.execute(select(team_messages).where(
            team_messages.c.id == message_id)).mappings().first()
        if row is None:
            raise UsageError(f"message {message_id} not found; list messages with "
                             f"`tinysdlc-nb queue status`")
        if result.rowcount != 1:
            raise UsageError(f"message {message_id} is {row['status']}, not dead; only a "
                             f"dead message can be retried")

        connection.execute(update(team_conversations)
                           .where(team_conversations.c.id == row["conversation_id"])
                           .values(status="open", finished_at=None, answer=None))
        record_event(connection, row["conversation_id"], "retried", by, message_id=message_id,
                     target=row["recipient"], detail="put back in the queue by a person",
                     at=now)
    return dict(row)


def queue_counts(store: Store) -> dict[str, Any]:
    """Return the number of messages per status, per recipient, and the oldest pending age."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(team_messages.c.recipient, team_messages.c.status, func.count(),
                   func.min(team_messages.c.created_at))
            .group_by(team_messages.c.recipient, team_messages.c.status)).all()

    now = utc_now()
    totals = {PENDING: 0, PROCESSING: 0, DONE: 0, DEAD: 0}
    agents: dict[str, dict[str, int]] = {}
    oldest: dt.datetime | None = None
    for recipient, status, count, first_created in rows:
        totals[status] = totals.get(status, 0) + count
        agents.setdefault(recipient, {PENDING: 0, PROCESSING: 0, DONE: 0, DEAD: 0})[status] = count
        if status == PENDING and first_created is not None:
            created = as_utc(first_created)
            oldest = created if oldest is None else min(oldest, created)
    return {"totals": totals, "agents": agents,
            "oldest_pending_age_s": (now - oldest).total_seconds() if oldest else None}


def _scrub_detail(detail: Any) -> Any:
    from ..scrub import scrub_data

    return scrub_data(detail)

"""The durable message queue in the store: enqueue, claim with a lease, finish, retry.

A message is ``pending`` until a worker claims it, ``processing`` while the worker holds
its lease, and ``done`` or ``dead`` at the end. Two rules make it safe with several
workers on several machines:

- A claim is one ``UPDATE ... WHERE id = (SELECT ...) RETURNING`` statement. On PostgreSQL
  the inner select takes the row with ``FOR UPDATE SKIP LOCKED``; on SQLite the statement
  takes the database's write lock before it reads. Either way one attempt number goes to
  one worker only, and every finish checks that the worker still holds that attempt.
- Only the oldest unfinished message of each recipient can be claimed, so every agent
  sees its messages one at a time and in order while different agents run in parallel.
  A message whose lease expired is its recipient's oldest one, so it is taken again first.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.orm import aliased

from ..errors import UsageError
from ..scrub import scrub
from ..store import Store, as_utc, utc_now
from ..store.schema import team_attempts, team_conversations, team_events, team_messages

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
    lease_s: float = 600.0

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


def insert_message(connection: Connection, conversation_id: int, message: NewMessage,
                   max_attempts: int, now: dt.datetime) -> int:
    """Insert one pending message and return its id; the text is redacted first."""
    result = connection.execute(insert(team_messages).values(
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
    connection.execute(insert(team_events).values(
        conversation_id=conversation_id, message_id=message_id, at=at or utc_now(), kind=kind,
        actor=actor, target=target, detail=json.dumps(_scrub_detail(detail))))


def claim(store: Store, worker: str, options: QueueOptions, *,
          recipients: Collection[str] | None = None,
          now: dt.datetime | None = None) -> Claimed | None:
    """Take the oldest claimable message for ``worker``, or return None when there is none.

    Claimable: the oldest unfinished message of its recipient, and either pending and due,
    or processing with an expired lease and attempts left.
    """
    now = now or utc_now()
    head = aliased(team_messages)
    oldest_open = (select(func.min(head.c.id))
                   .where(head.c.recipient == team_messages.c.recipient,
                          head.c.status.in_(OPEN_STATUSES))
                   .scalar_subquery())
    claimable = or_(
        and_(team_messages.c.status == PENDING, team_messages.c.available_at <= now),
        and_(team_messages.c.status == PROCESSING, team_messages.c.lease_expires_at < now,
             team_messages.c.attempts < team_messages.c.max_attempts),
    )
    candidate = (select(team_messages.c.id)
                 .where(team_messages.c.status.in_(OPEN_STATUSES), claimable,
                        team_messages.c.id == oldest_open)
                 .order_by(team_messages.c.id).limit(1))
    if recipients is not None:
        candidate = candidate.where(team_messages.c.recipient.in_(list(recipients)))
    if store.dialect == "postgresql":
        candidate = candidate.with_for_update(skip_locked=True)

    statement = (update(team_messages)
                 .where(team_messages.c.id == candidate.scalar_subquery(), claimable)
                 .values(status=PROCESSING, lease_owner=worker,
                         lease_expires_at=now + dt.timedelta(seconds=options.lease_s),
                         attempts=team_messages.c.attempts + 1,
                         started_at=func.coalesce(team_messages.c.started_at, now))
                 .returning(*team_messages.c))
    with store.begin() as connection:
        row = connection.execute(statement).mappings().first()
    if row is None:
        return None
    return Claimed(id=row["id"], conversation_id=row["conversation_id"],
                   parent_id=row["parent_id"], sender=row["sender"],
                   recipient=row["recipient"], kind=row["kind"], depth=row["depth"],
                   hops=tuple(tuple(hop) for hop in json.loads(row["hops"])),
                   body=row["body"], attempt=row["attempts"],
                   max_attempts=row["max_attempts"], worker=worker, claimed_at=now)


def mark_finished(connection: Connection, claimed: Claimed, status: str, now: dt.datetime,
                  **values: Any) -> None:
    """Move a held message to ``status``; raise LeaseLost when the worker no longer holds it.

    This is the first statement of a finishing transaction, so on SQLite it also takes
    the write lock before anything is read.
    """
    result = connection.execute(
        update(team_messages)
        .where(team_messages.c.id == claimed.id, team_messages.c.status == PROCESSING,
               team_messages.c.lease_owner == claimed.worker,
               team_messages.c.attempts == claimed.attempt)
        .values(status=status, lease_owner=None, lease_expires_at=None, **values))
    if result.rowcount != 1:
        raise LeaseLost(f"message {claimed.id} attempt {claimed.attempt} is no longer held "
                        f"by {claimed.worker}")


def record_attempt(connection: Connection, claimed: Claimed, outcome: str, now: dt.datetime,
                   error: str | None = None) -> None:
    connection.execute(insert(team_attempts).values(
        message_id=claimed.id, attempt=claimed.attempt, worker=claimed.worker,
        agent=claimed.recipient, claimed_at=claimed.claimed_at, finished_at=now,
        outcome=outcome, error=scrub(error) if error else None))


def lock_conversation(connection: Connection, conversation_id: int) -> dict[str, Any]:
    """Read a conversation row, locked on PostgreSQL so finishes in it run one at a time.

    Without the lock, two workers finishing the last two branches at once would each see
    the other's branch still open, and neither would write the answer.
    """
    query = select(team_conversations).where(team_conversations.c.id == conversation_id)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    return dict(connection.execute(query).mappings().one())


def message_count(connection: Connection, conversation_id: int) -> int:
    return connection.execute(select(func.count()).select_from(team_messages).where(
        team_messages.c.conversation_id == conversation_id)).scalar_one()


def open_count(connection: Connection, conversation_id: int) -> int:
    return connection.execute(select(func.count()).select_from(team_messages).where(
        team_messages.c.conversation_id == conversation_id,
        team_messages.c.status.in_(OPEN_STATUSES))).scalar_one()


def renew_leases(store: Store, held: Collection[Claimed], lease_s: float) -> int:
    """Extend the leases a worker still holds; return how many it still holds.

    A worker renews while an agent works, so a reply slower than ``lease_s`` is not taken
    by a second worker. A worker that stops (or is killed) stops renewing.
    """
    if not held:
        return 0
    expires = utc_now() + dt.timedelta(seconds=lease_s)
    renewed = 0
    with store.begin() as connection:
        for claimed in held:
            result = connection.execute(
                update(team_messages)
                .where(team_messages.c.id == claimed.id, team_messages.c.status == PROCESSING,
                       team_messages.c.lease_owner == claimed.worker,
                       team_messages.c.attempts == claimed.attempt)
                .values(lease_expires_at=expires))
            renewed += result.rowcount
    return renewed


def release(store: Store, claimed: Claimed, reason: str) -> None:
    """Give a held message back without spending its attempt (the agent could not start)."""
    now = utc_now()
    with store.begin() as connection:
        result = connection.execute(
            update(team_messages)
            .where(team_messages.c.id == claimed.id, team_messages.c.status == PROCESSING,
                   team_messages.c.lease_owner == claimed.worker,
                   team_messages.c.attempts == claimed.attempt)
            .values(status=PENDING, lease_owner=None, lease_expires_at=None,
                    attempts=team_messages.c.attempts - 1, available_at=now))
        if result.rowcount == 1:
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
                           .values(status="open", finished_at=None))
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

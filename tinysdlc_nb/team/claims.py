"""Claiming queue messages: which message a worker may take next, and its lease.

A claim is one ``UPDATE ... WHERE id = (SELECT ...) RETURNING`` statement. On PostgreSQL
the inner select takes the row with ``FOR UPDATE SKIP LOCKED``; on SQLite the statement
takes the database's write lock before it reads. Either way one attempt number goes to
one worker only. Only the oldest open message of each mailbox can be claimed, and not
while another message of that mailbox is held, so each agent sees its messages one at a
time and in order while different agents run in parallel.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import aliased

from ..store import Store, as_utc, utc_now
from ..store.schema import team_mailboxes, team_messages
from .queue import OPEN_STATUSES, PENDING, PROCESSING, Claimed, QueueOptions

_ANY_DUE = (select(team_messages.c.id)
            .where(or_(and_(team_messages.c.status == PENDING,
                            team_messages.c.available_at <= bindparam("now")),
                       and_(team_messages.c.status == PROCESSING,
                            team_messages.c.lease_expires_at < bindparam("now"))))
            .limit(1))
_FOLLOWING = (select(team_messages.c.id, team_messages.c.status, team_messages.c.available_at)
              .where(team_messages.c.recipient == bindparam("recipient"),
                     team_messages.c.status.in_(OPEN_STATUSES),
                     team_messages.c.id > bindparam("after"))
              .order_by(team_messages.c.id).limit(bindparam("count")))
_TAKE_FOLLOWERS = (update(team_messages)
                   .where(team_messages.c.id.in_(bindparam("ids", expanding=True)),
                          team_messages.c.status == PENDING)
                   .values(status=PROCESSING, lease_owner=bindparam("worker"),
                           lease_expires_at=bindparam("expires"),
                           attempts=team_messages.c.attempts + 1,
                           started_at=func.coalesce(team_messages.c.started_at,
                                                    bindparam("now")))
                   .returning(*team_messages.c))


def has_work(store: Store, now: dt.datetime | None = None) -> bool:
    """Return True when some message may be claimable, by a read that takes no write lock.

    An idle worker asks this before each claim, so it does not take SQLite's write lock
    hundreds of times a second while the queue is empty.
    """
    now = now or utc_now()
    with store.engine.connect() as connection:
        return connection.execute(_ANY_DUE, {"now": now}).first() is not None


def claim(store: Store, worker: str, options: QueueOptions, *,
          recipients: Collection[str] | None = None,
          now: dt.datetime | None = None) -> Claimed | None:
    """Take the oldest claimable message for ``worker``, or return None when there is none.

    Claimable: the oldest unfinished message of its recipient, and either pending and due,
    or processing with an expired lease and attempts left.
    """
    batch = claim_batch(store, worker, options, recipients=recipients, now=now, limit=1)
    return batch[0] if batch else None


def claim_batch(store: Store, worker: str, options: QueueOptions, *,
                recipients: Collection[str] | None = None, now: dt.datetime | None = None,
                limit: int | Callable[[str], int] = 1) -> list[Claimed]:
    """Claim the oldest claimable message and up to ``limit - 1`` more of the same agent.

    ``limit`` may be a function of the agent id, so a slow agent can take one message at a
    time while a fast one takes many.

    The extra messages are the ones that follow it in the agent's mailbox, as long as each
    is pending and due, so the agent still sees them in order. While the first one is held
    no other worker can claim any of them, because only a mailbox's oldest open message is
    claimable.
    """
    now = now or utc_now()
    expires = now + dt.timedelta(seconds=options.lease_s)
    params = {"now": now, "worker": worker, "expires": expires}
    if recipients is not None:
        params["recipients"] = list(recipients)

    with store.begin() as connection:
        statement = _claim_statement(store.dialect, recipients is not None)
        head = connection.execute(statement, params).mappings().first()
        if head is None:
            return []
        rows = [head]
        count = limit(head["recipient"]) if callable(limit) else limit
        if count > 1:
            rows += _claim_followers(connection, head, count - 1, now, worker, expires)
        _refresh_late_lease(connection, [row["id"] for row in rows], now, options.lease_s)
    return [_claimed(row, worker, now) for row in rows]


def _refresh_late_lease(connection: Connection, ids: list[int], claimed_at: dt.datetime,
                        lease_s: float) -> None:
    """Restart the lease from now when the claim waited long for the database's lock.

    The lease was computed before the wait, so a long wait would grant a lease that had
    already run out, and the next claim would take the same message again.
    """
    now = utc_now()
    if (now - claimed_at).total_seconds() < lease_s / 10:
        return
    connection.execute(update(team_messages)
                       .where(team_messages.c.id.in_(ids))
                       .values(lease_expires_at=now + dt.timedelta(seconds=lease_s)))


def _claim_followers(connection: Connection, head: Any, count: int, now: dt.datetime,
                     worker: str, expires: dt.datetime) -> list[Any]:
    following = connection.execute(_FOLLOWING, {
        "recipient": head["recipient"], "after": head["id"], "count": count}).all()
    ids = []
    for message_id, status, available_at in following:
        if status != PENDING or as_utc(available_at) > now:
            break
        ids.append(message_id)
    if not ids:
        return []

    rows = connection.execute(_TAKE_FOLLOWERS, {
        "ids": ids, "worker": worker, "expires": expires, "now": now}).mappings().all()
    return sorted(rows, key=lambda row: row["id"])


def _claimed(row: Any, worker: str, now: dt.datetime) -> Claimed:
    return Claimed(id=row["id"], conversation_id=row["conversation_id"],
                   parent_id=row["parent_id"], sender=row["sender"],
                   recipient=row["recipient"], kind=row["kind"], depth=row["depth"],
                   hops=tuple(tuple(hop) for hop in json.loads(row["hops"])),
                   body=row["body"], attempt=row["attempts"],
                   max_attempts=row["max_attempts"], worker=worker, claimed_at=now)


@functools.cache
def _claim_statement(dialect: str, filtered: bool):
    """Build the claim statement once per dialect; the values are bound at each call.

    Building it anew for every claim costs more than running it.
    """
    now = bindparam("now", type_=team_messages.c.available_at.type)

    def claimable(table):
        return or_(
            and_(table.c.status == PENDING, table.c.available_at <= now),
            and_(table.c.status == PROCESSING, table.c.lease_expires_at < now,
                 table.c.attempts < table.c.max_attempts),
        )

    head = aliased(team_messages, name="head")
    earlier = aliased(team_messages, name="earlier")
    oldest_open = (select(func.min(earlier.c.id))
                   .where(earlier.c.recipient == team_mailboxes.c.agent,
                          earlier.c.status.in_(OPEN_STATUSES))
                   .scalar_subquery())
    # A message put back by `queue retry` can be older than one a worker holds; the
    # mailbox then waits for the held one, so the agent never gets two at once.
    busy = aliased(team_messages, name="busy")
    held_elsewhere = (select(busy.c.id)
                      .where(busy.c.recipient == team_mailboxes.c.agent,
                             busy.c.status == PROCESSING, busy.c.id != head.c.id,
                             busy.c.lease_expires_at >= now)
                      .exists())
    candidate = (select(head.c.id)
                 .select_from(team_mailboxes.join(head, head.c.id == oldest_open))
                 .where(claimable(head), ~held_elsewhere)
                 .order_by(head.c.id).limit(1))
    if filtered:
        candidate = candidate.where(
            team_mailboxes.c.agent.in_(bindparam("recipients", expanding=True)))
    if dialect == "postgresql":
        candidate = candidate.with_for_update(of=head, skip_locked=True)

    return (update(team_messages)
            .where(team_messages.c.id == candidate.scalar_subquery(), claimable(team_messages))
            .values(status=PROCESSING, lease_owner=bindparam("worker"),
                    lease_expires_at=bindparam("expires",
                                               type_=team_messages.c.lease_expires_at.type),
                    attempts=team_messages.c.attempts + 1,
                    started_at=func.coalesce(team_messages.c.started_at, now))
            .returning(*team_messages.c))


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

"""The rows behind delivery: creating deliveries, claiming due ones under a lease, recording
attempts and marking notifications delivered.

A claim is one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING`` (the
lock clause only on PostgreSQL; SQLite runs one writer at a time). It sets the status to
``sending``, moves ``next_attempt_at`` to the end of a lease and adds one to ``attempts``.
The new ``attempts`` value is the claim's fencing token: every later write of the
claimer requires it, so a process whose lease ran out and was taken over writes nothing.
A process that dies mid-send leaves a lease that runs out, and the next pass takes it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Integer,
    String,
    and_,
    exists,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from ..store import Store
from ..store.schema import (
    channel_attempts,
    channel_inbound,
    notification_deliveries,
    team_notifications,
)
from .registry import DIRECT_PREFIXES, direct_target

PENDING, SENDING, RETRYING, DELIVERED = "pending", "sending", "retrying", "delivered"
SENT, RATE_LIMITED, FAILED = "sent", "rate_limited", "failed"
INBOUND_KEY = "telegram-inbound:"
CLAIM_BATCH = 50

_deliveries = notification_deliveries
_notifications = team_notifications


@dataclass(frozen=True)
class Claim:
    """A delivery this process holds: ``attempts`` is the fencing token of the claim."""

    id: int
    notification_id: int
    channel: str
    parts_sent: int
    attempts: int


def channels_for(recipient: str, settings: dict[str, Any]) -> list[str]:
    """Return the channels that must carry a notification to ``recipient``."""
    direct = direct_target(recipient)
    if direct is not None:
        return [direct[0]] if direct[0] in settings["configured"] else []
    return list(settings["notify"])


def delivery_plans(settings: dict[str, Any]) -> list[tuple[str, bool]]:
    """Return (channel, direct) for each channel that carries notifications: the notify
    channels for everyone, and each configured channel for the notifications addressed to
    one of its chats."""
    plans = [(name, False) for name in settings["notify"]]
    plans += [(channel, True) for channel in sorted(set(DIRECT_PREFIXES.values()))
              if channel in settings["configured"]]
    return plans


def owed_condition(channel: str, direct: bool) -> list[Any]:
    """Return the WHERE terms of the undelivered notifications that ``channel`` carries."""
    condition = [_notifications.c.delivered_at.is_(None)]
    if direct:
        prefixes = [prefix for prefix, name in DIRECT_PREFIXES.items() if name == channel]
        condition.append(_notifications.c.recipient.startswith(prefixes[0]))
    else:
        for prefix in DIRECT_PREFIXES:
            condition.append(~_notifications.c.recipient.startswith(prefix))
    return condition


def create_deliveries(store: Store, settings: dict[str, Any], now: dt.datetime) -> int:
    """Add a pending delivery for each undelivered notification and channel that lacks one."""
    created = 0
    with store.begin() as connection:
        for channel, direct in delivery_plans(settings):
            created += _insert_missing(connection, channel, direct, now)
    return created


def _insert_missing(connection: Connection, channel: str, direct: bool,
                    now: dt.datetime) -> int:
    missing = ~exists().where(_deliveries.c.notification_id == _notifications.c.id,
                              _deliveries.c.channel == channel)
    condition = [*owed_condition(channel, direct), missing]

    zero = literal(0, Integer)
    at = literal(now, DateTime(timezone=True))
    rows = select(_notifications.c.id, literal(channel, String), literal(PENDING, String),
                  zero, zero, zero, at, at).where(and_(*condition))
    columns = ["notification_id", "channel", "status", "parts_total", "parts_sent", "attempts",
               "next_attempt_at", "created_at"]
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" \
        else sqlite.insert
    statement = dialect_insert(_deliveries).from_select(columns, rows).on_conflict_do_nothing(
        index_elements=["notification_id", "channel"])
    return max(connection.execute(statement).rowcount, 0)


def claim_due(store: Store, settings: dict[str, Any], now: dt.datetime,
              lease_s: float) -> list[Claim]:
    """Take up to CLAIM_BATCH due deliveries for this process.

    Only deliveries the current settings still route are taken: a channel removed from
    ``notify`` sends nothing more, even for notifications queued while it was listed.
    """
    plans = delivery_plans(settings)
    if not plans:
        return []
    routed = or_(*[and_(_deliveries.c.channel == channel,
                        exists(select(literal(1)).where(
                            _notifications.c.id == _deliveries.c.notification_id,
                            *owed_condition(channel, direct))))
                   for channel, direct in plans])
    due = and_(_deliveries.c.status != DELIVERED, _deliveries.c.next_attempt_at <= now,
               routed)
    candidates = (select(_deliveries.c.id).where(due)
                  .order_by(_deliveries.c.next_attempt_at, _deliveries.c.id).limit(CLAIM_BATCH))
    if store.dialect == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    statement = (update(_deliveries).where(_deliveries.c.id.in_(candidates.scalar_subquery()),
                                           due)
                 .values(status=SENDING, next_attempt_at=now + dt.timedelta(seconds=lease_s),
                         attempts=_deliveries.c.attempts + 1)
                 .returning(_deliveries.c.id, _deliveries.c.notification_id,
                            _deliveries.c.channel, _deliveries.c.parts_sent,
                            _deliveries.c.attempts))
    with store.begin() as connection:
        rows = connection.execute(statement).all()
    return sorted((Claim(*row) for row in rows), key=lambda claim: claim.id)


def fenced_update(connection: Connection, claim: Claim, **values: Any) -> bool:
    """Write ``values`` to the claimed delivery; False when another process took it over."""
    result = connection.execute(update(_deliveries).where(
        _deliveries.c.id == claim.id, _deliveries.c.status == SENDING,
        _deliveries.c.attempts == claim.attempts).values(**values))
    return result.rowcount == 1


def record_attempt(connection: Connection, claim: Claim, part: int, outcome: str,
                   now: dt.datetime, *, http_status: int | None = None,
                   retry_after_s: float | None = None, error: str | None = None) -> None:
    connection.execute(insert(channel_attempts).values(
        delivery_id=claim.id, at=now, part=part, http_status=http_status, outcome=outcome,
        retry_after_s=retry_after_s, error=error))


def finish_notification(connection: Connection, notification_id: int,
                        settings: dict[str, Any], now: dt.datetime) -> bool:
    """Mark the notification delivered once every channel it needs delivered it.

    The notification row is locked first (on PostgreSQL), so two processes that finish
    its last two channels at the same time see each other's delivery.
    """
    query = select(_notifications).where(_notifications.c.id == notification_id)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    notification = connection.execute(query).mappings().first()
    if notification is None or notification["delivered_at"] is not None:
        return False

    required = channels_for(notification["recipient"], settings)
    done = set(connection.execute(select(_deliveries.c.channel).where(
        _deliveries.c.notification_id == notification_id,
        _deliveries.c.status == DELIVERED)).scalars())
    if not required or not set(required) <= done:
        return False

    connection.execute(update(_notifications).where(_notifications.c.id == notification_id)
                       .values(delivered_at=now, channel=",".join(required)))
    key = notification["dedup_key"] or ""
    if key.startswith(INBOUND_KEY) and key[len(INBOUND_KEY):].isdigit():
        connection.execute(update(channel_inbound).where(
            channel_inbound.c.id == int(key[len(INBOUND_KEY):]),
            channel_inbound.c.answered_at.is_(None)).values(answered_at=now))
    return True


def finish_waiting(store: Store, settings: dict[str, Any], now: dt.datetime) -> int:
    """Mark delivered every undelivered notification whose channels have all delivered it.

    A pass normally does this as it finishes a delivery; this catches a notification whose
    required channels changed in config.toml since.
    """
    with store.engine.connect() as connection:
        ids = connection.execute(select(_notifications.c.id).distinct().join(
            _deliveries, _deliveries.c.notification_id == _notifications.c.id).where(
            _notifications.c.delivered_at.is_(None),
            _deliveries.c.status == DELIVERED)).scalars().all()
    finished = 0
    for notification_id in ids:
        with store.begin() as connection:
            finished += finish_notification(connection, notification_id, settings, now)
    return finished

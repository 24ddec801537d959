"""The delivery state of each configured channel, for ``channels list`` and notebooks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, exists, func, select

from ..config import Config
from ..store import Store
from ..store.schema import notification_deliveries, team_notifications
from .base import secret_variables
from .claims import DELIVERED, delivery_plans, owed_condition


def channel_status(store: Store, config: Config) -> dict[str, Any]:
    """Return each configured channel with its secret variables (set or not, never the
    value) and its delivery counts, plus the notifications still waiting.

    ``queued`` counts the undelivered notifications the channel still has to deliver,
    whether or not a delivery pass has created their rows yet. ``failing`` counts the
    undelivered ones whose last request on the channel failed. ``delivered`` counts
    delivery rows.
    """
    settings = config.channels
    deliveries = notification_deliveries
    with store.engine.connect() as connection:
        owed = _owed_counts(connection, settings)
        delivered = dict(connection.execute(
            select(deliveries.c.channel, func.count()).where(deliveries.c.status == DELIVERED)
            .group_by(deliveries.c.channel)).all())
        failing = dict(connection.execute(
            select(deliveries.c.channel, func.count())
            .where(deliveries.c.status != DELIVERED, deliveries.c.last_error.is_not(None))
            .group_by(deliveries.c.channel)).all())
        waiting = connection.execute(select(func.count()).select_from(team_notifications)
                                     .where(team_notifications.c.delivered_at.is_(None))
                                     ).scalar_one()
        errors = dict(connection.execute(
            select(deliveries.c.channel, deliveries.c.last_error)
            .where(deliveries.c.status != DELIVERED, deliveries.c.last_error.is_not(None))
            .order_by(deliveries.c.id)).all())

    channels = []
    for name, values in settings["configured"].items():
        channels.append({
            "name": name,
            "notify": name in settings["notify"],
            "secrets": secret_variables(values),
            "deliveries": {
                "queued": owed.get(name, 0),
                "delivered": delivered.get(name, 0),
                "failing": failing.get(name, 0),
            },
            "last_error": errors.get(name),
        })
    return {"channels": channels, "notify": list(settings["notify"]),
            "notifications_waiting": waiting}


def _owed_counts(connection: Connection, settings: dict[str, Any]) -> dict[str, int]:
    """Count, per channel, the undelivered notifications it has not delivered yet."""
    deliveries = notification_deliveries
    counts: dict[str, int] = {}
    for channel, direct in delivery_plans(settings):
        done = exists().where(and_(deliveries.c.notification_id == team_notifications.c.id,
                                   deliveries.c.channel == channel,
                                   deliveries.c.status == DELIVERED))
        count = connection.execute(
            select(func.count()).select_from(team_notifications)
            .where(*owed_condition(channel, direct), ~done)).scalar_one()
        counts[channel] = counts.get(channel, 0) + count
    return counts

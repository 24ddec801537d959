"""The delivery state of each configured channel, for ``channels list`` and notebooks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from ..config import Config
from ..store import Store
from ..store.schema import notification_deliveries, team_notifications
from .base import secret_variables
from .claims import DELIVERED, RETRYING


def channel_status(store: Store, config: Config) -> dict[str, Any]:
    """Return each configured channel with its secret variables (set or not, never the
    value) and its delivery counts, plus the notifications still waiting."""
    settings = config.channels
    deliveries = notification_deliveries
    with store.engine.connect() as connection:
        counts = connection.execute(
            select(deliveries.c.channel, deliveries.c.status, func.count())
            .group_by(deliveries.c.channel, deliveries.c.status)).all()
        waiting = connection.execute(select(func.count()).select_from(team_notifications)
                                     .where(team_notifications.c.delivered_at.is_(None))
                                     ).scalar_one()
        errors = dict(connection.execute(
            select(deliveries.c.channel, deliveries.c.last_error)
            .where(deliveries.c.status == RETRYING, deliveries.c.last_error.is_not(None))
            .order_by(deliveries.c.id)).all())

    channels = []
    for name, values in settings["configured"].items():
        by_status = {status: count for channel, status, count in counts if channel == name}
        channels.append({
            "name": name,
            "notify": name in settings["notify"],
            "secrets": secret_variables(values),
            "deliveries": {
                "queued": sum(count for status, count in by_status.items()
                              if status != DELIVERED),
                "delivered": by_status.get(DELIVERED, 0),
                "failing": by_status.get(RETRYING, 0),
            },
            "last_error": errors.get(name),
        })
    return {"channels": channels, "notify": list(settings["notify"]),
            "notifications_waiting": waiting}

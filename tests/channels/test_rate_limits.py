"""429 responses within delivery passes: one rate-limited channel gets no further requests
until the time it requested, waits in place at most once per pass, and leaves the other
channels sending."""

from __future__ import annotations

import datetime as dt
import time

from channelkit import Reply, write_config
from sqlalchemy import select

from tinysdlc_nb.channels.delivery import deliver_due
from tinysdlc_nb.channels.outbox import queue_notification
from tinysdlc_nb.store import as_utc, utc_now
from tinysdlc_nb.store.schema import notification_deliveries, team_notifications

SLACK_AND_DISCORD = """
[channels]
notify = ["slack", "discord"]
max_retry_after_s = 5
backoff_base_s = 30
[channels.slack]
[channels.discord]
"""

SLACK_AND_WEBHOOK = """
[channels]
notify = ["slack", "webhook"]
[channels.slack]
[channels.webhook]
url = "{url}/hook"
"""

LIMITED = Reply(429, b"rate_limited", {"Retry-After": "7"})


def queue_five(store):
    with store.begin() as connection:
        for number in range(5):
            queue_notification(connection, "oncall", f"heartbeat finding {number}")


def deliveries_of(store, channel):
    with store.engine.connect() as connection:
        return connection.execute(select(notification_deliveries).where(
            notification_deliveries.c.channel == channel).order_by(
            notification_deliveries.c.id)).mappings().all()


def undelivered(store):
    with store.engine.connect() as connection:
        return connection.execute(select(team_notifications.c.id).where(
            team_notifications.c.delivered_at.is_(None))).scalars().all()


def test_long_429_holds_channel(any_store, project, slack_api, discord_api):
    config = write_config(project, SLACK_AND_DISCORD)
    slack_api.default = LIMITED
    queue_five(any_store)
    start = utc_now()

    began = time.monotonic()
    summary = deliver_due(any_store, config, now=start)
    pass_s = time.monotonic() - began

    slack_rows = deliveries_of(any_store, "slack")
    assert len(slack_api.requests) == 1
    assert len(discord_api.requests) == 5
    assert pass_s < 3
    assert summary["rate_limited"] == 5
    assert summary["delivered"] == 5
    assert [as_utc(row["next_attempt_at"]) for row in slack_rows] == \
        [start + dt.timedelta(seconds=7)] * 5
    assert [row["attempts"] for row in slack_rows] == [1, 0, 0, 0, 0]
    assert len(undelivered(any_store)) == 5


def test_limit_ends_at_time(any_store, project, slack_api, discord_api):
    config = write_config(project, SLACK_AND_DISCORD)
    slack_api.default = LIMITED
    queue_five(any_store)
    start = utc_now()

    deliver_due(any_store, config, now=start)
    early = deliver_due(any_store, config, now=start + dt.timedelta(seconds=6))
    slack_api.default = Reply(200, b"ok")
    later = deliver_due(any_store, config, now=start + dt.timedelta(seconds=7))

    assert early["claimed"] == 0
    assert later["delivered"] == 5
    assert len(slack_api.requests) == 6
    assert len(discord_api.requests) == 5
    assert undelivered(any_store) == []


def test_429_waits_once_per_pass(sqlite_store, project, slack_api, webhook_api):
    config = write_config(project, SLACK_AND_WEBHOOK.format(url=webhook_api.url))
    short_limit = Reply(429, b"rate_limited", {"Retry-After": "1"})
    slack_api.default = short_limit
    webhook_api.default = short_limit
    queue_five(sqlite_store)
    start = utc_now()

    began = time.monotonic()
    deliver_due(sqlite_store, config, now=start)
    pass_s = time.monotonic() - began

    first, second = slack_api.requests
    rows = deliveries_of(sqlite_store, "slack") + deliveries_of(sqlite_store, "webhook")
    assert second.at - first.at >= 0.9
    assert len(webhook_api.requests) == 1
    assert pass_s < 2.5
    assert all(as_utc(row["next_attempt_at"]) >= start + dt.timedelta(seconds=1)
               for row in rows)
    assert all(row["status"] == "retrying" for row in rows)


def test_short_429_retried_later(sqlite_store, project, slack_api, webhook_api):
    config = write_config(project, SLACK_AND_WEBHOOK.format(url=webhook_api.url))
    slack_api.default = Reply(429, b"rate_limited", {"Retry-After": "1"})
    queue_five(sqlite_store)
    start = utc_now()

    first = deliver_due(sqlite_store, config, now=start)
    slack_api.default = Reply(200, b"ok")
    second = deliver_due(sqlite_store, config, now=start + dt.timedelta(seconds=2))

    assert len(webhook_api.requests) == 5
    assert first["notifications_delivered"] == 0
    assert second["notifications_delivered"] == 5
    assert len(slack_api.requests) == 7
    assert undelivered(sqlite_store) == []


def test_429_without_time_holds(sqlite_store, project, slack_api, discord_api):
    config = write_config(project, SLACK_AND_DISCORD)
    slack_api.default = Reply(429, b"rate_limited")
    queue_five(sqlite_store)
    start = utc_now()

    deliver_due(sqlite_store, config, now=start)

    slack_rows = deliveries_of(sqlite_store, "slack")
    assert len(slack_api.requests) == 1
    assert len(discord_api.requests) == 5
    assert [as_utc(row["next_attempt_at"]) for row in slack_rows] == \
        [start + dt.timedelta(seconds=30)] * 5
    assert slack_rows[0]["last_error"] == "HTTP 429: rate_limited"

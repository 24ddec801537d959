"""Delivery passes on SQLite and PostgreSQL: order, retries, 429 responses and claims."""

from __future__ import annotations

import datetime as dt
import threading

from channelkit import (
    Reply,
    attempts,
    deliveries,
    notification,
    queue,
    refused_url,
    unnumbered,
    write_config,
)

from tinysdlc_nb.channels.delivery import deliver_due
from tinysdlc_nb.store import as_utc, utc_now
from tinysdlc_nb.store.schema import notification_deliveries, team_notifications

SLACK = """
[channels]
notify = ["slack"]
backoff_base_s = 30
[channels.slack]
"""

BOTH = """
[channels]
notify = ["slack", "discord"]
[channels.slack]
[channels.discord]
"""


def test_split_parts_arrive_whole(sqlite_store, project, slack_api):
    config = write_config(project, SLACK)
    text = "\n".join(f"line {number}: {'x' * 70}" for number in range(150))
    queue(sqlite_store, text)

    summary = deliver_due(sqlite_store, config)

    texts = [body["text"] for body in slack_api.bodies()]
    assert slack_api.problems == []
    assert len(texts) == 4
    assert [part[:6] for part in texts] == ["(1/4) ", "(2/4) ", "(3/4) ", "(4/4) "]
    assert all(part.endswith("x\n") for part in texts[:-1])
    assert "".join(unnumbered(part) for part in texts) == f"For oncall:\n{text}"
    assert summary["parts_sent"] == 4


def test_delivered_sets_channels(any_store, project, slack_api, discord_api):
    config = write_config(project, BOTH)
    notification_id = queue(any_store, "deploy 1.4.0 finished")

    deliver_due(any_store, config)

    row = notification(any_store, notification_id)
    assert row["delivered_at"] is not None
    assert row["channel"] == "slack,discord"
    assert len(slack_api.requests) == 1
    assert len(discord_api.requests) == 1


def test_failure_keeps_queued(any_store, project, slack_api):
    config = write_config(project, SLACK)
    slack_api.then(Reply(500, b"internal_error"))
    notification_id = queue(any_store, "gate G4 failed")
    start = utc_now()

    first = deliver_due(any_store, config, now=start)
    after_failure = notification(any_store, notification_id)
    delivery = deliveries(any_store)[0]
    early = deliver_due(any_store, config, now=start + dt.timedelta(seconds=29))
    second = deliver_due(any_store, config, now=start + dt.timedelta(seconds=31))

    assert first["retrying"] == 1
    assert after_failure["delivered_at"] is None
    assert delivery["last_error"] == "HTTP 500: internal_error"
    assert as_utc(delivery["next_attempt_at"]) == start + dt.timedelta(seconds=30)
    assert early["claimed"] == 0
    assert second["delivered"] == 1
    assert notification(any_store, notification_id)["delivered_at"] is not None
    assert [row["outcome"] for row in attempts(any_store)] == ["failed", "sent"]


def test_parts_not_resent(any_store, project, slack_api):
    config = write_config(project, SLACK)
    slack_api.then(Reply(200, b"ok"), Reply(503, b"unavailable"))
    queue(any_store, "y" * 9000)
    start = utc_now()

    deliver_due(any_store, config, now=start)
    deliver_due(any_store, config, now=start + dt.timedelta(minutes=5))

    parts = [body["text"][:6] for body in slack_api.bodies()]
    assert parts == ["(1/3) ", "(2/3) ", "(2/3) ", "(3/3) "]
    assert deliveries(any_store)[0]["parts_sent"] == 3


def test_429_waits_in_place(sqlite_store, project, discord_api):
    config = write_config(project, BOTH.replace('"slack", ', "").replace("[channels.slack]",
                                                                         ""))
    discord_api.then(Reply(429, {"message": "You are being rate limited.", "retry_after": 0.6,
                                 "global": False}, {"Retry-After": "1"}))
    notification_id = queue(sqlite_store, "incident INC-7 opened")

    deliver_due(sqlite_store, config)

    first, second = discord_api.requests
    assert second.at - first.at >= 0.6
    assert notification(sqlite_store, notification_id)["delivered_at"] is not None
    assert [row["outcome"] for row in attempts(sqlite_store)] == ["rate_limited", "sent"]


def test_long_429_defers(sqlite_store, project, slack_api):
    config = write_config(project, SLACK)
    slack_api.then(Reply(429, b"rate_limited", {"Retry-After": "600"}))
    notification_id = queue(sqlite_store, "heartbeat: 2 findings")
    start = utc_now()

    summary = deliver_due(sqlite_store, config, now=start)

    delivery = deliveries(sqlite_store)[0]
    assert summary["rate_limited"] == 1
    assert len(slack_api.requests) == 1
    assert as_utc(delivery["next_attempt_at"]) == start + dt.timedelta(seconds=600)
    assert attempts(sqlite_store)[0]["retry_after_s"] == 600
    assert notification(sqlite_store, notification_id)["delivered_at"] is None


def test_refused_connection_recorded(sqlite_store, project, monkeypatch):
    monkeypatch.setenv("TINYSDLC_NB_SLACK_WEBHOOK_URL", refused_url() + "/services/x")
    config = write_config(project, SLACK)
    notification_id = queue(sqlite_store, "backup finished")

    deliver_due(sqlite_store, config)

    attempt = attempts(sqlite_store)[0]
    assert attempt["outcome"] == "failed"
    assert attempt["http_status"] is None
    assert "ConnectError" in attempt["error"]
    assert "/services/x" not in attempt["error"]
    assert notification(sqlite_store, notification_id)["delivered_at"] is None


def test_missing_secret_named(sqlite_store, project, monkeypatch):
    monkeypatch.delenv("TINYSDLC_NB_SLACK_WEBHOOK_URL", raising=False)
    config = write_config(project, SLACK)
    notification_id = queue(sqlite_store, "sign-off waiting")

    deliver_due(sqlite_store, config)

    attempt = attempts(sqlite_store)[0]
    assert attempt["outcome"] == "failed"
    assert "TINYSDLC_NB_SLACK_WEBHOOK_URL" in attempt["error"]
    assert notification(sqlite_store, notification_id)["delivered_at"] is None


def test_secret_redacted(sqlite_store, project, slack_api, monkeypatch):
    monkeypatch.setenv("DEPLOY_API_TOKEN", "tok-9f8e7d6c5b4a3210")
    config = write_config(project, SLACK)
    with sqlite_store.begin() as connection:
        connection.execute(team_notifications.insert().values(
            recipient="oncall", text="deploy used tok-9f8e7d6c5b4a3210 today",
            dedup_key="raw", created_at=utc_now()))

    deliver_due(sqlite_store, config)

    assert len(slack_api.requests) == 1
    assert b"tok-9f8e7d6c5b4a3210" not in slack_api.requests[0].body
    assert "[REDACTED:" in slack_api.bodies()[0]["text"]


def test_concurrent_passes_send_once(any_store, project, slack_api):
    config = write_config(project, SLACK)
    slack_api.default = Reply(200, b"ok", delay_s=0.05)
    for number in range(12):
        queue(any_store, f"notification {number}")
    barrier = threading.Barrier(2)

    def run():
        barrier.wait()
        deliver_due(any_store, config)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    texts = sorted(body["text"] for body in slack_api.bodies())
    assert texts == sorted(f"For oncall:\nnotification {number}" for number in range(12))
    assert all(row["status"] == "delivered" for row in deliveries(any_store))


def test_expired_lease_retaken(any_store, project, slack_api):
    config = write_config(project, SLACK)
    queue(any_store, "runbook rollback finished")
    start = utc_now()
    with any_store.begin() as connection:
        connection.execute(notification_deliveries.insert().values(
            notification_id=1, channel="slack", status="sending", parts_total=1, parts_sent=0,
            attempts=1, next_attempt_at=start + dt.timedelta(seconds=60), created_at=start))

    held = deliver_due(any_store, config, now=start + dt.timedelta(seconds=59))
    retaken = deliver_due(any_store, config, now=start + dt.timedelta(seconds=61))

    assert held["claimed"] == 0
    assert retaken["delivered"] == 1
    assert deliveries(any_store)[0]["attempts"] == 2

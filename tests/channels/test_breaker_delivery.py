"""Hard cases of delivery passes: silent servers, Retry-After 0, secret recipients, long
lines, and a ``notify`` list that changes between passes."""

from __future__ import annotations

import datetime as dt
import socket
import threading

import pytest
from channelkit import (
    DISCORD_PATH,
    SLACK_PATH,
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
from tinysdlc_nb.store import utc_now

SLACK = "[channels]\nnotify = [\"slack\"]\n[channels.slack]\n"
DISCORD = "[channels]\nnotify = [\"discord\"]\n[channels.discord]\n"
BOTH = "[channels]\nnotify = [\"slack\", \"discord\"]\n[channels.slack]\n[channels.discord]\n"
GITHUB_TOKEN = "ghp_" + "Zx81mQ4vT7cLp2Rk9sWd3Yb6Hn0Jf5Ge1uAo"


class SilentServer:
    """Accept each connection on 127.0.0.1, read the request, then close without a reply."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                connection, _address = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            with connection:
                connection.settimeout(2)
                try:
                    connection.recv(65536)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()


# A server that closes the connection without a response.

def test_silent_server_keeps_queued(sqlite_store, project, silent_server, monkeypatch):
    monkeypatch.setenv("TINYSDLC_NB_SLACK_WEBHOOK_URL", silent_server.url + SLACK_PATH)
    config = write_config(project, SLACK)
    notification_id = queue(sqlite_store, "gate G4 failed")

    summary = deliver_due(sqlite_store, config)

    [delivery] = deliveries(sqlite_store)
    [attempt] = attempts(sqlite_store)
    assert silent_server.accepted >= 1
    assert summary["retrying"] == 1
    assert notification(sqlite_store, notification_id)["delivered_at"] is None
    assert delivery["status"] == "retrying"
    assert attempt["outcome"] == "failed"
    assert attempt["error"]
    assert "slack-hook-token-value" not in attempt["error"]


def test_silent_server_then_up_delivers(sqlite_store, project, silent_server, slack_api,
                                        monkeypatch):
    monkeypatch.setenv("TINYSDLC_NB_SLACK_WEBHOOK_URL", silent_server.url + SLACK_PATH)
    config = write_config(project, SLACK)
    notification_id = queue(sqlite_store, "gate G4 failed")
    start = utc_now()

    deliver_due(sqlite_store, config, now=start)
    monkeypatch.setenv("TINYSDLC_NB_SLACK_WEBHOOK_URL", slack_api.url + SLACK_PATH)
    deliver_due(sqlite_store, config, now=start + dt.timedelta(hours=1))

    assert notification(sqlite_store, notification_id)["delivered_at"] is not None
    assert [body["text"] for body in slack_api.bodies()] == ["For oncall:\ngate G4 failed"]


# 429 with a Retry-After of 0.

def test_retry_after_zero_header_resends(sqlite_store, project, slack_api):
    config = write_config(project, SLACK)
    slack_api.then(Reply(429, b"rate_limited", {"Retry-After": "0"}))
    notification_id = queue(sqlite_store, "incident INC-3 opened")

    deliver_due(sqlite_store, config)

    assert len(slack_api.requests) == 2
    assert notification(sqlite_store, notification_id)["delivered_at"] is not None
    assert [row["outcome"] for row in attempts(sqlite_store)] == ["rate_limited", "sent"]


def test_retry_after_zero_json_resends(sqlite_store, project, discord_api):
    config = write_config(project, DISCORD)
    discord_api.then(Reply(429, {"message": "You are being rate limited.", "retry_after": 0,
                                 "global": False}))
    notification_id = queue(sqlite_store, "incident INC-3 opened")

    deliver_due(sqlite_store, config)

    assert len(discord_api.requests) == 2
    assert notification(sqlite_store, notification_id)["delivered_at"] is not None


def test_retry_after_zero_twice_next_pass(sqlite_store, project, slack_api):
    config = write_config(project, SLACK)
    zero = Reply(429, b"rate_limited", {"Retry-After": "0"})
    slack_api.then(zero, zero)
    notification_id = queue(sqlite_store, "incident INC-3 opened")
    start = utc_now()

    first = deliver_due(sqlite_store, config, now=start)
    deliver_due(sqlite_store, config, now=start + dt.timedelta(seconds=1))

    assert first["rate_limited"] == 1
    assert len(slack_api.requests) == 3
    assert notification(sqlite_store, notification_id)["delivered_at"] is not None


# A recipient that contains a secret.

def test_recipient_token_not_sent(sqlite_store, project, slack_api):
    config = write_config(project, SLACK)
    notification_id = queue(sqlite_store, "deploy 1.4.0 finished",
                            recipient=f"oncall {GITHUB_TOKEN}")

    deliver_due(sqlite_store, config)

    [body] = slack_api.bodies()
    assert GITHUB_TOKEN not in body["text"]
    assert GITHUB_TOKEN not in notification(sqlite_store, notification_id)["recipient"]


def test_recipient_hook_address_redacted(sqlite_store, project, slack_api,
                                              webhook_api, monkeypatch):
    address = slack_api.url + SLACK_PATH
    config = write_config(project, "[channels]\nnotify = [\"webhook\"]\n[channels.webhook]\n"
                          f"url = \"{webhook_api.url}/hook\"\n[channels.slack]\n")
    notification_id = queue(sqlite_store, "deploy 1.4.0 finished",
                            recipient=f"oncall via {address}")

    deliver_due(sqlite_store, config)

    [body] = webhook_api.bodies()
    assert webhook_api.problems == []
    assert address not in body["recipient"]
    assert address not in notification(sqlite_store, notification_id)["recipient"]


# A line one character longer than the limit, without spaces.

def test_long_line_no_spaces_split(sqlite_store, project, discord_api):
    config = write_config(project, DISCORD)
    prefix = "For oncall:\n"
    text = "y" * (2000 - len(prefix) + 1)
    notification_id = queue(sqlite_store, text)

    deliver_due(sqlite_store, config)

    contents = [body["content"] for body in discord_api.bodies()]
    assert discord_api.problems == []
    assert len(contents) == 2
    assert "".join(unnumbered(part) for part in contents) == prefix + text
    assert notification(sqlite_store, notification_id)["delivered_at"] is not None


def test_long_line_webhook_minimum_split(sqlite_store, project, webhook_api):
    config = write_config(project, "[channels]\nnotify = [\"webhook\"]\n[channels.webhook]\n"
                          f"url = \"{webhook_api.url}/hook\"\nmax_chars = 100\n")
    text = "z" * 101
    queue(sqlite_store, text)

    deliver_due(sqlite_store, config)

    texts = [body["text"] for body in webhook_api.bodies()]
    assert webhook_api.problems == []
    assert all(len(part) <= 100 for part in texts)
    assert "".join(unnumbered(part) for part in texts) == text


# The notify list changed between two passes.

def test_notify_channel_removed_unblocks(sqlite_store, project, slack_api, monkeypatch):
    monkeypatch.setenv("TINYSDLC_NB_DISCORD_WEBHOOK_URL", refused_url() + DISCORD_PATH)
    notification_id = queue(sqlite_store, "gate G4 failed")
    start = utc_now()

    deliver_due(sqlite_store, write_config(project, BOTH), now=start)
    waiting = notification(sqlite_store, notification_id)["delivered_at"]
    deliver_due(sqlite_store, write_config(project, SLACK), now=start + dt.timedelta(hours=1))

    row = notification(sqlite_store, notification_id)
    assert waiting is None
    assert row["delivered_at"] is not None
    assert row["channel"] == "slack"


def test_notify_removed_channel_not_sent_later(sqlite_store, project, slack_api, discord_api,
                                               monkeypatch):
    # Discord stays configured but leaves notify. The second pass marks the notification
    # delivered without Discord, so Discord must not get it an hour later.
    monkeypatch.setenv("TINYSDLC_NB_DISCORD_WEBHOOK_URL", refused_url() + DISCORD_PATH)
    queue(sqlite_store, "gate G4 failed")
    start = utc_now()

    deliver_due(sqlite_store, write_config(project, BOTH), now=start)
    monkeypatch.setenv("TINYSDLC_NB_DISCORD_WEBHOOK_URL", discord_api.url + DISCORD_PATH)
    later = BOTH.replace('"slack", "discord"', '"slack"')
    deliver_due(sqlite_store, write_config(project, later), now=start + dt.timedelta(hours=1))

    assert discord_api.requests == []


def test_notify_channel_added_delivers(sqlite_store, project, slack_api, discord_api):
    notification_id = queue(sqlite_store, "gate G4 failed")
    start = utc_now()

    deliver_due(sqlite_store, write_config(project, SLACK), now=start)
    deliver_due(sqlite_store, write_config(project, BOTH), now=start + dt.timedelta(minutes=1))

    assert notification(sqlite_store, notification_id)["delivered_at"] is not None
    assert len(slack_api.requests) == 1
    assert discord_api.requests == []

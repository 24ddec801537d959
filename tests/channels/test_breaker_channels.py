"""Hard cases of channels: splitting at the limit, Retry-After dates, group chats."""

from __future__ import annotations

import email.utils
import time

from channelkit import FakeApi, Reply, text_length
from test_telegram import receive, telegram_config, update, updates_reply

from tinysdlc_nb.channels.base import new_client, retry_after_header
from tinysdlc_nb.channels.split import split_text
from tinysdlc_nb.team.defaults import write_default_settings

FLAG = "\U0001f1e9\U0001f1ea"  # the German flag: two regional indicator characters


def test_split_exact_limit_one_part():
    assert split_text("a" * 4096, 4096) == ["a" * 4096]


def test_split_emoji_at_limit_one_part():
    assert split_text("\U0001f600" * 2048, 4096) == ["\U0001f600" * 2048]


def test_split_limit_plus_one_fits():
    parts = split_text("\U0001f600" * 2049, 4096)
    assert len(parts) == 2
    assert max(text_length(part) for part in parts) <= 4096


def test_split_keeps_flags_whole():
    parts = split_text(FLAG * 1500, 2000)
    bodies = [part.split(") ", 1)[1] for part in parts]
    assert all(len(body) % 2 == 0 for body in bodies)
    assert all(body.startswith(FLAG) for body in bodies)


def test_retry_after_http_date():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    api = FakeApi(lambda request: [], Reply(429, b"", {"Retry-After": when}))
    try:
        with new_client(5) as client:
            response = client.post(api.url + "/x", content=b"{}")
    finally:
        api.close()
    seconds = retry_after_header(response)
    assert seconds is not None
    assert 25 <= seconds <= 31


def test_telegram_group_chat_negative_id(sqlite_store, project, telegram_api):
    config = telegram_config(project, telegram_api)
    write_default_settings(config.home, provider="protocol")
    config.channels["configured"]["telegram"]["allowed_chat_ids"].append("-1001234567890")
    telegram_api.then(updates_reply([update(7, -1001234567890, "status of g3?")]))
    received = receive(sqlite_store, config)
    assert received.ignored == 0
    assert received.queued == 1

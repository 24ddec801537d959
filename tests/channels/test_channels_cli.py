"""The channels commands end to end, and the channel service's threads."""

from __future__ import annotations

import json
import time

from channelkit import Reply, write_config

from tinysdlc_nb.channels.outbox import queue_notification
from tinysdlc_nb.channels.service import ChannelService
from tinysdlc_nb.cli import main
from tinysdlc_nb.store import open_store
from tinysdlc_nb.team.defaults import write_default_settings

SLACK = """
[channels]
notify = ["slack"]
[channels.slack]
"""


def run(project, capsys, *args):
    code = main([*args, "--project", str(project)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def store_of(project):
    return open_store(f"sqlite:///{project / '.tinysdlc' / 'state.db'}")


def test_test_sends(project, capsys, slack_api):
    write_config(project, SLACK)

    code, out, _err = run(project, capsys, "channels", "test", "slack", "--text", "ping")

    assert code == 0
    assert slack_api.bodies() == [{"text": "ping"}]
    assert "Sent 1 part(s)" in out


def test_test_failure_exit_1(project, capsys, slack_api):
    write_config(project, SLACK)
    slack_api.then(Reply(404, b"no_service"))

    code, _out, err = run(project, capsys, "channels", "test", "slack")

    assert code == 1
    assert "HTTP 404: no_service" in err


def test_bad_config_exit_2(project, capsys):
    write_config(project, '[channels]\nnotify = ["telegram"]\n[channels.telegram]\n',
                 load=False)

    code, _out, err = run(project, capsys, "channels", "list")

    assert code == 2
    assert "channels.telegram.chat_ids" in err


def test_unknown_key_exit_2(project, capsys):
    write_config(project, '[channels.slack]\nwebhook_url = "https://hooks.example"\n',
                 load=False)

    code, _out, err = run(project, capsys, "channels", "list")

    assert code == 2
    assert "channels.slack.webhook_url" in err


def test_missing_secret_exit_2(project, capsys, monkeypatch):
    monkeypatch.delenv("TINYSDLC_NB_SLACK_WEBHOOK_URL", raising=False)
    write_config(project, SLACK)

    code, _out, err = run(project, capsys, "channels", "test", "slack")

    assert code == 2
    assert "TINYSDLC_NB_SLACK_WEBHOOK_URL" in err


def test_deliver_and_list(project, capsys, slack_api, monkeypatch):
    write_config(project, SLACK)
    store = store_of(project)
    with store.begin() as connection:
        queue_notification(connection, "oncall", "first")
        queue_notification(connection, "oncall", "second")
    store.close()
    slack_api.then(Reply(500, b"boom"))

    code, out, _err = run(project, capsys, "channels", "deliver", "--json")
    listed_code, listed, _err = run(project, capsys, "channels", "list", "--json")

    status = json.loads(listed)["channels"][0]
    assert code == 0
    assert json.loads(out)["parts_sent"] == 1
    assert listed_code == 0
    assert status["secrets"] == {"TINYSDLC_NB_SLACK_WEBHOOK_URL": True}
    assert status["deliveries"] == {"queued": 1, "delivered": 1, "failing": 1}
    assert slack_api.url not in listed


def test_listen_once(project, capsys, telegram_api):
    write_config(project, f"""
[channels.telegram]
api_url = "{telegram_api.url}"
chat_ids = [5]
""")
    write_default_settings(project / ".tinysdlc", provider="protocol")
    telegram_api.default = Reply(200, {"ok": True, "result": [
        {"update_id": 9, "message": {"message_id": 1, "text": "@devops status",
                                     "chat": {"id": 5}, "from": {"id": 8}}}]})

    code, out, _err = run(project, capsys, "channels", "listen", "--once")

    assert code == 0
    assert "1 queued for the team (C-1)" in out


def test_service_delivers_and_stops(project, slack_api):
    config = write_config(project, SLACK.replace("[channels]", "[channels]\n"
                                                 "deliver_interval_s = 30"))
    store = store_of(project)
    service = ChannelService(store, config)
    service.start()
    time.sleep(0.3)
    with store.begin() as connection:
        queue_notification(connection, "oncall", "kicked")

    service.kick()
    deadline = time.monotonic() + 5
    while not slack_api.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    service.stop()
    stop_s = time.monotonic() - started
    store.close()

    assert slack_api.bodies() == [{"text": "For oncall:\nkicked"}]
    assert stop_s < 2.5
    assert not service.running


def test_service_stops_during_poll(project, telegram_api):
    config = write_config(project, f"""
[channels.telegram]
api_url = "{telegram_api.url}"
chat_ids = [5]
receive = true
poll_timeout_s = 20
""")
    write_default_settings(project / ".tinysdlc", provider="protocol")
    telegram_api.default = Reply(200, {"ok": True, "result": []}, delay_s=10)
    store = store_of(project)
    service = ChannelService(store, config)
    service.start()
    time.sleep(0.5)

    started = time.monotonic()
    service.stop()
    stop_s = time.monotonic() - started
    store.close()

    assert len(telegram_api.requests) == 1
    assert stop_s < 2.5


def test_list_counts_before_pass(project, capsys, slack_api):
    write_config(project, SLACK)
    store = store_of(project)
    with store.begin() as connection:
        for number in range(5):
            queue_notification(connection, "oncall", f"finding {number}")
    store.close()

    code, listed, _err = run(project, capsys, "channels", "list", "--json")
    _code, text, _err = run(project, capsys, "channels", "list")

    status = json.loads(listed)
    assert code == 0
    assert status["notifications_waiting"] == 5
    assert status["channels"][0]["deliveries"] == {"queued": 5, "delivered": 0, "failing": 0}
    assert "queued 5" in text
    assert slack_api.requests == []

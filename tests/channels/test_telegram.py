"""Telegram: sendMessage parts, getUpdates offsets, allowed chats, repeats and answers."""

from __future__ import annotations

from channelkit import Reply, unnumbered, write_config
from sqlalchemy import select

from tinysdlc_nb.channels.base import new_client
from tinysdlc_nb.channels.delivery import deliver_due
from tinysdlc_nb.channels.inbound import read_offset, receive_once
from tinysdlc_nb.channels.outbox import queue_notification
from tinysdlc_nb.store.schema import channel_inbound, team_conversations, team_notifications
from tinysdlc_nb.team.commands import build_worker
from tinysdlc_nb.team.defaults import write_default_settings
from tinysdlc_nb.team.settings import load_team_settings


def telegram_config(project, api, extra=""):
    return write_config(project, f"""
[channels]
notify = ["telegram"]
[channels.telegram]
api_url = "{api.url}"
chat_ids = [1001, 1002]
allowed_chat_ids = [1001]
receive = true
{extra}
""")


def update(update_id, chat_id, text, username="alice"):
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 1700000000, "text": text,
        "chat": {"id": chat_id, "type": "private"},
        "from": {"id": 77, "is_bot": False, "username": username}}}


def updates_reply(updates):
    """Answer getUpdates with the updates at or after the request's offset."""
    def reply(request):
        offset = request.json.get("offset", 0)
        return Reply(200, {"ok": True, "result": [item for item in updates
                                                   if item["update_id"] >= offset]})
    return reply


def receive(store, config, team=None):
    with new_client(5) as client:
        return receive_once(store, config, client, timeout_s=0, team=team)


def inbound_rows(store):
    with store.engine.connect() as connection:
        return connection.execute(select(channel_inbound).order_by(channel_inbound.c.id)
                                  ).mappings().all()


def test_send_parts_each_chat(sqlite_store, project, telegram_api):
    config = telegram_config(project, telegram_api)
    with sqlite_store.begin() as connection:
        queue_notification(connection, "oncall", "é" * 5000)

    deliver_due(sqlite_store, config)

    bodies = telegram_api.bodies()
    assert telegram_api.problems == []
    assert [(body["chat_id"], body["text"][:6]) for body in bodies] == [
        ("1001", "(1/2) "), ("1001", "(2/2) "), ("1002", "(1/2) "), ("1002", "(2/2) ")]
    assert "".join(unnumbered(body["text"]) for body in bodies[:2]) == \
        "For oncall:\n" + "é" * 5000


def test_429_retry_after_honoured(sqlite_store, project, telegram_api):
    telegram_api.then(Reply(429, {"ok": False, "error_code": 429,
                                  "description": "Too Many Requests: retry after 1",
                                  "parameters": {"retry_after": 1}}))
    project_config = telegram_config(project, telegram_api)
    with sqlite_store.begin() as connection:
        queue_notification(connection, "oncall", "short")

    deliver_due(sqlite_store, project_config)

    first, second = telegram_api.requests[:2]
    assert second.at - first.at >= 1.0
    assert len(telegram_api.requests) == 3


def test_offset_advances(sqlite_store, project, telegram_api):
    config = telegram_config(project, telegram_api)
    write_default_settings(config.home, provider="protocol")
    telegram_api.default = updates_reply([update(500, 1001, "@devops status"),
                                          update(501, 1001, "@devops deploy 1.4")])

    first = receive(sqlite_store, config)
    second = receive(sqlite_store, config)

    polls = [request.json for request in telegram_api.requests]
    assert "offset" not in polls[0]
    assert polls[1]["offset"] == 502
    assert read_offset(sqlite_store) == 502
    assert first.queued == 2
    assert second.updates == 0


def test_disallowed_chat_ignored(sqlite_store, project, telegram_api):
    config = telegram_config(project, telegram_api)
    write_default_settings(config.home, provider="protocol")
    telegram_api.default = updates_reply([update(10, 1002, "@devops rollback"),
                                          update(11, 9999, "@devops rollback")])

    received = receive(sqlite_store, config)

    assert received.ignored == 2
    assert inbound_rows(sqlite_store) == []
    assert read_offset(sqlite_store) == 12


def test_duplicate_update_once(any_store, project, telegram_api):
    config = telegram_config(project, telegram_api)
    write_default_settings(config.home, provider="protocol")
    telegram_api.default = Reply(200, {"ok": True, "result": [update(7, 1001, "@devops hi")]})

    first = receive(any_store, config)
    second = receive(any_store, config)

    with any_store.engine.connect() as connection:
        conversations = connection.execute(select(team_conversations)).mappings().all()
    assert first.queued == 1
    assert second.duplicates == 1
    assert len(conversations) == 1
    assert conversations[0]["origin"] == "telegram"
    assert conversations[0]["started_by"] == "telegram:alice"


def test_answer_returns_to_chat(sqlite_store, project, telegram_api):
    config = telegram_config(project, telegram_api)
    settings_path = write_default_settings(config.home, provider="protocol")
    telegram_api.default = updates_reply([update(1, 1001, "@devops status")])
    receive(sqlite_store, config)
    telegram_api.default = Reply(200, {"ok": True, "result": {"message_id": 2}})
    worker = build_worker(sqlite_store, config, load_team_settings(config.home),
                          settings_file=str(settings_path), once=True)
    worker.run()

    deliver_due(sqlite_store, config)

    sends = [request.json for request in telegram_api.requests
             if request.path.endswith("/sendMessage")]
    with sqlite_store.engine.connect() as connection:
        answer = connection.execute(select(team_conversations.c.answer)).scalar_one()
        notice = connection.execute(select(team_notifications)).mappings().one()
    assert [body["chat_id"] for body in sends] == ["1001"]
    assert "".join(unnumbered(body["text"]) for body in sends) == answer
    assert notice["channel"] == "telegram"
    assert inbound_rows(sqlite_store)[0]["answered_at"] is not None


def test_unroutable_message_answered(sqlite_store, project, telegram_api):
    config = telegram_config(project, telegram_api)
    write_default_settings(config.home, provider="protocol")
    telegram_api.default = updates_reply([update(3, 1001, "@nobody deploy")])
    received = receive(sqlite_store, config)
    telegram_api.default = Reply(200, {"ok": True, "result": {"message_id": 2}})

    deliver_due(sqlite_store, config)

    sends = [request.json for request in telegram_api.requests
             if request.path.endswith("/sendMessage")]
    assert received.rejected == 1
    assert sends[0]["chat_id"] == "1001"
    assert sends[0]["text"].startswith("Not delivered to the team: '@nobody'")

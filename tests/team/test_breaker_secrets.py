"""Secrets from the environment in every team text: store rows and `conversation show --json`."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tinysdlc_nb.cli import main
from tinysdlc_nb.store import open_store
from tinysdlc_nb.store.schema import (
    team_attempts,
    team_conversations,
    team_events,
    team_messages,
    team_notifications,
)
from tinysdlc_nb.team.claims import claim
from tinysdlc_nb.team.conversations import start_conversation
from tinysdlc_nb.team.delivery import finish_with_failure, finish_with_reply
from tinysdlc_nb.team.model import HUMAN, AgentReply
from tinysdlc_nb.team.queue import QueueOptions
from tinysdlc_nb.team.routing import route_user_message

# Letters and digits only, so the value is also a valid-looking agent id and file name.
SECRET = "tok9A7c2E4b6D8f1qZ"
OPTIONS = QueueOptions(max_attempts=3, backoff_base_s=10, backoff_max_s=60, lease_s=30)
TABLES = {"conversations": team_conversations, "messages": team_messages,
          "events": team_events, "attempts": team_attempts,
          "notifications": team_notifications}


@pytest.fixture(autouse=True)
def token_env(monkeypatch):
    monkeypatch.setenv("MY_API_TOKEN", SECRET)


def leaking_columns(store) -> list[str]:
    """Return ``table.column`` for every stored value that contains the raw secret."""
    found = []
    with store.engine.connect() as connection:
        for name, table in TABLES.items():
            for row in connection.execute(select(table)).mappings():
                found += [f"{name}.{column}" for column, value in row.items()
                          if SECRET in str(value)]
    return sorted(set(found))


def send(store, settings, text):
    decision = route_user_message(text, settings, "devops")
    return start_conversation(store, decision, text=text, started_by="alice", sender=HUMAN,
                              max_messages=50, max_attempts=3)


def test_person_message_secret_redacted(any_store, team_settings):
    send(any_store, team_settings, f"[@devops: deploy with {SECRET}] [@{SECRET}: hi]")

    assert leaking_columns(any_store) == []


def test_reply_mention_secret_redacted(any_store, team_settings, tmp_path):
    send(any_store, team_settings, "@devops go")
    held = claim(any_store, "w1", OPTIONS)

    finish_with_reply(any_store, held, AgentReply(f"Key {SECRET}. [@{SECRET}: use it]"),
                      team_settings, tmp_path)

    assert leaking_columns(any_store) == []


def test_notification_secret_redacted(any_store, team_settings, tmp_path):
    send(any_store, team_settings, "@devops go")
    held = claim(any_store, "w1", OPTIONS)

    finish_with_reply(any_store, held, AgentReply("noted", notifications=(
        (f"ops {SECRET}", f"rotate {SECRET}"),)), team_settings, tmp_path)

    assert leaking_columns(any_store) == []


def test_dead_error_secret_redacted(any_store, team_settings):
    send(any_store, team_settings, "@devops go")
    held = claim(any_store, "w1", OPTIONS)

    finish_with_failure(any_store, held, f"HTTP 500: bad token {SECRET}", OPTIONS,
                        permanent=True)

    assert leaking_columns(any_store) == []


def test_send_file_secret_redacted(any_store, team_settings, tmp_path):
    files_dir = tmp_path / "files"
    files_dir.mkdir()
    send(any_store, team_settings, "@devops go")
    held = claim(any_store, "w1", OPTIONS)

    finish_with_reply(any_store, held, AgentReply(f"[send_file: {SECRET}.txt]"),
                      team_settings, files_dir)

    assert leaking_columns(any_store) == []


def test_sent_file_name_secret_redacted(any_store, team_settings, tmp_path):
    files_dir = tmp_path / "files"
    files_dir.mkdir()
    (files_dir / f"{SECRET}.txt").write_text("report")
    send(any_store, team_settings, "@devops go")
    held = claim(any_store, "w1", OPTIONS)

    finish_with_reply(any_store, held, AgentReply(f"[send_file: {SECRET}.txt]"),
                      team_settings, files_dir)

    assert leaking_columns(any_store) == []


def test_show_json_redacts_all(project, capsys):
    assert main(["init", "--project", str(project)]) == 0
    text = f"[@devops: deploy with {SECRET}] [@{SECRET}: hi]"
    assert main(["send", text, "--from", "alice", "--project", str(project)]) == 0
    store = open_store(f"sqlite:///{project / '.tinysdlc' / 'state.db'}")
    held = claim(store, "w1", OPTIONS)
    finish_with_failure(store, held, f"token {SECRET} rejected", OPTIONS, permanent=True)
    store.close()
    capsys.readouterr()

    code = main(["conversation", "show", "1", "--json", "--project", str(project)])
    out = capsys.readouterr().out

    assert code == 0
    assert SECRET not in out
    assert "[REDACTED:$MY_API_TOKEN]" in json.loads(out)["text"]

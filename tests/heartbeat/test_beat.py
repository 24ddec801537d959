"""Whole beats: changed and unchanged, the model rule, the notification and the CLI."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from beatkit import API_KEY, MessagesApi, add_dead_message, message_body, write_project
from sqlalchemy import select

from tinysdlc_nb.cli import main
from tinysdlc_nb.config import load_config
from tinysdlc_nb.errors import UsageError
from tinysdlc_nb.heartbeat.beat import previous_beats, run_heartbeat
from tinysdlc_nb.heartbeat.findings import Finding, fingerprint
from tinysdlc_nb.store import open_store
from tinysdlc_nb.store.schema import heartbeats, team_notifications


def settings(provider: str) -> str:
    return json.dumps({"agents": {"devops": {"name": "Dana", "provider": provider,
                                             "model": "sonnet", "sdlc_role": "devops"}},
                       "teams": {}})


def endpoint_toml(url: str) -> str:
    return f'[heartbeat]\nendpoints = [{{name = "api", url = "{url}", timeout_s = 2}}]\n'


def notifications(project) -> list[dict]:
    store = open_store(load_config(project).database_url)
    try:
        with store.begin() as connection:
            return [dict(row) for row in connection.execute(
                select(team_notifications).order_by(team_notifications.c.id)).mappings()]
    finally:
        store.close()


@pytest.fixture
def anthropic_env(monkeypatch):
    for name in ("ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_PROFILE", "ANTHROPIC_CUSTOM_HEADERS",
                 "TINYSDLC_NB_ANTHROPIC_TIMEOUT_S", "TINYSDLC_NB_AGENT_MAX_TOKENS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    with MessagesApi((200, message_body("Endpoint api is down; check it first."), {})) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
        yield api


# The fingerprint.

def test_fingerprint_ignores_text_and_detail():
    first = Finding("endpoint", "api", "up", False, "up in 12 ms", {"latency_ms": 12})
    second = Finding("endpoint", "api", "up", False, "up in 80 ms", {"latency_ms": 80})
    assert fingerprint([first]) == fingerprint([second])


def test_fingerprint_order_free():
    one = Finding("gate", "shop G4", "PASSED 1.4.0", False, "")
    two = Finding("queue", "dead messages", "none", False, "")
    assert fingerprint([one, two]) == fingerprint([two, one])


def test_fingerprint_state_counts():
    before = Finding("endpoint", "api", "up", False, "")
    after = Finding("endpoint", "api", "down", True, "")
    assert fingerprint([before]) != fingerprint([after])


# Changed and unchanged beats.

def test_beat_first_is_changed(project):
    beat = run_heartbeat(project)
    assert beat.changed is True
    assert beat.previous_fingerprint is None


def test_beat_second_unchanged(health, tmp_path):
    project = write_project(tmp_path / "shop", endpoint_toml(health.url("/slow")))
    first = run_heartbeat(project)
    second = run_heartbeat(project)
    assert second.changed is False
    assert second.fingerprint == first.fingerprint
    assert second.summary == first.summary
    assert second.summary_source == "previous"


def test_beat_state_change_detected(tmp_path, project):
    run_heartbeat(project)
    store = open_store(load_config(project).database_url)
    add_dead_message(store)
    store.close()
    beat = run_heartbeat(project)
    assert beat.changed is True
    assert len(beat.attention) == 1


def test_beat_recorded(health, tmp_path):
    project = write_project(tmp_path / "shop", endpoint_toml(health.url("/error")))
    beat = run_heartbeat(project, now=dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC))
    store = open_store(load_config(project).database_url)
    [row] = previous_beats(store)
    store.close()
    assert row["id"] == beat.id
    assert row["attention"] == 1
    assert row["notified"] == 1
    assert row["findings"][0]["state"] == "down"
    assert row["at"] == dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


def test_beat_unknown_run_id(project):
    with pytest.raises(UsageError, match="schedule run 42 not found"):
        run_heartbeat(project, run_id=42)


# The summary and the model rule.

def test_summary_plain_without_settings(health, tmp_path):
    project = write_project(tmp_path / "shop", endpoint_toml(health.url("/error")))
    beat = run_heartbeat(project)
    assert beat.summary_source == "code"
    assert beat.model_called is False
    assert "Endpoint api is down" in beat.summary


def test_summary_protocol_agent_uses_code(health, tmp_path):
    project = write_project(tmp_path / "shop", endpoint_toml(health.url("/error")),
                            settings("protocol"))
    beat = run_heartbeat(project)
    assert beat.summary_source == "code"
    assert beat.model_called is False
    assert "[@" not in beat.summary


def test_summary_unchanged_no_model_request(health, tmp_path, anthropic_env):
    project = write_project(tmp_path / "shop", endpoint_toml(health.url("/error")),
                            settings("anthropic"))
    first = run_heartbeat(project)
    assert first.model_called is True
    assert len(anthropic_env.requests) == 1
    assert anthropic_env.problems == []

    second = run_heartbeat(project)
    assert second.model_called is False
    assert len(anthropic_env.requests) == 1
    assert second.summary == "Endpoint api is down; check it first."


def test_summary_off_no_model_request(health, tmp_path, anthropic_env):
    project = write_project(tmp_path / "shop", endpoint_toml(health.url("/error"))
                            + "summarize = false\n", settings("anthropic"))
    beat = run_heartbeat(project)
    assert beat.model_called is False
    assert anthropic_env.requests == []


def test_summary_agent_failure_falls_back(health, tmp_path, anthropic_env, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    project = write_project(tmp_path / "shop", endpoint_toml(health.url("/error")),
                            settings("anthropic"))
    beat = run_heartbeat(project)
    assert beat.summary_source == "agent:devops failed"
    assert "ANTHROPIC_API_KEY is not set" in beat.summary


# The notification.

def test_notify_once_per_change(health, tmp_path):
    project = write_project(tmp_path / "shop", endpoint_toml(health.url("/error"))
                            + 'recipient = "Ann Ops"\n')
    run_heartbeat(project)
    run_heartbeat(project)
    [queued] = notifications(project)
    assert queued["recipient"] == "Ann Ops"
    assert "Endpoint api is down" in queued["text"]


def test_notify_default_owner(health, tmp_path):
    project = write_project(tmp_path / "shop", endpoint_toml(health.url("/error")))
    run_heartbeat(project)
    [queued] = notifications(project)
    assert queued["recipient"] == load_config(project).incidents["owner"]


def test_notify_nothing_needed(health, tmp_path):
    project = write_project(tmp_path / "shop", endpoint_toml(health.url("/ok")))
    beat = run_heartbeat(project)
    assert beat.notification_id is None
    assert notifications(project) == []


def test_notify_again_after_recovery(health, tmp_path):
    broken = endpoint_toml(health.url("/error"))
    project = write_project(tmp_path / "shop", broken)
    run_heartbeat(project)
    write_project(project, endpoint_toml(health.url("/ok")))
    run_heartbeat(project)
    write_project(project, broken)
    run_heartbeat(project)
    assert len(notifications(project)) == 2


def test_notify_text_scrubbed(health, tmp_path, monkeypatch):
    secret = "sk-live-4f9a8b7c6d5e4f3a2b1c"
    monkeypatch.setenv("TINYSDLC_NB_SERVICE_TOKEN", secret)
    project = write_project(tmp_path / "shop", endpoint_toml(health.url(f"/error?t={secret}")))
    run_heartbeat(project)
    [queued] = notifications(project)
    assert secret not in queued["text"]


def test_heartbeat_row_changed_flags(health, tmp_path):
    project = write_project(tmp_path / "shop", endpoint_toml(health.url("/ok")))
    run_heartbeat(project)
    run_heartbeat(project)
    store = open_store(load_config(project).database_url)
    with store.begin() as connection:
        flags = list(connection.execute(select(heartbeats.c.changed)
                                        .order_by(heartbeats.c.id)).scalars())
    store.close()
    assert flags == [True, False]


# The CLI.

def test_cli_exit_0_when_fine(project, capsys):
    assert main(["heartbeat", "--project", str(project)]) == 0
    assert "0 need a person" in capsys.readouterr().out


def test_cli_exit_1_when_needed(health, tmp_path, capsys):
    project = write_project(tmp_path / "shop", endpoint_toml(health.url("/error")))
    assert main(["heartbeat", "--project", str(project), "--json"]) == 1
    output = json.loads(capsys.readouterr().out)
    assert output["attention"] == 1
    assert output["findings"][0]["subject"] == "api"


def test_cli_missing_project_exit_2(tmp_path, capsys):
    assert main(["heartbeat", "--project", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_notify_delivered_over_webhook(health, tmp_path, monkeypatch):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[bytes] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers.get("content-length", "0"))))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, args=(0.02,), daemon=True).start()
    monkeypatch.setenv("TINYSDLC_NB_WEBHOOK_SECRET", "hook-signing-key-5d1e")
    channels = (f'[channels]\nnotify = ["webhook"]\n[channels.webhook]\n'
                f'url = "http://127.0.0.1:{hook.server_address[1]}/hook"\n')
    project = write_project(tmp_path / "shop", endpoint_toml(health.url("/error")) + channels)
    try:
        beat = run_heartbeat(project)
    finally:
        hook.shutdown()
        hook.server_close()
    assert beat.delivery["notifications_delivered"] == 1
    assert len(received) == 1
    assert "Endpoint api is down" in received[0].decode("utf-8")
    [queued] = notifications(project)
    assert queued["channel"] == "webhook"


def test_summary_handoff_tags_unwrapped():
    from tinysdlc_nb.heartbeat.summary import without_handoffs

    text = without_handoffs("API down. [@coder: fix /health] `[@pjm: kept]`")
    assert text == "API down. @coder: fix /health `[@pjm: kept]`"

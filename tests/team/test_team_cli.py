"""The team commands end to end: init, route, send, worker, queue and conversation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tinysdlc_nb.cli import main
from tinysdlc_nb.incidents.records import timeline_frame
from tinysdlc_nb.store import open_store
from tinysdlc_nb.team.inbox import pending_notifications

CLI = [sys.executable, "-m", "tinysdlc_nb.cli"]


@pytest.fixture
def run(project, capsys):
    def invoke(*args: str):
        code = main([*args, "--project", str(project)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


@pytest.fixture
def team(run, project):
    code, _out, _err = run("init")
    assert code == 0
    return project


def store_of(project):
    return open_store(f"sqlite:///{project / '.tinysdlc' / 'state.db'}")


def test_init_refuses_overwrite(team, run):
    code, _out, err = run("init")
    forced, _out, _err = run("init", "--force")

    assert code == 2
    assert "already exists" in err
    assert forced == 0


def test_init_schedules_heartbeat(team):
    from tinysdlc_nb.schedules.records import get_schedule

    store = store_of(team)
    schedule = get_schedule(store, "heartbeat")
    store.close()
    assert (schedule["kind"], schedule["target"], schedule["cron"]) == \
        ("notebook", "heartbeat", "*/15 * * * *")


def test_init_keeps_existing_heartbeat_schedule(team, run):
    _code, out, _err = run("init", "--force")
    assert "Kept the existing schedule of the heartbeat" in out


def test_init_without_heartbeat(run, project):
    from tinysdlc_nb.schedules.records import find_schedule

    code, _out, _err = run("init", "--no-heartbeat")
    store = store_of(project)
    found = find_schedule(store, "heartbeat")
    store.close()
    assert (code, found) == (0, None)


def test_route_json_shape(team, run):
    code, out, _err = run("route", "--from", "devops", "--json", "--text",
                          "Release 2.0 is blocked.\n[@coder: fix [1] and [2]] [@ghost: hi] "
                          "`[@pjm: not a tag]`")

    decision = json.loads(out)
    assert code == 0
    assert set(decision) == {"deliveries", "dropped", "shared_context"}
    assert [item["to"] for item in decision["deliveries"]] == ["coder"]
    assert decision["deliveries"][0]["directed"] == "fix [1] and [2]"
    assert set(decision["deliveries"][0]) == {"to", "directed", "message"}
    assert "Release 2.0 is blocked." in decision["deliveries"][0]["message"]
    assert decision["dropped"][0]["mention"] == "ghost"
    assert decision["dropped"][0]["reason"] == "unknown_id"
    assert decision["shared_context"] == "Release 2.0 is blocked.\n`[@pjm: not a tag]`"


def test_route_text_file(team, run, tmp_path):
    reply = tmp_path / "reply.md"
    reply.write_text("[@devops: loop]", encoding="utf-8")

    code, out, _err = run("route", "--from", "devops", "--text-file", str(reply), "--json")

    assert code == 0
    assert json.loads(out)["dropped"][0]["reason"] == "self"


def test_route_unknown_sender(team, run):
    code, _out, err = run("route", "--from", "nobody", "--text", "[@coder: x]")

    assert code == 2
    assert "--from 'nobody' is not an agent" in err


def test_send_worker_answer(team, run):
    sent, out, _err = run("send", "@devops status", "--from", "alice", "--json")
    conversation = json.loads(out)["conversation_id"]
    worked, _out, _err = run("worker", "--once")
    shown, out, _err = run("conversation", "show", f"C-{conversation}", "--json")
    detail = json.loads(out)
    listed, out, _err = run("conversation", "list", "--json")
    status_code, status_out, _err = run("queue", "status", "--json")

    assert (sent, worked, shown, listed, status_code) == (0, 0, 0, 0, 0)
    assert detail["status"] == "answered"
    assert detail["started_by"] == "alice"
    assert detail["answer"]
    assert json.loads(out)[0]["id"] == conversation
    assert json.loads(status_out)["totals"]["pending"] == 0


def test_send_unknown_target_stores_nothing(team, run, project):
    code, _out, err = run("send", "@ghost deploy")
    listed, out, _err = run("conversation", "list", "--json")

    assert code == 2
    assert "'@ghost' is not an agent or team id" in err
    assert json.loads(out) == []


def test_send_without_address_goes_default(team, run):
    code, out, _err = run("send", "what is the status?", "--json")

    assert code == 0
    assert json.loads(out)["deliveries"] == ["devops"]


def test_send_team_goes_leader(team, run):
    code, out, _err = run("send", "@qa: regression run?", "--json")

    assert code == 0
    assert json.loads(out)["deliveries"] == ["tester"]


def test_send_empty_message(team, run):
    code, _out, err = run("send", "@devops   ")

    assert code == 2
    assert "empty" in err


def test_conversation_show_unknown(team, run):
    code, _out, err = run("conversation", "show", "C-42")
    bad, _out, bad_err = run("conversation", "show", "chat-1")

    assert code == 2
    assert "conversation 42 not found" in err
    assert bad == 2
    assert "conversation id 'chat-1' is invalid" in bad_err


def test_dead_message_retry(team, run, project):
    settings = json.loads((project / ".tinysdlc" / "settings.json").read_text())
    settings["agents"]["pjm"]["provider"] = "ollama"
    (project / ".tinysdlc" / "settings.json").write_text(json.dumps(settings))
    _code, out, _err = run("send", "@pjm plan the sprint", "--json")
    message_id = json.loads(out)["message_ids"][0]

    run("worker", "--once")
    _code, out, _err = run("queue", "status", "--json")
    dead = json.loads(out)["dead"]
    retried, _out, _err = run("queue", "retry", str(message_id))
    again, _out, again_err = run("queue", "retry", str(message_id))

    assert [item["id"] for item in dead] == [message_id]
    assert "provider 'ollama'" in dead[0]["last_error"]
    assert retried == 0
    assert again == 2
    assert "is pending, not dead" in again_err


def test_anthropic_without_key_stops(team, run, project, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    run("init", "--force", "--provider", "anthropic")
    run("send", "@devops status")

    code, _out, err = run("worker", "--once")
    _code, out, _err = run("queue", "status", "--json")

    assert code == 2
    assert "ANTHROPIC_API_KEY is not set" in err
    assert json.loads(out)["totals"]["pending"] == 1


def test_escalation_reaches_owner(team, run, project):
    opened, _out, _err = run("incident", "open", "--title", "Checkout down", "--severity", "P1",
                             "--by", "alice", "--service", "checkout")
    worked, _out, _err = run("worker", "--once")
    store = store_of(project)
    rows = timeline_frame(store, 1)
    notifications = pending_notifications(store)
    store.close()

    escalated = rows[rows["kind"] == "escalated"].iloc[0]
    assert (opened, worked) == (0, 0)
    assert "queued for @devops (conversation C-1)" in escalated["description"]
    assert notifications["recipient"].tolist() == ["SE4H"]
    assert "INC-1" in notifications["text"].iloc[0]


def test_escalation_without_team_recorded(run, project):
    code, _out, _err = run("incident", "open", "--title", "DB down", "--severity", "P0",
                           "--by", "alice")
    store = store_of(project)
    rows = timeline_frame(store, 1)
    store.close()

    assert code == 0
    assert "not sent" in rows[rows["kind"] == "escalated"].iloc[0]["description"]


def test_send_wait_with_running_worker(team, project):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    worker = subprocess.Popen([*CLI, "worker", "--project", str(project)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        sent = subprocess.run([*CLI, "send", "@devops status", "--wait", "60",
                               "--project", str(project)], env=env, capture_output=True,
                              text=True, timeout=120)
    finally:
        time.sleep(0.1)
        worker.send_signal(signal.SIGTERM)
        _out, err = worker.communicate(timeout=30)

    assert sent.returncode == 0, sent.stderr
    assert "Conversation C-1" in sent.stdout
    assert "status" in sent.stdout.lower()
    assert worker.returncode == 0
    assert "1 done" in err


def test_send_wait_times_out(team, run):
    code, _out, err = run("send", "@devops status", "--wait", "0.2")

    assert code == 1
    assert "No answer after 0.2 s" in err


def test_escalation_hands_off_named_incident(team, run, project):
    for title in ("Old outage", "Payments down"):
        run("incident", "open", "--title", title, "--severity", "P1", "--by", "alice")
    run("worker", "--once")
    store = store_of(project)
    with store.engine.connect() as connection:
        from sqlalchemy import select

        from tinysdlc_nb.store.schema import team_messages
        rows = connection.execute(select(team_messages.c.conversation_id,
                                         team_messages.c.recipient, team_messages.c.directed)
                                  .where(team_messages.c.recipient == "coder")).all()
    store.close()

    second = [row.directed for row in rows if row.conversation_id == 2]
    assert len(second) == 1
    assert "INC-2 Payments down" in second[0]


def test_invalid_settings_warns_on_escalation(team, run, project):
    (project / ".tinysdlc" / "settings.json").write_text("{\"agents\": ")

    code, _out, err = run("incident", "open", "--title", "DB down", "--severity", "P0",
                          "--by", "alice")

    assert code == 0
    assert "cannot be read" in err
    assert "invalid JSON" in err

"""`tinysdlc-nb schedule ...` commands: every action, and every invalid input stores nothing."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from schedulekit import run_cli, write_notebook
from sqlalchemy import insert

from tinysdlc_nb.schedules import records
from tinysdlc_nb.store.schema import schedule_runs

RUNBOOK = """---
name: {name}
description: Print the date for a schedule test.
read_only: {read_only}
{extra}parameters:
  port: {{type: int, default: 8080}}
---

# Tiny

## Prerequisites
- [ ] bash is installed: `command bash`

## Steps
1. Print the port.
   ```bash
   echo "port $PORT"
   ```

## Monitoring
- What to watch: the output.
"""


@pytest.fixture
def notebook(project):
    return write_notebook(project / "job.ipynb", "print('ran')",
                          parameters="schedule_run_id = None\nproject = ''\nlimit = 3")


def write_runbook(project, name="tiny", read_only="true"):
    path = project / "runbooks" / f"{name}.md"
    path.parent.mkdir(exist_ok=True)
    extra = "" if read_only == "true" else "rollback_target_s: 30\n"
    path.write_text(RUNBOOK.format(name=name, read_only=read_only, extra=extra),
                    encoding="utf-8")
    return path


def add(capsys, project, *argv):
    return run_cli(capsys, "schedule", "add", *argv, "--project", str(project))


def stored(capsys, project):
    code, out, _err = run_cli(capsys, "schedule", "list", "--project", str(project), "--json")
    assert code == 0
    return json.loads(out)


def test_add_notebook_json(capsys, project, notebook):
    code, out, _err = add(capsys, project, "nightly", "--cron", "0 2 * * *", "--notebook",
                          str(notebook), "-p", "limit=5", "--json")
    schedule = json.loads(out)
    assert code == 0
    assert schedule["parameters"] == {"limit": 5}
    assert schedule["timezone"] == "UTC"
    assert schedule["next_run_at"].endswith("T02:00:00Z")


def test_add_text_parameter_stays_string(capsys, project, notebook):
    add(capsys, project, "nightly", "--cron", "0 2 * * *", "--notebook", str(notebook),
        "-p", "limit=ten")
    assert stored(capsys, project)[0]["parameters"] == {"limit": "ten"}


def test_add_zone_default_display_zone(capsys, project, notebook, tmp_path):
    (tmp_path / "home" / "config.toml").write_text(
        '[project]\ndisplay_zone = "Europe/Berlin"\n')
    add(capsys, project, "nightly", "--cron", "0 2 * * *", "--notebook", str(notebook))
    assert stored(capsys, project)[0]["timezone"] == "Europe/Berlin"


def test_add_shipped_notebook_by_name(capsys, project):
    code, _out, err = add(capsys, project, "review", "--cron", "@daily", "--notebook",
                          "incident_review")
    assert code == 0, err
    assert stored(capsys, project)[0]["target"] == "incident_review"


def test_add_gate(capsys, project):
    code, _out, err = add(capsys, project, "g4-nightly", "--cron", "0 3 * * 1-5", "--gate",
                          "g4", "-p", "version=1.2.0")
    assert code == 0, err
    assert stored(capsys, project)[0]["kind"] == "gate"


def test_add_runbook_keeps_text(capsys, project):
    write_runbook(project)
    code, _out, err = add(capsys, project, "triage", "--cron", "*/30 * * * *", "--runbook",
                          "tiny", "-p", "port=9090")
    assert code == 0, err
    assert stored(capsys, project)[0]["parameters"] == {"port": "9090"}


@pytest.mark.parametrize("argv, message", [
    (["Bad Name", "--cron", "* * * * *", "--notebook", "job.ipynb"], "schedule name"),
    (["bad", "--cron", "* * *", "--notebook", "job.ipynb"], "has 3 field(s)"),
    (["bad", "--cron", "61 * * * *", "--notebook", "job.ipynb"], "is invalid"),
    (["bad", "--cron", "* * * * *", "--tz", "Mars/Olympus", "--notebook", "job.ipynb"],
     "time zone 'Mars/Olympus' is unknown"),
    (["bad", "--cron", "* * * * *", "--notebook", "missing.ipynb"], "not found"),
    (["bad", "--cron", "* * * * *", "--notebook", "no_such_shipped"], "not found"),
    (["bad", "--cron", "* * * * *", "--notebook", "job.ipynb", "-p", "nope=1"],
     "does not declare parameter 'nope'"),
    (["bad", "--cron", "* * * * *", "--notebook", "job.ipynb", "-p", "limit"],
     "write -p NAME=VALUE"),
    (["bad", "--cron", "* * * * *", "--notebook", "job.ipynb", "-p", "limit=1", "-p",
      "limit=2"], "given twice"),
    (["bad", "--cron", "* * * * *", "--gate", "g4", "-p", "branch=main"],
     "gate parameter 'branch'"),
    (["bad", "--cron", "* * * * *", "--runbook", "nowhere"], "runbook 'nowhere' not found"),
    (["bad", "--cron", "* * * * *", "--runbook", "tiny", "-p", "port=eighty"], "port"),
    (["bad", "--cron", "* * * * *", "--runbook", "tiny", "-p", "colour=red"], "colour"),
    (["bad", "--cron", "* * * * *", "--runbook", "unsafe"], "no rollback"),
])
def test_add_invalid_stores_nothing(capsys, project, notebook, monkeypatch, argv, message):
    monkeypatch.chdir(project)
    write_runbook(project)
    write_runbook(project, "unsafe", read_only="false")
    code, _out, err = add(capsys, project, *argv)
    assert code == 2
    assert message in err
    assert stored(capsys, project) == []


@pytest.mark.parametrize("argv", [
    ["bad", "--cron", "* * * * *", "--gate", "g5"],
    ["bad", "--cron", "* * * * *", "--notebook", "job.ipynb", "--catch-up", "all"],
    ["bad", "--cron", "* * * * *"],
    ["bad", "--notebook", "job.ipynb"],
])
def test_add_invalid_arguments_exit_2(capsys, project, argv):
    with pytest.raises(SystemExit) as stopped:
        add(capsys, project, *argv)
    assert stopped.value.code == 2
    assert stored(capsys, project) == []


def test_add_project_not_folder(capsys, project, notebook, tmp_path):
    code, _out, err = run_cli(capsys, "schedule", "add", "g", "--cron", "* * * * *",
                              "--gate", "g4", "--project", str(tmp_path / "absent"))
    assert code == 2
    assert "does not exist" in err


def test_add_duplicate_exit_2(capsys, project, notebook):
    add(capsys, project, "nightly", "--cron", "0 2 * * *", "--notebook", str(notebook))
    code, _out, err = add(capsys, project, "nightly", "--cron", "0 4 * * *", "--notebook",
                          str(notebook))
    assert code == 2
    assert "schedule 'nightly' already exists" in err
    assert [item["cron"] for item in stored(capsys, project)] == ["0 2 * * *"]


def test_list_table(capsys, project, notebook):
    add(capsys, project, "nightly", "--cron", "0 2 * * *", "--notebook", str(notebook))
    code, out, _err = run_cli(capsys, "schedule", "list", "--project", str(project))
    assert code == 0
    assert "nightly" in out.splitlines()[1]


def test_pause_resume(capsys, project, notebook):
    add(capsys, project, "nightly", "--cron", "0 2 * * *", "--notebook", str(notebook))
    run_cli(capsys, "schedule", "pause", "nightly", "--project", str(project))
    assert stored(capsys, project)[0]["paused"] is True
    code, out, _err = run_cli(capsys, "schedule", "resume", "nightly", "--project",
                              str(project), "--json")
    assert code == 0
    assert json.loads(out)["paused"] is False


@pytest.mark.parametrize("action", ["show", "pause", "resume", "remove", "run-now"])
def test_unknown_schedule_exit_2(capsys, project, action):
    code, _out, err = run_cli(capsys, "schedule", action, "ghost", "--project", str(project))
    assert code == 2
    assert "schedule 'ghost' not found" in err


def insert_running(store, schedule, lease_until):
    with store.begin() as connection:
        return connection.execute(insert(schedule_runs).values(
            schedule_id=schedule["id"], schedule_name=schedule["name"], kind="notebook",
            target=schedule["target"], trigger="schedule",
            scheduled_for=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), status="running",
            started_at=dt.datetime.now(dt.UTC), scheduler="host-b:7",
            lease_expires_at=lease_until, message="")).inserted_primary_key[0]


def test_show_json_runs_newest_first(capsys, project, notebook, store):
    add(capsys, project, "nightly", "--cron", "0 2 * * *", "--notebook", str(notebook))
    schedule = records.get_schedule(store, "nightly")
    for _ in range(3):
        records.insert_run(store, schedule, trigger="run-now", status="skipped",
                           scheduled_for=None, now=dt.datetime.now(dt.UTC), scheduler="t")
    code, out, _err = run_cli(capsys, "schedule", "show", "nightly", "--project",
                              str(project), "--json")
    runs = json.loads(out)["runs"]
    assert code == 0
    assert [run["id"] for run in runs] == sorted((run["id"] for run in runs), reverse=True)
    assert runs[0]["started_at"].endswith("Z")


def test_remove_keeps_runs(capsys, project, notebook, store):
    add(capsys, project, "nightly", "--cron", "0 2 * * *", "--notebook", str(notebook))
    schedule = records.get_schedule(store, "nightly")
    run_id = records.insert_run(store, schedule, trigger="run-now", status="skipped",
                                scheduled_for=None, now=dt.datetime.now(dt.UTC), scheduler="t")
    code, out, _err = run_cli(capsys, "schedule", "remove", "nightly", "--project",
                              str(project), "--json")
    kept = records.get_run(store, run_id)
    assert code == 0
    assert json.loads(out)["runs_kept"] == 1
    assert kept["schedule_id"] is None
    assert kept["schedule_name"] == "nightly"
    assert stored(capsys, project) == []


def test_run_now_skips_when_running(capsys, project, notebook, store):
    add(capsys, project, "nightly", "--cron", "0 2 * * *", "--notebook", str(notebook))
    schedule = records.get_schedule(store, "nightly")
    busy = insert_running(store, schedule, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))
    code, out, _err = run_cli(capsys, "schedule", "run-now", "nightly", "--project",
                              str(project))
    newest = records.runs_of(store, "nightly")[0]
    assert code == 1
    assert f"run {busy} was still going" in out
    assert (newest["status"], newest["trigger"]) == ("skipped", "run-now")


def test_scheduler_once_nothing_due(capsys, project):
    code, out, _err = run_cli(capsys, "scheduler", "--once", "--project", str(project))
    assert code == 0
    assert "0 run(s) started" in out


def test_add_quoted_number_stays_text(capsys, project, notebook):
    add(capsys, project, "nightly", "--cron", "0 2 * * *", "--notebook", str(notebook),
        "-p", 'limit="8080"')
    assert stored(capsys, project)[0]["parameters"] == {"limit": "8080"}


@pytest.mark.parametrize("pair, text", [
    ("tier=bogus", "tier='bogus' is invalid"),
    ("tier=LITE", "tier='LITE' is invalid"),
    ("version=a b", "version"),
    ("environment=", "environment='' is invalid"),
])
def test_gate_bad_parameter_exits_2(capsys, project, pair, text):
    code, _out, err = run_cli(capsys, "schedule", "add", "g4x", "--cron", "@daily", "--gate",
                              "g4", "-p", pair, "--project", str(project))
    listed, out, _err = run_cli(capsys, "schedule", "list", "--json", "--project",
                                str(project))
    assert code == 2
    assert text in err
    assert "g4x" not in out


def test_gate_version_stays_text(capsys, project):
    code, _out, err = run_cli(capsys, "schedule", "add", "g4v", "--cron", "@daily", "--gate",
                              "g4", "-p", "version=1.0", "--project", str(project))
    _code, out, _err = run_cli(capsys, "schedule", "show", "g4v", "--json", "--project",
                               str(project))
    assert code == 0, err
    assert json.loads(out)["parameters"] == {"version": "1.0"}


@pytest.mark.parametrize("argv, text", [
    (["--cron", "@reboot"], "cron macro '@reboot' is not supported"),
    (["--cron", "@daily", "--tz", ""], "time zone '' is unknown"),
])
def test_add_rejects_macro_and_empty_zone(capsys, project, argv, text):
    code, _out, err = run_cli(capsys, "schedule", "add", "odd", *argv, "--notebook",
                              "heartbeat", "--project", str(project))
    assert code == 2
    assert text in err

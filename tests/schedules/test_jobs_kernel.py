"""Scheduled jobs through real kernels: notebooks, a runbook, and a SIGTERM mid-run."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from schedulekit import run_cli, write_config, write_notebook
from sqlalchemy import update

from tinysdlc_nb.schedules import records
from tinysdlc_nb.store.schema import schedules

pytestmark = pytest.mark.kernel

TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
TINY_RUNBOOK = """---
name: tiny
description: Print a port for a schedule test.
read_only: true
parameters:
  port: {type: int, default: 8080}
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


def add(capsys, project, name, *argv):
    code, _out, err = run_cli(capsys, "schedule", "add", name, "--cron", "0 3 * * *", *argv,
                              "--project", str(project))
    assert code == 0, err


def run_now(capsys, project, name):
    code, out, err = run_cli(capsys, "schedule", "run-now", name, "--project", str(project),
                             "--json")
    assert out, err
    return code, json.loads(out)


def test_notebook_run_passed_and_redacted(capsys, project):
    notebook = write_notebook(project / "job.ipynb",
                              f"print('run', schedule_run_id, 'in', project)\nprint('{TOKEN}')")
    add(capsys, project, "nightly", "--notebook", str(notebook))

    code, run = run_now(capsys, project, "nightly")

    executed = Path(run["notebook_path"]).read_text()
    page = Path(run["html_path"]).read_text()
    assert code == 0
    assert (run["status"], run["exit_code"], run["trigger"]) == ("passed", 0, "run-now")
    assert f"run {run['id']} in {project.resolve()}" in executed
    assert TOKEN not in executed
    assert TOKEN not in page
    assert "[REDACTED:GitHub token]" in page
    assert Path(run["output_dir"]) == Path(run["notebook_path"]).parent


def test_failing_notebook_recorded_failed(capsys, project, store):
    notebook = write_notebook(project / "broken.ipynb", "raise ValueError('disk full')")
    add(capsys, project, "broken", "--notebook", str(notebook))
    with store.begin() as connection:
        connection.execute(update(schedules).values(
            next_run_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))

    code, out, err = run_cli(capsys, "scheduler", "--once", "--project", str(project))

    run = records.runs_of(store, "broken")[0]
    assert code == 0, err
    assert "1 run(s) started" in out
    assert (run["status"], run["exit_code"], run["trigger"]) == ("failed", 1, "schedule")
    assert "ValueError: disk full" in run["message"]
    assert Path(run["html_path"]).is_file()


def test_runbook_job_passed(capsys, project):
    path = project / "runbooks" / "tiny.md"
    path.parent.mkdir()
    path.write_text(TINY_RUNBOOK, encoding="utf-8")
    add(capsys, project, "tiny", "--runbook", "tiny", "-p", "port=9090")

    code, run = run_now(capsys, project, "tiny")

    assert code == 0
    assert run["status"] == "passed", run["message"]
    assert "port 9090" in Path(run["notebook_path"]).read_text()
    assert Path(run["html_path"]).is_file()


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for_cell(store, name: str) -> dict:
    """Return the run of ``name`` once its job has started executing the notebook."""
    deadline = time.monotonic() + 60
    run = None
    while time.monotonic() < deadline:
        runs = records.runs_of(store, name)
        run = runs[-1] if runs else None
        log = Path(run["output_dir"]) / "job.log" if run and run["output_dir"] else None
        if log and log.is_file() and "executing slow.ipynb" in log.read_text():
            break
        time.sleep(0.2)
    assert run is not None, f"no run of {name} started within 60 s"
    time.sleep(3)  # let the kernel start the cell
    return run


def test_sigterm_interrupts_long_run(capsys, project, store, tmp_path):
    write_config(project, tmp_path / "home", {"stop_grace_s": 1, "poll_interval_s": 0.2})
    notebook = write_notebook(project / "slow.ipynb", "import time\ntime.sleep(120)")
    add(capsys, project, "slow", "--notebook", str(notebook))
    with store.begin() as connection:
        connection.execute(update(schedules).values(
            next_run_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)))
    command = [sys.executable, "-m", "tinysdlc_nb.cli", "-v", "scheduler", "--project",
               str(project)]
    scheduler = subprocess.Popen(command, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ})
    try:
        run = wait_for_cell(store, "slow")
        job_pid = records.get_run(store, run["id"])["pid"]
        children = [psutil.Process(job_pid), *descendants(job_pid)]

        scheduler.send_signal(signal.SIGTERM)
        code = scheduler.wait(timeout=40)
        stderr = scheduler.stderr.read()
    finally:
        if scheduler.poll() is None:  # a failed wait must not leave the scheduler running
            scheduler.kill()
            scheduler.wait()

    ended = records.get_run(store, run["id"])
    assert code == 0, stderr
    assert ended["status"] == "interrupted"
    assert "scheduler" in ended["message"]
    assert len(children) >= 2
    time.sleep(2)
    assert [process.pid for process in children if alive(process)] == []
    assert "stopped" in stderr.splitlines()[-1]


def test_gate_job_records_verdict(capsys, project):
    (project / "pyproject.toml").write_text('[project]\nname = "tiny"\nversion = "1.0.0"\n')
    add(capsys, project, "ship", "--gate", "g3")

    code, run = run_now(capsys, project, "ship")

    summary = json.loads((Path(run["output_dir"]) / "summary.json").read_text())
    assert (code, run["status"], run["exit_code"]) == (summary["exit_code"], "failed", 1)
    assert run["message"] == f"G3 1.0.0: {summary['verdict']}"
    assert Path(run["html_path"]).is_file()

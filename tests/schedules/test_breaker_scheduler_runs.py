"""Hard cases of scheduled runs: shared SQLite, clock jumps, removals, kills, retention."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from schedulekit import HeldRunner, notebook_spec, run_cli, write_config, write_notebook
from sqlalchemy import select

from tinysdlc_nb.config import load_config
from tinysdlc_nb.schedules import records
from tinysdlc_nb.schedules.inprocess import FinishedHandle, RecordingRunner
from tinysdlc_nb.schedules.retention import delete_old_reports
from tinysdlc_nb.schedules.scheduler import Scheduler
from tinysdlc_nb.store import utc_now
from tinysdlc_nb.store.schema import schedule_runs

HERE = Path(__file__).resolve().parent
SECOND = dt.timedelta(seconds=1)
MINUTE = dt.timedelta(minutes=1)
SHARED_JOBS = 6
SHARED_SECONDS = 5.0


@pytest.fixture
def notebook(project):
    return write_notebook(project / "job.ipynb", "print('ran')")


def add(store, project, notebook, name="job", **fields):
    return records.add_schedule(store, notebook_spec(name, project, str(notebook), **fields))


class KilledRunner:
    """A runner whose jobs end at once as if SIGKILL had ended their process."""

    def start(self, run: dict) -> FinishedHandle:
        return FinishedHandle(-9)


# Two schedulers on one SQLite file.

def start_scheduler(project: Path, url: str, scheduler_id: str, starts: Path):
    code = (f"import sys; sys.modules.setdefault('rfc3987_syntax', None); "
            f"import schedulekit; schedulekit.run_scheduler_for({str(project)!r}, "
            f"{SHARED_SECONDS}, {scheduler_id!r}, {str(starts)!r})")
    environment = {**os.environ, "TINYSDLC_NB_DATABASE_URL": url, "PYTHONPATH": str(HERE)}
    return subprocess.Popen([sys.executable, "-c", code], env=environment,
                            stderr=subprocess.PIPE, text=True)


def test_two_sqlite_schedulers_fire_once(project, config, store, notebook, tmp_path):
    for index in range(SHARED_JOBS):
        add(store, project, notebook, f"job-{index}", cron="* * * * * *")
    url = config.database_url

    processes = [start_scheduler(project, url, name, tmp_path / f"{name}.json")
                 for name in ("host-a", "host-b")]
    outcomes = [process.communicate(timeout=90) for process in processes]
    codes = [process.returncode for process in processes]
    errors = "".join(stderr for _out, stderr in outcomes)

    with store.begin() as connection:
        rows = connection.execute(select(schedule_runs)).all()
    starts = [start for name in ("host-a", "host-b")
              for start in json.loads((tmp_path / f"{name}.json").read_text())]
    fires = Counter((row.schedule_name, row.scheduled_for) for row in rows)
    started = Counter((start["schedule"], start["scheduled_for"]) for start in starts)

    assert codes == [0, 0]
    assert "database is locked" not in errors
    assert max(fires.values()) == 1
    assert max(started.values()) == 1
    assert [row.id for row in rows if row.status in ("running", "interrupted")] == []
    assert Counter(row.status for row in rows)["passed"] == len(starts)


# The clock going backwards.

def test_clock_back_no_duplicate_run(project, config, store, notebook):
    fire = add(store, project, notebook, cron="* * * * * *")["next_run_at"]
    runner = RecordingRunner()
    scheduler = Scheduler(config, store, runner=runner)

    scheduler.tick(fire + 5 * SECOND)
    scheduler.tick(fire + 2 * SECOND)
    scheduler.tick(fire + 5 * SECOND)
    scheduler.tick(fire + 6 * SECOND)

    fired = [start.scheduled_for for start in runner.starts]
    assert fired == [fire + 5 * SECOND, fire + 6 * SECOND]
    assert records.get_schedule(store, "job")["next_run_at"] == fire + 7 * SECOND


def test_clock_back_hour_minute_job(project, config, store, notebook):
    fire = add(store, project, notebook)["next_run_at"]
    runner = RecordingRunner()
    scheduler = Scheduler(config, store, runner=runner)

    scheduler.tick(fire)
    back = scheduler.tick(fire - dt.timedelta(hours=1))
    scheduler.tick(fire + MINUTE)

    runs = records.runs_of(store, "job")
    assert back == []
    assert [start.scheduled_for for start in runner.starts] == [fire, fire + MINUTE]
    assert Counter(run["scheduled_for"] for run in runs)[fire] == 1


# Removed, paused or run by hand while the scheduler runs it.

def test_removed_while_running_end_recorded(project, config, store, notebook):
    fire = add(store, project, notebook)["next_run_at"]
    runner = HeldRunner()
    scheduler = Scheduler(config, store, runner=runner)
    [run_id] = scheduler.tick(fire)

    records.remove_schedule(store, "job")
    runner.release(0)
    scheduler.tick(fire + dt.timedelta(seconds=5))

    run = records.get_run(store, run_id)
    assert run["status"] == "passed"
    assert run["finished_at"] is not None
    assert scheduler.active_runs == []


def test_paused_while_running_end_recorded(project, config, store, notebook):
    fire = add(store, project, notebook)["next_run_at"]
    runner = HeldRunner()
    scheduler = Scheduler(config, store, runner=runner)
    [run_id] = scheduler.tick(fire)

    records.set_paused(store, "job", True)
    runner.release(0)
    scheduler.tick(fire + MINUTE)

    assert records.get_run(store, run_id)["status"] == "passed"
    assert [run["id"] for run in records.runs_of(store, "job")] == [run_id]


def test_run_now_during_scheduled_run_skips(capsys, project, config, store, notebook):
    fire = add(store, project, notebook, name="nightly")["next_run_at"]
    runner = HeldRunner()
    scheduler = Scheduler(config, store, runner=runner)
    [run_id] = scheduler.tick(fire)

    code, out, _err = run_cli(capsys, "schedule", "run-now", "nightly", "--project",
                              str(project))
    runner.release(0)
    scheduler.tick(fire + dt.timedelta(seconds=5))

    newest = records.runs_of(store, "nightly")[0]
    assert code == 1
    assert f"run {run_id} was still going" in out
    assert (newest["status"], newest["trigger"]) == ("skipped", "run-now")
    assert records.get_run(store, run_id)["status"] == "passed"


def test_fire_during_run_now_skips(project, config, store, notebook):
    schedule = add(store, project, notebook)
    records.insert_run(store, schedule, trigger="run-now", status="running",
                       scheduled_for=None, now=utc_now(), scheduler="run-now", lease_s=60)
    runner = RecordingRunner()

    Scheduler(config, store, runner=runner).tick(schedule["next_run_at"])

    newest = records.runs_of(store, "job")[0]
    assert runner.starts == []
    assert (newest["status"], newest["trigger"]) == ("skipped", "schedule")


# A job process killed with SIGKILL.

def test_sigkill_at_start_recorded_error(project, config, store, notebook):
    fire = add(store, project, notebook)["next_run_at"]
    [run_id] = Scheduler(config, store, runner=KilledRunner()).tick(fire)
    run = records.get_run(store, run_id)
    assert run["status"] == "error"
    assert run["exit_code"] == -9
    assert "SIGKILL" in run["message"] or "signal 9" in run["message"]


def test_sigkill_later_recorded_error(project, config, store, notebook):
    fire = add(store, project, notebook)["next_run_at"]
    runner = HeldRunner()
    scheduler = Scheduler(config, store, runner=runner)
    [run_id] = scheduler.tick(fire)

    runner.handles[run_id].kill()
    scheduler.tick(fire + dt.timedelta(seconds=5))

    run = records.get_run(store, run_id)
    assert run["status"] == "error"
    assert run["exit_code"] == -9
    assert "SIGKILL" in run["message"] or "signal 9" in run["message"]
    assert scheduler.active_runs == []


# Retention with keep_runs = 1 and keep_days = 1.

def finished_runs(store, project, reports_root, name, ages_days, now, *, folders=True):
    """Record one passed run per age, oldest first. With ``folders``, create their reports."""
    notebook = write_notebook(project / f"{name}.ipynb", "print('ran')")
    schedule = records.add_schedule(store, notebook_spec(name, project, str(notebook)))
    run_ids = []
    for age in ages_days:
        started = now - dt.timedelta(days=age)
        run_id = records.insert_run(store, schedule, trigger="schedule", status="running",
                                    scheduled_for=started, now=started, scheduler="test",
                                    lease_s=60, reports_root=reports_root)
        records.finish_run(store, run_id, "passed", exit_code=0, message="ok", now=started)
        if folders:
            folder = reports_root / name / str(run_id)
            folder.mkdir(parents=True)
            (folder / "job.html").write_text("<p>ran</p>")
        run_ids.append(run_id)
    return run_ids


def test_keep_one_run_newest_folder_only(project, store):
    write_config(project, project.parent / "home", {"keep_runs": 1, "keep_days": 1})
    config = load_config(project)
    reports_root = config.home.resolve() / "runs" / "schedules"
    run_ids = finished_runs(store, project, reports_root, "nightly", [9, 5, 3], utc_now())

    Scheduler(config, store, runner=RecordingRunner()).tick()

    with_folder = [run_id for run_id in run_ids
                   if (reports_root / "nightly" / str(run_id)).exists()]
    assert with_folder == [run_ids[-1]]


def test_keep_one_run_folder_gone_no_crash(project, store, config):
    reports_root = config.home.resolve() / "runs" / "schedules"
    now = utc_now()
    run_ids = finished_runs(store, project, reports_root, "nightly", [9, 5, 3], now,
                            folders=False)

    deleted = delete_old_reports(store, reports_root, keep_days=1, keep_runs=1, now=now)

    assert deleted == 2
    assert records.get_run(store, run_ids[0])["reports_deleted_at"] == now
    assert records.get_run(store, run_ids[-1])["reports_deleted_at"] is None


def test_keep_one_run_twice_keeps_newest(project, store, config):
    reports_root = config.home.resolve() / "runs" / "schedules"
    now = utc_now()
    run_ids = finished_runs(store, project, reports_root, "nightly", [9, 5, 3], now)

    delete_old_reports(store, reports_root, keep_days=1, keep_runs=1, now=now)
    delete_old_reports(store, reports_root, keep_days=1, keep_runs=1,
                       now=now + dt.timedelta(days=2))

    assert (reports_root / "nightly" / str(run_ids[-1])).exists()

"""The scheduler's tick with in-process runners: claims, overlap, catch-up, limits, leases."""

from __future__ import annotations

import datetime as dt

import pytest
from schedulekit import HeldRunner, notebook_spec, write_config, write_notebook
from sqlalchemy import insert, select

from tinysdlc_nb.config import load_config
from tinysdlc_nb.schedules import records
from tinysdlc_nb.schedules.inprocess import RecordingRunner
from tinysdlc_nb.schedules.scheduler import Scheduler
from tinysdlc_nb.store.schema import schedule_runs, schedules

MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def notebook(project):
    return write_notebook(project / "job.ipynb", "print('ran')")


def add(store, project, notebook, name="job", **fields):
    return records.add_schedule(store, notebook_spec(name, project, str(notebook), **fields))


def statuses(store, name="job"):
    return [(run["status"], run["trigger"]) for run in reversed(records.runs_of(store, name))]


def configured(project, **settings):
    write_config(project, project.parent / "home", settings)
    return load_config(project)


def test_tick_starts_due_run(project, config, store, notebook):
    schedule = add(store, project, notebook)
    runner = RecordingRunner()
    scheduler = Scheduler(config, store, runner=runner)

    started = scheduler.tick(schedule["next_run_at"])
    scheduler.tick(schedule["next_run_at"])

    assert len(started) == 1
    assert runner.starts[0].scheduled_for == schedule["next_run_at"]
    assert statuses(store) == [("passed", "schedule")]


def test_tick_advances_next_run(project, config, store, notebook):
    schedule = add(store, project, notebook)
    Scheduler(config, store, runner=RecordingRunner()).tick(schedule["next_run_at"])
    assert records.get_schedule(store, "job")["next_run_at"] == schedule["next_run_at"] + MINUTE


def test_tick_nothing_before_due(project, config, store, notebook):
    schedule = add(store, project, notebook)
    started = Scheduler(config, store, runner=RecordingRunner()).tick(
        schedule["next_run_at"] - dt.timedelta(seconds=1))
    assert started == []


def test_paused_schedule_not_fired(project, config, store, notebook):
    schedule = add(store, project, notebook)
    records.set_paused(store, "job", True)
    started = Scheduler(config, store, runner=RecordingRunner()).tick(
        schedule["next_run_at"] + MINUTE)
    assert started == []


def test_overlap_records_skip(project, config, store, notebook):
    fire = add(store, project, notebook)["next_run_at"]
    runner = HeldRunner()
    scheduler = Scheduler(config, store, runner=runner)

    scheduler.tick(fire)
    scheduler.tick(fire + MINUTE)
    runner.release()
    scheduler.tick(fire + 2 * MINUTE)

    assert statuses(store) == [("passed", "schedule"), ("skipped", "schedule"),
                               ("running", "schedule")]


def test_overlap_skip_message(project, config, store, notebook):
    fire = add(store, project, notebook)["next_run_at"]
    scheduler = Scheduler(config, store, runner=HeldRunner())
    scheduler.tick(fire)
    scheduler.tick(fire + MINUTE)
    skipped = records.runs_of(store, "job")[0]
    assert skipped["message"] == "the previous run was still going"
    assert skipped["scheduled_for"] == fire + MINUTE


def test_catch_up_none_runs_newest_fire(project, config, store, notebook):
    fire = add(store, project, notebook)["next_run_at"]
    runner = RecordingRunner()
    later = fire + 10 * MINUTE + dt.timedelta(seconds=30)

    started = Scheduler(config, store, runner=runner).tick(later)

    runs = records.runs_of(store, "job")
    assert len(started) == 1
    assert [(run["status"], run["trigger"]) for run in runs] == [("passed", "schedule"),
                                                                 ("missed", "schedule")]
    assert runs[1]["message"].startswith("10 fires from ")
    assert [start.scheduled_for for start in runner.starts] == [fire + 10 * MINUTE]
    assert records.get_schedule(store, "job")["next_run_at"] == fire + 11 * MINUTE


def test_catch_up_latest_runs_once(project, config, store, notebook):
    fire = add(store, project, notebook, catch_up="latest")["next_run_at"]
    runner = RecordingRunner()
    later = fire + 10 * MINUTE + dt.timedelta(seconds=30)

    Scheduler(config, store, runner=runner).tick(later)

    runs = records.runs_of(store, "job")
    assert [(run["status"], run["trigger"]) for run in runs] == [("passed", "catch-up"),
                                                                 ("missed", "schedule")]
    assert runs[1]["message"].startswith("10 fires from ")
    assert [start.scheduled_for for start in runner.starts] == [fire + 10 * MINUTE]


def test_late_within_grace_still_runs(project, config, store, notebook):
    fire = add(store, project, notebook)["next_run_at"]
    started = Scheduler(config, store, runner=RecordingRunner()).tick(
        fire + dt.timedelta(seconds=30))
    assert len(started) == 1


def test_waiting_for_slot_started_late(project, store, notebook):
    config = configured(project, max_parallel=2)
    fires = [add(store, project, notebook, name=f"job-{index}")["next_run_at"]
             for index in range(3)]
    runner = HeldRunner()
    scheduler = Scheduler(config, store, runner=runner)

    first = scheduler.tick(fires[0])
    runner.release()
    second = scheduler.tick(fires[0] + dt.timedelta(minutes=5))

    assert len(first) == 2
    waited = [records.get_run(store, run_id) for run_id in second]
    waited = [run for run in waited if run["schedule_name"] == "job-2"]
    assert len(waited) == 1
    assert waited[0]["scheduled_for"] == fires[0]
    assert waited[0]["trigger"] == "schedule"


def test_lapsed_lease_taken_over(project, config, store, notebook):
    schedule = add(store, project, notebook)
    fire = schedule["next_run_at"]
    with store.begin() as connection:
        old = connection.execute(insert(schedule_runs).values(
            schedule_id=schedule["id"], schedule_name="job", kind="notebook",
            target=str(notebook), trigger="schedule", scheduled_for=fire - MINUTE,
            status="running", started_at=fire - MINUTE, scheduler="host-b:41",
            lease_expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5), message="")
        ).inserted_primary_key[0]

    started = Scheduler(config, store, runner=RecordingRunner()).tick(fire)

    released = records.get_run(store, old)
    assert released["status"] == "interrupted"
    assert released["message"] == "scheduler host-b:41 stopped renewing its lease"
    assert len(started) == 1


def test_live_lease_of_other_scheduler_skips(project, config, store, notebook):
    schedule = add(store, project, notebook)
    fire = schedule["next_run_at"]
    with store.begin() as connection:
        connection.execute(insert(schedule_runs).values(
            schedule_id=schedule["id"], schedule_name="job", kind="notebook",
            target=str(notebook), trigger="schedule", scheduled_for=fire - MINUTE,
            status="running", started_at=fire - MINUTE, scheduler="host-b:41",
            lease_expires_at=dt.datetime.now(dt.UTC) + MINUTE, message=""))
    Scheduler(config, store, runner=RecordingRunner()).tick(fire)
    assert records.runs_of(store, "job")[0]["status"] == "skipped"


def test_crashed_job_recorded_as_error(project, config, store, notebook):
    fire = add(store, project, notebook)["next_run_at"]
    scheduler = Scheduler(config, store, runner=RecordingRunner(job=lambda run: 7))
    scheduler.tick(fire)
    scheduler.tick(fire)
    run = records.runs_of(store, "job")[0]
    assert run["status"] == "error"
    assert run["message"] == "the job process ended with exit code 7 before it recorded a result"


def test_timeout_stops_run(project, store, notebook):
    config = configured(project, job_timeout_s=1)
    fire = add(store, project, notebook)["next_run_at"]
    runner = HeldRunner()
    scheduler = Scheduler(config, store, runner=runner)
    scheduler.tick(fire)
    scheduler._active[next(iter(scheduler._active))].started -= 5
    scheduler.tick(fire)
    run = records.runs_of(store, "job")[0]
    assert run["status"] == "error"
    assert run["message"] == "the job timed out after 1 s and was stopped"
    assert next(iter(runner.handles.values())).terminated


def test_shutdown_interrupts_runs(project, store, notebook):
    config = configured(project, stop_grace_s=0)
    fire = add(store, project, notebook)["next_run_at"]
    runner = HeldRunner()
    scheduler = Scheduler(config, store, runner=runner, scheduler_id="host-a:1")
    scheduler.tick(fire)
    scheduler.stop("test")
    scheduler.shutdown()
    run = records.runs_of(store, "job")[0]
    assert run["status"] == "interrupted"
    assert run["message"].startswith("released by scheduler host-a:1 on stop (test)")
    assert scheduler.active_runs == []


def test_stopped_scheduler_starts_nothing(project, config, store, notebook):
    fire = add(store, project, notebook)["next_run_at"]
    scheduler = Scheduler(config, store, runner=RecordingRunner())
    scheduler.stop("test")
    assert scheduler.tick(fire) == []


def test_two_schedulers_one_claim(project, config, any_store, notebook):
    fire = add(any_store, project, notebook)["next_run_at"]
    first, second = RecordingRunner(), RecordingRunner()
    Scheduler(config, any_store, runner=first, scheduler_id="a").tick(fire)
    Scheduler(config, any_store, runner=second, scheduler_id="b").tick(fire)
    with any_store.begin() as connection:
        rows = connection.execute(select(schedule_runs.c.scheduled_for)).all()
    assert len(rows) == 1
    assert len(first.starts) + len(second.starts) == 1


def test_lost_claim_still_advances(project, config, any_store, notebook):
    schedule = add(any_store, project, notebook)
    fire = schedule["next_run_at"]
    records.insert_run(any_store, schedule, trigger="schedule", status="running",
                       scheduled_for=fire, now=fire, scheduler="crashed", lease_s=600)
    started = Scheduler(config, any_store, runner=RecordingRunner()).tick(fire)
    with any_store.begin() as connection:
        following = connection.execute(select(schedules.c.next_run_at)).scalar_one()
    assert started == []
    assert following.replace(tzinfo=dt.UTC) == fire + MINUTE


def test_broken_schedule_paused(project, config, store, notebook):
    fire = add(store, project, notebook)["next_run_at"]
    with store.begin() as connection:
        connection.execute(schedules.update().values(timezone="Gone/Zone"))
    started = Scheduler(config, store, runner=RecordingRunner()).tick(fire)
    assert started == []
    assert records.get_schedule(store, "job")["paused"] is True


def test_one_missed_fire_message(project, config, store, notebook):
    fire = add(store, project, notebook)["next_run_at"]
    started = Scheduler(config, store, runner=RecordingRunner()).tick(
        fire + dt.timedelta(seconds=90))

    missed = records.runs_of(store, "job")[-1]
    assert missed["message"] == f"the fire at {fire.isoformat()} was not run (catch-up none)"
    assert len(started) == 1


def test_stale_newest_fire_is_missed(project, store, notebook):
    config = configured(project, misfire_grace_s=10)
    fire = add(store, project, notebook)["next_run_at"]
    later = fire + 10 * MINUTE + dt.timedelta(seconds=30)

    started = Scheduler(config, store, runner=RecordingRunner()).tick(later)

    runs = records.runs_of(store, "job")
    assert started == []
    assert [run["status"] for run in runs] == ["missed"]
    assert runs[0]["message"].startswith("11 fires from ")
    assert records.get_schedule(store, "job")["next_run_at"] == fire + 11 * MINUTE


def test_piled_up_fires_run_once(project, config, store, notebook):
    fire = add(store, project, notebook)["next_run_at"]
    scheduler = Scheduler(config, store, runner=HeldRunner())

    scheduler.tick(fire)
    scheduler.tick(fire + 3 * MINUTE + dt.timedelta(seconds=5))

    assert statuses(store) == [("running", "schedule"), ("missed", "schedule"),
                               ("skipped", "schedule")]

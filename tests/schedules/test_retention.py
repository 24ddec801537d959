"""Retention: old report folders go, their records and the newest folders stay."""

from __future__ import annotations

import datetime as dt

import pytest
from schedulekit import notebook_spec, write_notebook

from tinysdlc_nb.schedules import records
from tinysdlc_nb.schedules.retention import delete_old_reports

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def reports_root(config):
    return config.home / "runs" / "schedules"


def make_runs(store, project, reports_root, name, ages_days):
    """Record one finished run per age (oldest first), each with a report folder."""
    notebook = write_notebook(project / f"{name}.ipynb", "print('ran')")
    schedule = records.add_schedule(store, notebook_spec(name, project, str(notebook)))
    run_ids = []
    for age in ages_days:
        started = NOW - dt.timedelta(days=age)
        run_id = records.insert_run(store, schedule, trigger="schedule", status="running",
                                    scheduled_for=started, now=started, scheduler="test",
                                    lease_s=60, reports_root=reports_root)
        records.finish_run(store, run_id, "passed", exit_code=0, message="ok", now=started)
        folder = reports_root / name / str(run_id)
        folder.mkdir(parents=True)
        (folder / "report.html").write_text("<p>ok</p>")
        run_ids.append(run_id)
    return run_ids


def test_retention_deletes_old_beyond_keep(project, store, reports_root):
    run_ids = make_runs(store, project, reports_root, "nightly", [40, 35, 31, 5, 1])
    deleted = delete_old_reports(store, reports_root, keep_days=30, keep_runs=3, now=NOW)
    kept = [run_id for run_id in run_ids if (reports_root / "nightly" / str(run_id)).exists()]
    assert deleted == 2
    assert kept == run_ids[2:]


def test_retention_keeps_records(project, store, reports_root):
    run_ids = make_runs(store, project, reports_root, "nightly", [40, 35, 1])
    delete_old_reports(store, reports_root, keep_days=30, keep_runs=1, now=NOW)
    oldest = records.get_run(store, run_ids[0])
    newest = records.get_run(store, run_ids[-1])
    assert oldest["status"] == "passed"
    assert oldest["reports_deleted_at"] == NOW
    assert newest["reports_deleted_at"] is None


def test_retention_keeps_newest_runs_whatever_age(project, store, reports_root):
    run_ids = make_runs(store, project, reports_root, "weekly", [90, 80, 70])
    deleted = delete_old_reports(store, reports_root, keep_days=30, keep_runs=3, now=NOW)
    assert deleted == 0
    assert all((reports_root / "weekly" / str(run_id)).exists() for run_id in run_ids)


def test_retention_counts_per_schedule(project, store, reports_root):
    make_runs(store, project, reports_root, "first", [60, 50])
    second = make_runs(store, project, reports_root, "second", [60])
    delete_old_reports(store, reports_root, keep_days=30, keep_runs=1, now=NOW)
    assert (reports_root / "second" / str(second[0])).exists()


def test_retention_skips_folder_outside_root(project, store, reports_root, tmp_path):
    run_ids = make_runs(store, project, reports_root, "nightly", [60, 50, 1])
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    from sqlalchemy import update

    from tinysdlc_nb.store.schema import schedule_runs
    with store.begin() as connection:
        connection.execute(update(schedule_runs).where(schedule_runs.c.id == run_ids[0])
                           .values(output_dir=str(outside)))
    deleted = delete_old_reports(store, reports_root, keep_days=30, keep_runs=1, now=NOW)
    assert outside.exists()
    assert deleted == 1

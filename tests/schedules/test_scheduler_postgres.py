"""Two scheduler processes sharing one PostgreSQL store run each fire once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from schedulekit import notebook_spec, write_notebook
from sqlalchemy import select

from tinysdlc_nb.schedules import records
from tinysdlc_nb.store import open_store
from tinysdlc_nb.store.schema import schedule_runs

HERE = Path(__file__).resolve().parent
JOBS = 12
SECONDS = 5.0


def start_scheduler(project: Path, url: str, scheduler_id: str, starts: Path):
    code = (f"import sys; sys.modules.setdefault('rfc3987_syntax', None); "
            f"import schedulekit; schedulekit.run_scheduler_for({str(project)!r}, {SECONDS}, "
            f"{scheduler_id!r}, {str(starts)!r})")
    environment = {**os.environ, "TINYSDLC_NB_DATABASE_URL": url,
                   "PYTHONPATH": str(HERE)}
    return subprocess.Popen([sys.executable, "-c", code], env=environment)


def fires_covered(row) -> int:
    """Return how many fires one run row stands for: a missed row names its count."""
    if row.status != "missed":
        return 1
    if row.message.startswith("the fire at "):
        return 1
    return int(row.message.split()[0])


@pytest.mark.postgres
def test_two_processes_fire_once(project, pg_url, tmp_path, monkeypatch):
    notebook = write_notebook(project / "job.ipynb", "print('ran')")
    store = open_store(pg_url)
    for index in range(JOBS):
        records.add_schedule(store, notebook_spec(f"job-{index}", project, str(notebook),
                                                  cron="* * * * * *"))

    processes = [start_scheduler(project, pg_url, name, tmp_path / f"{name}.json")
                 for name in ("host-a", "host-b")]
    codes = [process.wait(timeout=60) for process in processes]

    starts = [start for name in ("host-a", "host-b")
              for start in json.loads((tmp_path / f"{name}.json").read_text())]
    with store.begin() as connection:
        rows = connection.execute(select(schedule_runs)).all()
    store.close()

    assert codes == [0, 0]
    started = Counter((start["schedule"], start["scheduled_for"]) for start in starts)
    assert max(started.values()) == 1
    fires = Counter((row.schedule_name, row.scheduled_for) for row in rows)
    assert max(fires.values()) == 1
    assert {row.scheduler for row in rows} == {"host-a", "host-b"}
    for index in range(JOBS):
        own = sorted((row for row in rows if row.schedule_name == f"job-{index}"),
                     key=lambda row: row.scheduled_for)
        assert len(own) >= 3
        span_s = (own[-1].scheduled_for - own[0].scheduled_for).total_seconds()
        assert sum(fires_covered(row) for row in own) == span_s + 1
    assert {row.status for row in rows} <= {"passed", "skipped", "missed"}
    assert Counter(row.status for row in rows)["passed"] == len(starts)

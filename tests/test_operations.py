"""The operations views: schedules, runs, the last heartbeat and channel delivery."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import insert

from tinysdlc_nb import operations
from tinysdlc_nb.config import load_config
from tinysdlc_nb.execute import packaged_notebook, run_notebook
from tinysdlc_nb.store import open_store
from tinysdlc_nb.store.schema import (
    channel_attempts,
    heartbeats,
    notification_deliveries,
    schedule_runs,
    schedules,
    team_notifications,
)

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


def _ops(project, store):
    return operations.Operations(load_config(project), store)


def _schedule(connection, name: str, next_run: dt.datetime) -> int:
    return connection.execute(insert(schedules).values(
        name=name, kind="notebook", target="heartbeat", project="/srv/app", parameters="{}",
        cron="*/15 * * * *", timezone="UTC", catch_up="none", paused=False, created_by="ana",
        created_at=NOW, updated_at=NOW, next_run_at=next_run)).inserted_primary_key[0]


def _run(connection, schedule_id: int, status: str, scheduled: dt.datetime,
         started_late_s: float, duration_s: float | None) -> int:
    started = scheduled + dt.timedelta(seconds=started_late_s)
    finished = started + dt.timedelta(seconds=duration_s) if duration_s is not None else None
    return connection.execute(insert(schedule_runs).values(
        schedule_id=schedule_id, schedule_name="beat", kind="notebook", target="heartbeat",
        trigger="schedule", scheduled_for=scheduled, status=status, exit_code=0,
        started_at=started, finished_at=finished, message=f"{status} run")
    ).inserted_primary_key[0]


@pytest.fixture
def seeded(any_store, tmp_path):
    """A store with one schedule, three of its runs and one skip."""
    with any_store.begin() as connection:
        beat = _schedule(connection, "beat", NOW + dt.timedelta(minutes=15))
        _run(connection, beat, "passed", NOW - dt.timedelta(minutes=45), 0.5, 12.0)
        _run(connection, beat, "failed", NOW - dt.timedelta(minutes=30), 0.25, 20.0)
        _run(connection, beat, "skipped", NOW - dt.timedelta(minutes=15), 0.0, 0.0)
        _run(connection, beat, "passed", NOW - dt.timedelta(minutes=5), 1.5, 10.0)
    return _ops(tmp_path, any_store)


def test_schedules_frame_last_status(seeded):
    frame = operations.schedules_frame(seeded, now=NOW)
    assert frame.loc[0, "last_status"] == "passed"


def test_schedules_frame_last_duration(seeded):
    frame = operations.schedules_frame(seeded, now=NOW)
    assert frame.loc[0, "last_duration_s"] == pytest.approx(10.0)


def test_schedules_frame_counts_runs_of_a_day(seeded):
    frame = operations.schedules_frame(seeded, now=NOW)
    assert (frame.loc[0, "runs_24h"], frame.loc[0, "problems_24h"]) == (4, 1)


def test_schedules_frame_shows_display_zone(tmp_path, sqlite_store):
    (tmp_path / ".tinysdlc").mkdir()
    (tmp_path / ".tinysdlc" / "config.toml").write_text(
        '[project]\ndisplay_zone = "Europe/Berlin"\n')
    with sqlite_store.begin() as connection:
        _schedule(connection, "beat", NOW)
    frame = operations.schedules_frame(_ops(tmp_path, sqlite_store), now=NOW)
    assert frame.loc[0, "next_run"].strftime("%H:%M %Z") == "13:00 CET"


def test_schedules_frame_empty(tmp_path, sqlite_store):
    frame = operations.schedules_frame(_ops(tmp_path, sqlite_store), now=NOW)
    assert list(frame.columns)[:3] == ["name", "kind", "target"]
    assert frame.empty


def test_runs_frame_newest_first(seeded):
    frame = operations.runs_frame(seeded)
    assert list(frame["status"]) == ["passed", "skipped", "failed", "passed"]


def test_runs_frame_lateness(seeded):
    frame = operations.runs_frame(seeded)
    assert frame.loc[0, "late_s"] == pytest.approx(1.5)


def test_runs_frame_filters_schedule(seeded):
    assert operations.runs_frame(seeded, schedule="other").empty


def test_last_heartbeat_none_before_first_beat(tmp_path, sqlite_store):
    assert operations.last_heartbeat(_ops(tmp_path, sqlite_store)) is None


def test_last_heartbeat_decodes_findings(tmp_path, sqlite_store):
    findings = [{"kind": "endpoint", "subject": "api", "state": "down", "needs_person": True}]
    with sqlite_store.begin() as connection:
        for fingerprint in ("a" * 64, "b" * 64):
            connection.execute(insert(heartbeats).values(
                at=NOW, fingerprint=fingerprint, changed=True, model_called=False,
                attention=1, notified=1, summary="api is down", findings=json.dumps(findings)))
    beat = operations.last_heartbeat(_ops(tmp_path, sqlite_store))
    assert (beat["fingerprint"], beat["findings"]) == ("b" * 64, findings)


def test_findings_frame_puts_people_first():
    beat = {"findings": [{"subject": "queue", "needs_person": False},
                         {"subject": "api", "needs_person": True}]}
    assert list(operations.findings_frame(beat)["subject"]) == ["api", "queue"]


def _notification(connection, text: str) -> int:
    return connection.execute(insert(team_notifications).values(
        recipient="SE4H", text=text, created_at=NOW)).inserted_primary_key[0]


def _delivery(connection, notification_id: int, channel: str, attempts: int,
              delivered: bool, error: str | None) -> int:
    return connection.execute(insert(notification_deliveries).values(
        notification_id=notification_id, channel=channel,
        status="delivered" if delivered else "pending", parts_total=1,
        parts_sent=1 if delivered else 0, attempts=attempts, next_attempt_at=NOW,
        last_error=error, created_at=NOW, delivered_at=NOW if delivered else None)
    ).inserted_primary_key[0]


@pytest.fixture
def deliveries(any_store, tmp_path):
    with any_store.begin() as connection:
        first = _notification(connection, "api is down")
        second = _notification(connection, "sign-off waits")
        sent = _delivery(connection, first, "slack", 1, True, None)
        _delivery(connection, second, "slack", 3, False, "HTTP 500 from slack")
        _delivery(connection, first, "telegram", 0, False, None)
        connection.execute(insert(channel_attempts).values(
            delivery_id=sent, at=NOW, part=1, http_status=200, outcome="sent"))
    return _ops(tmp_path, any_store)


def test_deliveries_frame_per_channel(deliveries):
    frame = operations.deliveries_frame(deliveries).set_index("channel")
    assert frame.loc["slack", ["delivered", "waiting", "failing"]].tolist() == [1, 1, 1]


def test_deliveries_frame_last_error(deliveries):
    frame = operations.deliveries_frame(deliveries).set_index("channel")
    assert frame.loc["slack", "last_error"] == "HTTP 500 from slack"


def test_waiting_notifications_counts_attempts(deliveries):
    frame = operations.waiting_notifications(deliveries)
    assert frame.set_index("text").loc["sign-off waits", "attempts"] == 3


def test_recent_attempts_names_channel(deliveries):
    frame = operations.recent_attempts(deliveries)
    assert frame.loc[0, ["channel", "http_status", "outcome"]].tolist() == ["slack", 200, "sent"]


@pytest.mark.kernel
def test_operations_notebook_runs(tmp_path):
    store = open_store(load_config(tmp_path).database_url)
    with store.begin() as connection:
        beat = _schedule(connection, "beat", NOW)
        _run(connection, beat, "failed", NOW, 0.5, 3.0)
        _notification(connection, "api is down")
    store.close()
    execution = run_notebook(packaged_notebook("operations"), {"project": str(tmp_path)},
                             cwd=tmp_path, cell_timeout_s=120)
    text = json.dumps(execution.notebook["cells"])
    assert execution.completed, execution.message
    assert "failed run" in text
    assert "api is down" in text

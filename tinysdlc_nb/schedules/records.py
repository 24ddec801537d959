"""Store access for schedules and their runs (tables ``schedules`` and ``schedule_runs``).

Every time written here is aware UTC, and every time read back is passed through
``as_utc``, because SQLite returns naive values.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..errors import UsageError
from ..store import Store, as_utc, utc_now
from ..store.schema import schedule_runs, schedules
from .cron import parse_cron
from .model import ScheduleSpec, validate_spec

log = logging.getLogger(__name__)

RUNNING = "running"
FINISHED_STATUSES = ("passed", "failed", "error", "skipped", "missed", "interrupted")
_TIME_COLUMNS = ("created_at", "updated_at", "next_run_at", "scheduled_for", "started_at",
                 "finished_at", "lease_expires_at", "reports_deleted_at")


def add_schedule(store: Store, spec: ScheduleSpec, *, now: dt.datetime | None = None
                 ) -> dict[str, Any]:
    """Validate ``spec`` and store it; raise UsageError when the name is taken."""
    spec = validate_spec(spec)
    now = now or utc_now()
    values = {"name": spec.name, "kind": spec.kind, "target": spec.target,
              "project": spec.project, "parameters": json.dumps(spec.parameters),
              "cron": spec.cron, "timezone": spec.timezone, "catch_up": spec.catch_up,
              "paused": spec.paused, "created_by": spec.created_by, "created_at": now,
              "updated_at": now,
              "next_run_at": parse_cron(spec.cron, spec.timezone).next_after(now)}
    try:
        with store.begin() as connection:
            connection.execute(insert(schedules).values(**values))
    except IntegrityError:
        raise UsageError(f"schedule '{spec.name}' already exists; pick another name, or "
                         f"remove it first with `tinysdlc-nb schedule remove {spec.name}`"
                         ) from None
    log.info("schedule %s added: %s %s, cron '%s' in %s", spec.name, spec.kind, spec.target,
             spec.cron, spec.timezone)
    return get_schedule(store, spec.name)


def ensure_schedule(store: Store, spec: ScheduleSpec) -> bool:
    """Add ``spec`` unless a schedule of that name exists; return True when it was added."""
    if find_schedule(store, spec.name) is not None:
        return False
    try:
        add_schedule(store, spec)
    except UsageError:
        if find_schedule(store, spec.name) is not None:
            return False  # another process added it in between
        raise
    return True


def find_schedule(store: Store, name: str) -> dict[str, Any] | None:
    with store.begin() as connection:
        row = connection.execute(select(schedules).where(schedules.c.name == name)).first()
    return _schedule_dict(row) if row is not None else None


def get_schedule(store: Store, name: str) -> dict[str, Any]:
    """Return the schedule ``name``; raise UsageError naming the known ones when absent."""
    schedule = find_schedule(store, name)
    if schedule is None:
        known = ", ".join(item["name"] for item in list_schedules(store)) or "none"
        raise UsageError(f"schedule '{name}' not found; known schedules: {known}")
    return schedule


def list_schedules(store: Store) -> list[dict[str, Any]]:
    with store.begin() as connection:
        rows = connection.execute(select(schedules).order_by(schedules.c.name)).all()
    return [_schedule_dict(row) for row in rows]


def set_paused(store: Store, name: str, paused: bool, *, now: dt.datetime | None = None
               ) -> dict[str, Any]:
    """Pause or resume ``name``. Resuming restarts from now, so the pause leaves no misses."""
    schedule = get_schedule(store, name)
    now = now or utc_now()
    values: dict[str, Any] = {"paused": paused, "updated_at": now}
    if not paused:
        values["next_run_at"] = parse_cron(schedule["cron"], schedule["timezone"]).next_after(now)
    with store.begin() as connection:
        connection.execute(update(schedules).where(schedules.c.id == schedule["id"])
                           .values(**values))
    log.info("schedule %s %s", name, "paused" if paused else "resumed")
    return get_schedule(store, name)


def remove_schedule(store: Store, name: str) -> int:
    """Delete ``name``; its runs stay, with schedule_id emptied. Return how many runs it had."""
    schedule = get_schedule(store, name)
    with store.begin() as connection:
        kept = connection.execute(update(schedule_runs)
                                  .where(schedule_runs.c.schedule_id == schedule["id"])
                                  .values(schedule_id=None)).rowcount
        connection.execute(delete(schedules).where(schedules.c.id == schedule["id"]))
    log.info("schedule %s removed; %d run record(s) kept", name, kept)
    return kept


def runs_of(store: Store, name: str, limit: int = 20) -> list[dict[str, Any]]:
    """Return the newest ``limit`` runs of ``name``, newest first.

    For a removed schedule, the runs it left behind under that name are returned.
    """
    schedule = find_schedule(store, name)
    condition = schedule_runs.c.schedule_id == schedule["id"] if schedule is not None else \
        and_(schedule_runs.c.schedule_name == name, schedule_runs.c.schedule_id.is_(None))
    with store.begin() as connection:
        rows = connection.execute(select(schedule_runs).where(condition)
                                  .order_by(schedule_runs.c.id.desc()).limit(limit)).all()
    return [_times(row._asdict()) for row in rows]


def get_run(store: Store, run_id: int) -> dict[str, Any] | None:
    with store.begin() as connection:
        row = connection.execute(select(schedule_runs)
                                 .where(schedule_runs.c.id == run_id)).first()
    return _times(row._asdict()) if row is not None else None


def insert_run(store: Store, schedule: dict[str, Any], *, trigger: str, status: str,
               scheduled_for: dt.datetime | None, now: dt.datetime, scheduler: str | None,
               lease_s: float | None = None, message: str = "",
               reports_root=None) -> int | None:
    """Insert one run row and return its id, or None when another claim won that fire.

    A row for a fire (schedule_id, scheduled_for) can exist once, so of several schedulers
    inserting the same fire exactly one succeeds. ``reports_root`` sets the run's report
    folder, ``<reports_root>/<schedule name>/<run id>``.
    """
    run = claim_fire(store, schedule, trigger=trigger, status=status,
                     scheduled_for=scheduled_for, now=now, scheduler=scheduler,
                     lease_s=lease_s, message=message, reports_root=reports_root)
    return run["id"] if run is not None else None


def claim_fire(store: Store, schedule: dict[str, Any], *, trigger: str, status: str,
               scheduled_for: dt.datetime | None, now: dt.datetime, scheduler: str | None,
               lease_s: float | None = None, message: str = "", reports_root=None,
               following: dt.datetime | None = None) -> dict[str, Any] | None:
    """Insert a run row as ``insert_run`` does and return it as a dict, or None.

    With ``following``, the same transaction also moves the schedule's next_run_at from
    its current value to ``following``. When the insert loses, the move is tried alone.
    A fire claimed by a scheduler that crashed before moving it then cannot block the
    schedule.
    """
    finished = now if status != RUNNING else None
    lease = now + dt.timedelta(seconds=lease_s) if status == RUNNING and lease_s else None
    values = {"schedule_id": schedule["id"], "schedule_name": schedule["name"],
              "kind": schedule["kind"], "target": schedule["target"], "trigger": trigger,
              "scheduled_for": scheduled_for, "status": status, "started_at": now,
              "finished_at": finished, "scheduler": scheduler, "lease_expires_at": lease,
              "message": message, "output_dir": None}
    try:
        with store.begin() as connection:
            inserted = connection.execute(insert(schedule_runs).values(**values))
            values["id"] = int(inserted.inserted_primary_key[0])
            if reports_root is not None:
                values["output_dir"] = str(reports_root / schedule["name"] / str(values["id"]))
                connection.execute(update(schedule_runs)
                                   .where(schedule_runs.c.id == values["id"])
                                   .values(output_dir=values["output_dir"]))
            if following is not None:
                connection.execute(_advance(schedule, following))
    except IntegrityError:
        if following is not None:
            with store.begin() as connection:
                connection.execute(_advance(schedule, following))
        return None
    return values


def _advance(schedule: dict[str, Any], following: dt.datetime):
    return update(schedules).where(schedules.c.id == schedule["id"],
                                   schedules.c.next_run_at == schedule["next_run_at"]
                                   ).values(next_run_at=following)


def advance_schedule(store: Store, schedule_id: int, expected: dt.datetime,
                     following: dt.datetime) -> bool:
    """Move next_run_at from ``expected`` to ``following``; False when it had moved already."""
    with store.begin() as connection:
        changed = connection.execute(
            update(schedules).where(schedules.c.id == schedule_id,
                                    schedules.c.next_run_at == expected)
            .values(next_run_at=following)).rowcount
    return changed == 1


def finish_run(store: Store, run_id: int, status: str, *, exit_code: int | None,
               message: str, now: dt.datetime | None = None, **paths: str | None) -> bool:
    """Record how a running run ended; False when it had already ended (nothing changed).

    ``paths`` may set output_dir, notebook_path and html_path.
    """
    values = {"status": status, "exit_code": exit_code, "message": message[:2000],
              "finished_at": now or utc_now(), "lease_expires_at": None, **paths}
    with store.begin() as connection:
        changed = connection.execute(
            update(schedule_runs).where(schedule_runs.c.id == run_id,
                                        schedule_runs.c.status == RUNNING)
            .values(**values)).rowcount
    return changed == 1


def pause_broken(store: Store, schedule_id: int) -> None:
    """Pause a schedule the scheduler cannot compute fires for, so it stops retrying it."""
    with store.begin() as connection:
        connection.execute(update(schedules).where(schedules.c.id == schedule_id)
                           .values(paused=True, updated_at=utc_now()))


def set_run_process(store: Store, run_id: int, pid: int | None) -> None:
    with store.begin() as connection:
        connection.execute(update(schedule_runs).where(schedule_runs.c.id == run_id)
                           .values(pid=pid))


def renew_leases(store: Store, run_ids: list[int], until: dt.datetime) -> None:
    if not run_ids:
        return
    with store.begin() as connection:
        connection.execute(update(schedule_runs)
                           .where(schedule_runs.c.id.in_(run_ids),
                                  schedule_runs.c.status == RUNNING)
                           .values(lease_expires_at=until))


def running_runs(store: Store, schedule_id: int | None = None) -> list[dict[str, Any]]:
    """Return the running runs of ``schedule_id``, or of every schedule when it is None."""
    query = select(schedule_runs).where(schedule_runs.c.status == RUNNING)
    if schedule_id is not None:
        query = query.where(schedule_runs.c.schedule_id == schedule_id)
    with store.begin() as connection:
        rows = connection.execute(query).all()
    return [_times(row._asdict()) for row in rows]


def lapsed_runs(store: Store, now: dt.datetime) -> list[dict[str, Any]]:
    """Return running runs whose lease ended before ``now`` (or that never had one)."""
    with store.begin() as connection:
        rows = connection.execute(select(schedule_runs).where(
            schedule_runs.c.status == RUNNING,
            or_(schedule_runs.c.lease_expires_at < now,
                schedule_runs.c.lease_expires_at.is_(None)))).all()
    return [_times(row._asdict()) for row in rows]


def due_schedules(store: Store, now: dt.datetime) -> list[dict[str, Any]]:
    with store.begin() as connection:
        rows = connection.execute(select(schedules).where(
            schedules.c.paused.is_(False), schedules.c.next_run_at <= now)
            .order_by(schedules.c.next_run_at)).all()
    return [_schedule_dict(row) for row in rows]


def next_due_at(store: Store) -> dt.datetime | None:
    with store.begin() as connection:
        value = connection.execute(select(func.min(schedules.c.next_run_at))
                                   .where(schedules.c.paused.is_(False))).scalar()
    return as_utc(value) if value is not None else None


def _schedule_dict(row) -> dict[str, Any]:
    schedule = _times(row._asdict())
    schedule["parameters"] = json.loads(schedule["parameters"])
    return schedule


def _times(values: dict[str, Any]) -> dict[str, Any]:
    for key in _TIME_COLUMNS:
        if values.get(key) is not None:
            values[key] = as_utc(values[key])
    return values

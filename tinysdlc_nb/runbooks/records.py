"""Runbook runs and steps in the store: written by the run, read by history and the gate."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update

from ..scrub import scrub, scrub_data
from ..store import Store, utc_now
from ..store.schema import runbook_runs, runbook_steps
from .model import RunStatus, StepStatus

TAIL_LIMIT = 8000


@dataclass(frozen=True)
class RunStart:
    """The facts of a run known before its first step."""

    project: str
    runbook: str
    runbook_path: str
    runbook_sha256: str
    service: str
    version: str | None
    environment: str
    mode: str
    parameters: dict[str, Any]
    operator: str
    no_rollback: bool
    rollback_target_s: float | None


@dataclass(frozen=True)
class StepRecord:
    """One executed (or skipped) step, as the store keeps it."""

    phase: str
    number: int
    title: str
    status: StepStatus
    exit_code: int | None
    started_at: dt.datetime
    duration_s: float
    output_bytes: int = 0
    output_tail: str = ""
    log_path: str | None = None
    message: str = ""


def create_run(store: Store, start: RunStart) -> int:
    """Insert a run in status ``running`` and return its id."""
    values = {
        "project": start.project, "runbook": start.runbook, "runbook_path": start.runbook_path,
        "runbook_sha256": start.runbook_sha256, "service": start.service,
        "version": start.version, "environment": start.environment, "mode": start.mode,
        "parameters": json.dumps(scrub_data(start.parameters), sort_keys=True, default=str),
        "operator": start.operator, "no_rollback": start.no_rollback,
        "status": RunStatus.RUNNING.value, "message": "", "started_at": utc_now(),
        "rollback_target_s": start.rollback_target_s,
    }
    with store.begin() as connection:
        return connection.execute(insert(runbook_runs).values(values)).inserted_primary_key[0]


def set_run_files(store: Store, run_id: int, run_dir: str, notebook_path: str | None) -> None:
    with store.begin() as connection:
        connection.execute(update(runbook_runs).where(runbook_runs.c.id == run_id).values(
            run_dir=run_dir, notebook_path=notebook_path))


def finish_run(store: Store, run_id: int, status: RunStatus, exit_code: int, message: str,
               rollback_healthy_s: float | None = None) -> None:
    """Record how a run ended; a run already finished keeps its first ending."""
    with store.begin() as connection:
        connection.execute(
            update(runbook_runs)
            .where(runbook_runs.c.id == run_id, runbook_runs.c.status == RunStatus.RUNNING.value)
            .values(status=status.value, exit_code=exit_code, message=_storable(message),
                    finished_at=utc_now(), rollback_healthy_s=rollback_healthy_s))


def _storable(text: str) -> str:
    """Return ``text`` scrubbed, with NUL shown as ``\\x00``: PostgreSQL text cannot hold it."""
    return scrub(text).replace("\x00", "\\x00")


def record_step(store: Store, run_id: int, step: StepRecord) -> None:
    tail = _storable(step.output_tail)
    if len(tail) > TAIL_LIMIT:
        tail = tail[-TAIL_LIMIT:]
    with store.begin() as connection:
        connection.execute(insert(runbook_steps).values(
            run_id=run_id, phase=step.phase, number=step.number, title=_storable(step.title),
            status=step.status.value, exit_code=step.exit_code, started_at=step.started_at,
            duration_s=step.duration_s, output_bytes=step.output_bytes, output_tail=tail,
            log_path=step.log_path, message=_storable(step.message)))


def get_run(store: Store, run_id: int) -> dict[str, Any] | None:
    with store.begin() as connection:
        row = connection.execute(select(runbook_runs).where(runbook_runs.c.id == run_id)) \
            .mappings().first()
    return dict(row) if row else None


def steps_of(store: Store, run_id: int) -> list[dict[str, Any]]:
    with store.begin() as connection:
        rows = connection.execute(select(runbook_steps).where(runbook_steps.c.run_id == run_id)
                                  .order_by(runbook_steps.c.id)).mappings().all()
    return [dict(row) for row in rows]


def list_runs(store: Store, runbook: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """Return the newest runs first, each with its steps under ``steps``."""
    query = select(runbook_runs).order_by(runbook_runs.c.id.desc()).limit(limit)
    if runbook:
        query = query.where(runbook_runs.c.runbook == runbook)
    with store.begin() as connection:
        runs = [dict(row) for row in connection.execute(query).mappings()]
        ids = [run["id"] for run in runs]
        steps = connection.execute(
            select(runbook_steps).where(runbook_steps.c.run_id.in_(ids))
            .order_by(runbook_steps.c.id)).mappings().all() if ids else []

    by_run: dict[int, list[dict[str, Any]]] = {run_id: [] for run_id in ids}
    for step in steps:
        by_run[step["run_id"]].append(dict(step))
    for run in runs:
        run["parameters"] = json.loads(run["parameters"])
        run["steps"] = by_run[run["id"]]
    return runs

"""Deleting the report folders of old scheduled runs; the run records stay in the store."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections import defaultdict
from pathlib import Path

from sqlalchemy import select, update

from ..store import Store, as_utc
from ..store.schema import schedule_runs

log = logging.getLogger(__name__)


def delete_old_reports(store: Store, reports_root: Path, *, keep_days: int, keep_runs: int,
                       now: dt.datetime) -> int:
    """Delete report folders of finished runs older than ``keep_days`` days.

    The newest ``keep_runs`` runs with a report folder keep theirs whatever their age, for
    each schedule name. Only folders inside ``reports_root`` are deleted, so a gate or
    runbook folder recorded elsewhere is never touched. Returns how many runs lost their
    reports; each gets ``reports_deleted_at``.
    """
    cutoff = now - dt.timedelta(days=keep_days)
    with store.begin() as connection:
        rows = connection.execute(
            select(schedule_runs.c.id, schedule_runs.c.schedule_name,
                   schedule_runs.c.started_at, schedule_runs.c.output_dir)
            .where(schedule_runs.c.output_dir.is_not(None),
                   schedule_runs.c.reports_deleted_at.is_(None),
                   schedule_runs.c.status != "running")
            .order_by(schedule_runs.c.schedule_name, schedule_runs.c.id.desc())).all()

    seen: dict[str, int] = defaultdict(int)
    expired: list[tuple[int, Path]] = []
    for row in rows:
        seen[row.schedule_name] += 1
        if seen[row.schedule_name] > keep_runs and as_utc(row.started_at) < cutoff:
            expired.append((row.id, Path(row.output_dir)))

    root = reports_root.resolve()
    deleted = 0
    for run_id, folder in expired:
        if not folder.resolve().is_relative_to(root):
            log.warning("run %d: report folder %s is outside %s; left in place", run_id,
                        folder, root)
            continue
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            pass  # deleted by hand already, so only the record is updated below
        except OSError as error:
            log.error("run %d: cannot delete report folder %s: %s", run_id, folder, error)
            continue
        with store.begin() as connection:
            connection.execute(update(schedule_runs).where(schedule_runs.c.id == run_id)
                               .values(reports_deleted_at=now))
        deleted += 1
    if deleted:
        log.info("retention: deleted the reports of %d run(s)", deleted)
    return deleted

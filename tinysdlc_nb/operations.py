"""Views of persistent mode for people: schedules, their runs, heartbeats and deliveries.

The operations notebook shows these frames. Each one is a query over the store, with times
shown in the project's display zone.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import func, select

from .config import Config, load_config
from .store import Store, as_utc, open_store, utc_now
from .store.schema import (
    channel_attempts,
    heartbeats,
    notification_deliveries,
    schedule_runs,
    schedules,
    team_notifications,
)

log = logging.getLogger(__name__)

FINISHED_STATUSES = ("passed", "failed", "error", "interrupted")
PROBLEM_STATUSES = ("failed", "error", "interrupted", "missed")


@dataclass
class Operations:
    """The project's config and open store, as the operations notebook reads them."""

    config: Config
    store: Store

    @property
    def zone(self) -> str:
        return self.config.project["display_zone"]


def open_operations(project_dir: str | Path) -> Operations:
    """Open the project's store for reading the persistent-mode tables."""
    config = load_config(project_dir)
    return Operations(config, open_store(config.database_url))


def schedules_frame(ops: Operations, now: dt.datetime | None = None) -> pd.DataFrame:
    """Return one row per schedule: what it runs, when next, and how its recent runs went."""
    now = now or utc_now()
    frame = ops.store.frame(select(
        schedules.c.id, schedules.c.name, schedules.c.kind, schedules.c.target,
        schedules.c.cron, schedules.c.timezone, schedules.c.catch_up, schedules.c.paused,
        schedules.c.next_run_at).order_by(schedules.c.name))
    columns = ["name", "kind", "target", "cron", "timezone", "paused", "next_run",
               "last_status", "last_started", "last_duration_s", "runs_24h", "problems_24h"]
    if frame.empty:
        return pd.DataFrame(columns=columns)

    runs = _runs(ops.store, since=now - dt.timedelta(days=1))
    latest = _latest_runs(ops.store)
    frame["next_run"] = _local(frame["next_run_at"], ops.zone)
    frame["last_status"] = frame["id"].map(latest["status"]) if len(latest) else None
    frame["last_started"] = _local(frame["id"].map(latest["started_at"]), ops.zone) \
        if len(latest) else None
    frame["last_duration_s"] = frame["id"].map(latest["duration_s"]) if len(latest) else None
    counts = runs.groupby("schedule_id").size() if len(runs) else pd.Series(dtype=int)
    problems = runs[runs["status"].isin(PROBLEM_STATUSES)].groupby("schedule_id").size() \
        if len(runs) else pd.Series(dtype=int)
    frame["runs_24h"] = frame["id"].map(counts).fillna(0).astype(int)
    frame["problems_24h"] = frame["id"].map(problems).fillna(0).astype(int)
    return frame[columns]


def runs_frame(ops: Operations, limit: int = 50, schedule: str = "") -> pd.DataFrame:
    """Return the newest runs, skips and misses with status, duration and lateness."""
    query = select(
        schedule_runs.c.id, schedule_runs.c.schedule_name.label("schedule"),
        schedule_runs.c.trigger, schedule_runs.c.status, schedule_runs.c.exit_code,
        schedule_runs.c.scheduled_for, schedule_runs.c.started_at,
        schedule_runs.c.finished_at, schedule_runs.c.message, schedule_runs.c.html_path,
    ).order_by(schedule_runs.c.id.desc()).limit(limit)
    if schedule:
        query = query.where(schedule_runs.c.schedule_name == schedule)
    frame = ops.store.frame(query)
    if frame.empty:
        return frame.assign(duration_s=pd.Series(dtype=float), late_s=pd.Series(dtype=float))

    frame["scheduled_for"] = pd.to_datetime(frame["scheduled_for"], utc=True)
    frame["duration_s"] = (frame["finished_at"] - frame["started_at"]).dt.total_seconds()
    frame["late_s"] = (frame["started_at"] - frame["scheduled_for"]).dt.total_seconds()
    for column in ("scheduled_for", "started_at", "finished_at"):
        frame[column] = _local(frame[column], ops.zone)
    return frame[["id", "schedule", "trigger", "status", "exit_code", "scheduled_for",
                  "started_at", "duration_s", "late_s", "message", "html_path"]]


def last_heartbeat(ops: Operations) -> dict[str, Any] | None:
    """Return the newest heartbeat with its findings decoded, or None before the first beat."""
    with ops.store.engine.connect() as connection:
        row = connection.execute(select(heartbeats).order_by(heartbeats.c.id.desc())
                                 .limit(1)).mappings().first()
    if row is None:
        return None
    beat = dict(row)
    beat["findings"] = _decode_findings(beat["findings"])
    beat["at"] = as_utc(beat["at"]).astimezone(ZoneInfo(ops.zone))
    return beat


def findings_frame(beat: dict[str, Any] | None) -> pd.DataFrame:
    """Return the findings of one heartbeat as a table, those that need a person first."""
    findings = (beat or {}).get("findings") or []
    frame = pd.DataFrame(findings)
    if frame.empty:
        return frame
    if "needs_person" in frame.columns:
        frame = frame.sort_values("needs_person", ascending=False, kind="stable")
    return frame.reset_index(drop=True)


def deliveries_frame(ops: Operations) -> pd.DataFrame:
    """Per channel: notifications delivered, waiting and failing, and the last error."""
    frame = ops.store.frame(select(
        notification_deliveries.c.channel, notification_deliveries.c.status,
        notification_deliveries.c.attempts, notification_deliveries.c.next_attempt_at,
        notification_deliveries.c.last_error, notification_deliveries.c.delivered_at,
        notification_deliveries.c.id))
    columns = ["channel", "delivered", "waiting", "failing", "next_attempt", "last_error"]
    if frame.empty:
        return pd.DataFrame(columns=columns)

    rows = []
    for channel, group in frame.groupby("channel"):
        waiting = group[group["delivered_at"].isna()]
        failing = waiting[waiting["attempts"] > 0]
        errors = group.dropna(subset=["last_error"]).sort_values("id")
        rows.append({
            "channel": channel,
            "delivered": int(group["delivered_at"].notna().sum()),
            "waiting": len(waiting),
            "failing": len(failing),
            "next_attempt": _local(waiting["next_attempt_at"], ops.zone).min()
            if len(waiting) else None,
            "last_error": errors["last_error"].iloc[-1] if len(errors) else "",
        })
    return pd.DataFrame(rows, columns=columns)


def waiting_notifications(ops: Operations, limit: int = 50) -> pd.DataFrame:
    """Notifications no channel has carried yet, oldest first, with their failed sends."""
    attempts = (select(notification_deliveries.c.notification_id,
                       func.sum(notification_deliveries.c.attempts).label("attempts"))
                .group_by(notification_deliveries.c.notification_id).subquery())
    frame = ops.store.frame(
        select(team_notifications.c.id, team_notifications.c.recipient,
               team_notifications.c.created_at, team_notifications.c.text,
               func.coalesce(attempts.c.attempts, 0).label("attempts"))
        .outerjoin(attempts, attempts.c.notification_id == team_notifications.c.id)
        .where(team_notifications.c.delivered_at.is_(None))
        .order_by(team_notifications.c.id).limit(limit))
    if len(frame):
        frame["created_at"] = _local(frame["created_at"], ops.zone)
    return frame


def recent_attempts(ops: Operations, limit: int = 20) -> pd.DataFrame:
    """Return the newest requests made to channels, with their HTTP status and outcome."""
    frame = ops.store.frame(
        select(channel_attempts.c.at, notification_deliveries.c.channel,
               notification_deliveries.c.notification_id, channel_attempts.c.part,
               channel_attempts.c.http_status, channel_attempts.c.outcome,
               channel_attempts.c.retry_after_s, channel_attempts.c.error)
        .join(notification_deliveries,
              notification_deliveries.c.id == channel_attempts.c.delivery_id)
        .order_by(channel_attempts.c.id.desc()).limit(limit))
    if len(frame):
        frame["at"] = _local(frame["at"], ops.zone)
    return frame


def _runs(store: Store, since: dt.datetime) -> pd.DataFrame:
    return store.frame(select(schedule_runs.c.schedule_id, schedule_runs.c.status)
                       .where(schedule_runs.c.started_at >= since)
                       .where(schedule_runs.c.schedule_id.is_not(None)))


def _latest_runs(store: Store) -> pd.DataFrame:
    """Return the newest run of each schedule that really ran (skips and misses left out)."""
    newest = (select(func.max(schedule_runs.c.id))
              .where(schedule_runs.c.status.in_(("running", *FINISHED_STATUSES)))
              .group_by(schedule_runs.c.schedule_id))
    frame = store.frame(select(schedule_runs.c.schedule_id, schedule_runs.c.status,
                               schedule_runs.c.started_at, schedule_runs.c.finished_at)
                        .where(schedule_runs.c.id.in_(newest)))
    if frame.empty:
        return frame
    frame["duration_s"] = (frame["finished_at"] - frame["started_at"]).dt.total_seconds()
    return frame.set_index("schedule_id")


def _local(series: pd.Series, zone: str) -> pd.Series:
    """``series`` of UTC times shown in ``zone``; missing times stay missing."""
    times = pd.to_datetime(series, utc=True)
    return times.dt.tz_convert(zone)


def _decode_findings(text: str) -> list[dict[str, Any]]:
    try:
        findings = json.loads(text or "[]")
    except json.JSONDecodeError:
        log.warning("a heartbeat's findings are not valid JSON; showing none")
        return []
    return findings if isinstance(findings, list) else []

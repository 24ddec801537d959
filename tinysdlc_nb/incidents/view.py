"""Views of one incident: its timeline with flapping collapsed, and JSON-ready rows.

Stored rows stay as they were written. Only this view collapses a burst of fire/resolve
changes of one alert (``flap_changes`` or more within ``flap_window``) into a single
``flapping`` row that carries the count, its first and last time and the final state.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..store import Store
from . import records
from .derive import effective, summarize
from .metrics import table_from_rows
from .model import Kind
from .records import display_id
from .sla import SlaPolicy
from .times import iso

FLAP_KINDS = (Kind.ALERT_FIRED, Kind.ALERT_RESOLVED, Kind.RESOLVED, Kind.REOPENED)
ROW_FIELDS = ("id", "occurred_at", "recorded_at", "kind", "source", "actor", "actor_kind",
              "severity", "description", "details", "alert_key", "supersedes")


@dataclass(frozen=True)
class Flapping:
    window: dt.timedelta = dt.timedelta(minutes=30)
    changes: int = 4

    @classmethod
    def from_config(cls, incidents: dict[str, Any]) -> Flapping:
        return cls(dt.timedelta(seconds=incidents["flap_window_s"]), incidents["flap_changes"])


def collapse_flapping(rows: list[dict[str, Any]], flapping: Flapping) -> list[dict[str, Any]]:
    """Return ``rows`` with each flapping burst of one alert replaced by one row."""
    bursts: dict[int, list[dict[str, Any]]] = {}
    by_alert: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["alert_key"] and row["kind"] in FLAP_KINDS:
            by_alert.setdefault(row["alert_key"], []).append(row)

    for changes in by_alert.values():
        start = 0
        while start < len(changes):
            end = start
            while (end + 1 < len(changes) and changes[end + 1]["occurred_at"]
                   - changes[start]["occurred_at"] <= flapping.window):
                end += 1
            burst = changes[start:end + 1]
            if _state_changes(burst) >= flapping.changes:
                bursts[burst[0]["id"]] = burst
                start = end + 1
            else:
                start += 1

    hidden = {row["id"] for burst in bursts.values() for row in burst}
    shown = []
    for row in rows:
        if row["id"] in bursts:
            shown.append(_flapping_row(bursts[row["id"]]))
        elif row["id"] not in hidden:
            shown.append(row)
    return shown


def _state_changes(burst: list[dict[str, Any]]) -> int:
    return sum(1 for row in burst if row["kind"] in (Kind.ALERT_FIRED, Kind.ALERT_RESOLVED))


def _flapping_row(burst: list[dict[str, Any]]) -> dict[str, Any]:
    first, last = burst[0], burst[-1]
    count = _state_changes(burst)
    final = "resolved" if last["kind"] in (Kind.ALERT_RESOLVED, Kind.RESOLVED) else "firing"
    return {
        **first,
        "kind": "flapping",
        "description": f"{first['alert_key']} flapped: {count} fire/resolve changes between "
                       f"{iso(first['occurred_at'])} and {iso(last['occurred_at'])}, "
                       f"now {final}",
        "details": {"count": count, "first_at": iso(first["occurred_at"]),
                    "last_at": iso(last["occurred_at"]), "final_state": final,
                    "row_ids": [row["id"] for row in burst]},
    }


def incident_rows(store: Store, incident_id: int, *, raw: bool = False,
                  flapping: Flapping | None = None) -> list[dict[str, Any]]:
    """Return the timeline of one incident as dicts: every stored row when ``raw``, else the
    effective rows with flapping collapsed."""
    with store.begin() as connection:
        records.incident_row(connection, incident_id)
        rows = records.timeline_rows(connection, incident_id)
    if raw:
        return rows
    live = set(effective(pd.DataFrame(rows))["id"])
    return collapse_flapping([row for row in rows if row["id"] in live],
                             flapping or Flapping())


def row_json(row: dict[str, Any]) -> dict[str, Any]:
    """Return a timeline row with ISO 8601 UTC times, ready for ``json.dumps``."""
    result = {key: row.get(key) for key in ROW_FIELDS}
    result["occurred_at"] = iso(row["occurred_at"])
    result["recorded_at"] = iso(row["recorded_at"])
    result["incident"] = display_id(row["incident_id"])
    return result


def incident_detail(store: Store, incident_id: int, policy: SlaPolicy, *,
                    now: dt.datetime) -> dict[str, Any]:
    """Return one incident's fields, milestones and SLA results as a JSON-ready dict."""
    with store.begin() as connection:
        own = records.incident_row(connection, incident_id)
        rows = records.timeline_rows(connection, incident_id)
    table = table_from_rows(pd.DataFrame(rows), policy, now=now).iloc[0]
    return {
        "id": display_id(incident_id),
        "title": own["title"],
        "service": own["service"],
        "source": own["source"],
        **summary_fields(table),
        "sla": {name: {"due": _iso_or_none(table[f"{name}_due"]),
                       "status": table[f"{name}_sla"]}
                for name in ("acknowledge", "resolve")},
    }


def summary_fields(row: pd.Series) -> dict[str, Any]:
    """Return severity, status and milestone times of one summary row, times as ISO."""
    fields = {"severity": _none_if_na(row["severity"]), "status": row["status"]}
    for name in ("detected_at", "acknowledged_at", "contained_at", "resolved_at",
                 "verified_at", "closed_at"):
        fields[name] = _iso_or_none(row[name])
    return fields


def _iso_or_none(value: Any) -> str | None:
    return None if pd.isna(value) else iso(pd.Timestamp(value).to_pydatetime())


def _none_if_na(value: Any) -> Any:
    return None if pd.isna(value) else value


__all__ = ["Flapping", "collapse_flapping", "incident_detail", "incident_rows", "row_json",
           "summarize", "summary_fields"]

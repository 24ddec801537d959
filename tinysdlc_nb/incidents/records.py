"""Reading and appending incident rows. Every write here is an INSERT: the tables are
append-only, and the database's triggers reject anything else."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Connection, func, insert, select

from ..errors import UsageError
from ..scrub import scrub, scrub_data
from ..store import as_utc, utc_now
from ..store.schema import incident_keys, incidents, timeline
from .model import ActorKind, Kind

TIMELINE_COLUMNS = ("id", "incident_id", "occurred_at", "recorded_at", "kind", "source",
                    "actor", "actor_kind", "severity", "description", "details", "alert_key",
                    "supersedes", "dedup_key")


@dataclass(frozen=True)
class NewRow:
    """A timeline row to append; text is redacted on the way in."""

    kind: Kind
    occurred_at: dt.datetime
    source: str
    actor: str = ""
    actor_kind: ActorKind = ActorKind.SYSTEM
    severity: str | None = None
    description: str = ""
    details: dict[str, Any] | None = None
    alert_key: str | None = None
    supersedes: int | None = None
    dedup_key: str | None = None


def parse_incident_id(text: str | int) -> int:
    """Read ``INC-7``, ``inc-7`` or ``7`` as 7; raise UsageError for anything else."""
    value = str(text).strip()
    if value.upper().startswith("INC-"):
        value = value[4:]
    if not value.isdigit() or int(value) == 0 or len(value) > 18:
        raise UsageError(f"incident id '{text}' is invalid; write it like INC-7 or 7")
    return int(value)


def display_id(incident_id: int) -> str:
    return f"INC-{incident_id}"


def create_incident(connection: Connection, *, title: str, service: str, source: str,
                    opened_by: str, keys: tuple[str, ...] = ()) -> int:
    """Insert an incident and the external keys that lead to it; return its id."""
    now = utc_now()
    result = connection.execute(insert(incidents).values(
        title=scrub(title)[:2000] or "(untitled incident)", service=scrub(service)[:200],
        source=source, opened_at=now, opened_by=opened_by[:200],
    ))
    incident_id = result.inserted_primary_key[0]
    for key in keys:
        link_key(connection, incident_id, source, key)
    return incident_id


def link_key(connection: Connection, incident_id: int, source: str, key: str) -> None:
    connection.execute(insert(incident_keys).values(
        source=source, key=key[:500], incident_id=incident_id, created_at=utc_now()))


def append_row(connection: Connection, incident_id: int, row: NewRow) -> int:
    """Insert ``row`` into the timeline of ``incident_id`` and return the new row's id."""
    result = connection.execute(insert(timeline).values(
        incident_id=incident_id,
        occurred_at=row.occurred_at,
        recorded_at=utc_now(),
        kind=str(row.kind),
        source=row.source,
        actor=scrub(row.actor)[:200],
        actor_kind=str(row.actor_kind),
        severity=row.severity,
        description=scrub(row.description),
        details=json.dumps(scrub_data(row.details or {}), sort_keys=True, default=str),
        alert_key=row.alert_key[:500] if row.alert_key else None,
        supersedes=row.supersedes,
        dedup_key=row.dedup_key[:500] if row.dedup_key else None,
    ))
    return result.inserted_primary_key[0]


def has_dedup_key(connection: Connection, dedup_key: str) -> bool:
    found = connection.execute(
        select(timeline.c.id).where(timeline.c.dedup_key == dedup_key[:500]).limit(1))
    return found.first() is not None


def current_incident(connection: Connection, source: str, key: str) -> int | None:
    """Return the newest incident the external ``key`` of ``source`` leads to, if any."""
    found = connection.execute(
        select(func.max(incident_keys.c.incident_id))
        .where(incident_keys.c.source == source, incident_keys.c.key == key[:500]))
    return found.scalar()


def incident_row(connection: Connection, incident_id: int) -> dict[str, Any]:
    """Return the incident's own row; raise UsageError naming the id when there is none."""
    found = connection.execute(select(incidents).where(incidents.c.id == incident_id)).first()
    if found is None:
        raise UsageError(f"incident {display_id(incident_id)} does not exist; "
                         f"`tinysdlc-nb incident list` shows the known ones")
    row = dict(found._mapping)
    row["opened_at"] = as_utc(row["opened_at"])
    return row


def timeline_rows(connection: Connection, incident_id: int) -> list[dict[str, Any]]:
    """Return every stored row of one incident, oldest first, times in UTC."""
    result = connection.execute(
        select(timeline).where(timeline.c.incident_id == incident_id)
        .order_by(timeline.c.occurred_at, timeline.c.id))
    rows = []
    for found in result:
        row = dict(found._mapping)
        row["occurred_at"] = as_utc(row["occurred_at"])
        row["recorded_at"] = as_utc(row["recorded_at"])
        row["details"] = json.loads(row["details"])
        rows.append(row)
    return rows


def timeline_frame(store, incident_id: int | None = None) -> pd.DataFrame:
    """Return the timeline (of one incident, or of all) as a DataFrame with UTC times."""
    query = select(*(timeline.c[name] for name in TIMELINE_COLUMNS))
    if incident_id is not None:
        query = query.where(timeline.c.incident_id == incident_id)
    query = query.order_by(timeline.c.incident_id, timeline.c.occurred_at, timeline.c.id)
    return store.frame(query)


def incidents_frame(store) -> pd.DataFrame:
    return store.frame(select(incidents).order_by(incidents.c.id))

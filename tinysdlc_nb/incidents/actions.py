"""People's actions on an incident, as library calls the CLI and the notebooks share.

Each action appends rows; none changes or deletes one. A backfilled time (``at``) must
not lie in the future nor before the incident was detected.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from ..approvals import is_agent_name
from ..errors import UsageError
from ..store import Store, utc_now
from . import records
from .derive import STATUS_RANK, effective, summarize
from .escalation import escalate
from .model import DONE_STATUSES, LOG_KINDS, SEVERITIES, ActorKind, Kind
from .records import NewRow, display_id

SOURCE = "cli"
# A clock a few minutes fast on the writer's machine is not an error.
_FUTURE_TOLERANCE = dt.timedelta(minutes=5)


class Actions:
    """Incident actions bound to one store, the owner for escalations and the agent ids."""

    def __init__(self, store: Store, *, owner: str, agent_ids: set[str], source: str = SOURCE,
                 escalation=None):
        self.store = store
        self.owner = owner
        self.escalation = escalation
        self.agent_ids = agent_ids
        self.source = source

    def open(self, *, title: str, by: str, severity: str = "P2", service: str = "",
             description: str = "", at: dt.datetime | None = None) -> int:
        """Open an incident by hand and return its id; P0 and P1 escalate to the owner."""
        severity = check_severity(severity)
        _check_by(by)
        if not title.strip():
            raise UsageError("--title is empty; give the incident a short title")
        at = self._check_time(at, None)
        with self.store.begin() as connection:
            incident_id = records.create_incident(
                connection, title=title, service=service, source=self.source, opened_by=by)
            records.append_row(connection, incident_id, NewRow(
                Kind.DETECTED, at, self.source, actor=by, actor_kind=self._actor_kind(by),
                severity=severity, description=description or title))
            escalation = escalate(connection, incident_id, None, severity, at, self.owner,
                                  self.escalation)
            if escalation is not None:
                records.append_row(connection, incident_id, escalation)
        return incident_id

    def acknowledge(self, incident_id: int, *, by: str, note: str = "",
                    at: dt.datetime | None = None) -> int:
        """Record an acknowledgement; an incident already resolved needs none."""
        return self._append(incident_id, Kind.ACKNOWLEDGED, by, note or f"acknowledged by {by}",
                            at, reject_when=DONE_STATUSES)

    def resolve(self, incident_id: int, *, by: str, note: str = "",
                at: dt.datetime | None = None) -> int:
        return self._append(incident_id, Kind.RESOLVED, by, note or f"resolved by {by}", at,
                            reject_when=DONE_STATUSES)

    def close(self, incident_id: int, *, by: str, note: str = "",
              at: dt.datetime | None = None) -> int:
        return self._append(incident_id, Kind.CLOSED, by, note or f"closed by {by}", at,
                            reject_when=("closed",))

    def log(self, incident_id: int, text: str, *, by: str, kind: str = "note",
            owner: str | None = None, due: dt.date | None = None,
            at: dt.datetime | None = None) -> int:
        """Append a note, a milestone (contained, verified) or a postmortem entry."""
        if kind not in LOG_KINDS:
            raise UsageError(f"--kind '{kind}' is invalid; expected one of "
                             f"{', '.join(LOG_KINDS)}")
        if not text.strip():
            raise UsageError("the log text is empty; say what happened")
        details: dict[str, Any] = {}
        if kind == Kind.ACTION_ITEM:
            if not owner or due is None:
                raise UsageError("an action_item needs --owner NAME and --due YYYY-MM-DD")
            details = {"owner": owner, "due": due.isoformat()}
        elif owner or due:
            raise UsageError("--owner and --due belong to --kind action_item only")
        return self._append(incident_id, Kind(kind), by, text, at, details=details)

    def change_severity(self, incident_id: int, severity: str, *, by: str, reason: str = "",
                        at: dt.datetime | None = None) -> list[int]:
        """Record a new severity; a rise to P0 or P1 also records an escalation."""
        severity = check_severity(severity)
        _check_by(by)
        with self.store.begin() as connection:
            current = _summary(connection, incident_id)
            if current["status"] == "closed":
                raise UsageError(f"{display_id(incident_id)} is closed; its severity can no "
                                 f"longer change")
            at = self._check_time(at, current["detected_at"])
            old = _severity_at(records.timeline_rows(connection, incident_id), at)
            if severity == old:
                raise UsageError(f"{display_id(incident_id)} was already {severity} at "
                                 f"{at.isoformat()}; nothing to change")
            description = f"severity {old} -> {severity}" + (f": {reason}" if reason else "")
            ids = [records.append_row(connection, incident_id, NewRow(
                Kind.SEVERITY, at, self.source, actor=by, actor_kind=self._actor_kind(by),
                severity=severity, description=description,
                details={"from": old, "to": severity}))]
            escalation = escalate(connection, incident_id, old, severity, at, self.owner,
                                  self.escalation)
            if escalation is not None:
                ids.append(records.append_row(connection, incident_id, escalation))
        return ids

    def retract(self, incident_id: int, row_id: int, *, by: str, reason: str) -> int:
        """Withdraw a row: it stays stored, but no longer counts."""
        _check_by(by)
        if not reason.strip():
            raise UsageError("--reason is empty; say why the row is withdrawn")
        with self.store.begin() as connection:
            target = self._target_row(connection, incident_id, row_id)
            if target["kind"] == Kind.DETECTED:
                raise UsageError(f"row {row_id} is the detection of "
                                 f"{display_id(incident_id)} and cannot be withdrawn; fix its "
                                 f"time with `incident correct` or close a false alarm with "
                                 f"`incident close`")
            return records.append_row(connection, incident_id, NewRow(
                Kind.RETRACTION, utc_now(), self.source, actor=by,
                actor_kind=self._actor_kind(by), description=reason,
                details={"retracted_kind": target["kind"]}, supersedes=row_id))

    def correct(self, incident_id: int, row_id: int, *, by: str,
                at: dt.datetime | None = None, text: str | None = None) -> int:
        """Replace a row's time or text with a new row that supersedes it."""
        _check_by(by)
        if at is None and text is None:
            raise UsageError("a correction needs --at, --text or both")
        with self.store.begin() as connection:
            target = self._target_row(connection, incident_id, row_id)
            if at is not None:
                self._check_corrected_time(connection, incident_id, target, at)
            return records.append_row(connection, incident_id, NewRow(
                Kind(target["kind"]), at or target["occurred_at"], target["source"],
                actor=target["actor"], actor_kind=ActorKind(target["actor_kind"]),
                severity=target["severity"], description=text or target["description"],
                details={**target["details"], "corrected_by": by}, alert_key=target["alert_key"],
                supersedes=row_id))

    def _check_corrected_time(self, connection, incident_id: int, target: dict[str, Any],
                              at: dt.datetime) -> None:
        """Check a corrected time by the rules of a new one: not in the future, not before
        detection, and a detection not after any later milestone."""
        if target["kind"] != Kind.DETECTED:
            self._check_time(at, _summary(connection, incident_id)["detected_at"])
            return
        self._check_time(at, None)
        rows = records.timeline_rows(connection, incident_id)
        live = set(effective(pd.DataFrame(rows))["id"])
        later = [row["occurred_at"] for row in rows if row["id"] in live
                 and row["kind"] in STATUS_RANK and row["kind"] != Kind.DETECTED]
        if later and at > min(later):
            raise UsageError(f"--at {at.isoformat()} is after the incident's first milestone "
                             f"({min(later).isoformat()}); detection comes first")

    def _append(self, incident_id: int, kind: Kind, by: str, text: str,
                at: dt.datetime | None, details: dict[str, Any] | None = None,
                reject_when: tuple[str, ...] = ()) -> int:
        _check_by(by)
        with self.store.begin() as connection:
            current = _summary(connection, incident_id)
            if current["status"] in reject_when:
                raise UsageError(f"{display_id(incident_id)} is already {current['status']}; "
                                 f"a {kind} row would change nothing")
            at = self._check_time(at, current["detected_at"])
            return records.append_row(connection, incident_id, NewRow(
                kind, at, self.source, actor=by, actor_kind=self._actor_kind(by),
                description=text, details=details))

    def _target_row(self, connection, incident_id: int, row_id: int) -> dict[str, Any]:
        records.incident_row(connection, incident_id)
        rows = {row["id"]: row for row in records.timeline_rows(connection, incident_id)}
        if row_id not in rows:
            raise UsageError(f"row {row_id} is not in the timeline of "
                             f"{display_id(incident_id)}; `tinysdlc-nb incident timeline "
                             f"{display_id(incident_id)} --raw` lists the row ids")
        superseded = {row["supersedes"] for row in rows.values() if row["supersedes"]}
        if row_id in superseded:
            raise UsageError(f"row {row_id} was already corrected or retracted; act on the "
                             f"newest row instead")
        if rows[row_id]["kind"] == Kind.RETRACTION:
            raise UsageError(f"row {row_id} is a retraction; retractions cannot be changed")
        return rows[row_id]

    def _actor_kind(self, name: str) -> ActorKind:
        return ActorKind.AGENT if is_agent_name(name, self.agent_ids) else ActorKind.HUMAN

    def _check_time(self, at: dt.datetime | None,
                    detected: pd.Timestamp | None) -> dt.datetime:
        now = utc_now()
        if at is None:
            return now
        if at > now + _FUTURE_TOLERANCE:
            raise UsageError(f"--at {at.isoformat()} is in the future; backfill only what "
                             f"already happened")
        if detected is not None and not pd.isna(detected) and at < detected:
            raise UsageError(f"--at {at.isoformat()} is before the incident was detected "
                             f"({detected.isoformat()}); correct the detection time first")
        return at


def _severity_at(rows: list[dict[str, Any]], at: dt.datetime) -> str | None:
    """Return the severity in effect at ``at``: the newest effective severity before it."""
    live = set(effective(pd.DataFrame(rows))["id"])
    severity = None
    for row in sorted(rows, key=lambda item: (item["occurred_at"], item["id"])):
        if row["id"] in live and row["severity"] is not None and row["occurred_at"] <= at:
            severity = row["severity"]
    return severity


def _check_by(name: str) -> None:
    if not name.strip():
        raise UsageError("--by is empty; name the person who did this")


def check_severity(value: str) -> str:
    severity = value.strip().upper()
    if severity not in SEVERITIES:
        raise UsageError(f"severity '{value}' is invalid; expected one of "
                         f"{', '.join(SEVERITIES)}")
    return severity


def _summary(connection, incident_id: int) -> pd.Series:
    records.incident_row(connection, incident_id)
    rows = records.timeline_rows(connection, incident_id)
    return summarize(pd.DataFrame(rows)).iloc[0]

"""Turn adapter signals into timeline rows: open, update, resolve and reopen incidents.

Rules, per signal, inside one transaction per call:
- a signal whose dedup key is already stored adds nothing (repeat or duplicate delivery);
- the first signal of an external key opens an incident with a ``detected`` row, unless
  the signal reports no problem of its own (``opens_incident`` is False);
- detection is the earliest start any signal reports: a later signal about an alert that
  began earlier moves the ``detected`` row back with a correction row;
- an incident with member alerts resolves only when every member's newest state is
  resolved, at the latest of their end times;
- a re-fire that starts after the resolution and within the reopen window reopens the
  incident. A later one opens a new incident under the same key, and one that started
  before the resolution is a late duplicate and adds nothing;
- a stricter severity from an alert or a priority change adds a ``severity`` row, and
  reaching P0 or P1 adds an ``escalated`` row addressed to the human owner.
"""

from __future__ import annotations

import bisect
import datetime as dt
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from ..store import Store, utc_now
from . import records
from .derive import summarize_rows
from .escalation import escalate
from .model import ActorKind, Event, Kind, Signal, is_stricter
from .records import NewRow

log = logging.getLogger(__name__)
RETRIES = 5

_EVENT_KIND = {
    Event.ACKNOWLEDGED: Kind.ACKNOWLEDGED,
    Event.UNACKNOWLEDGED: Kind.UNACKNOWLEDGED,
    Event.ESCALATED: Kind.ESCALATED,
    Event.ASSIGNED: Kind.ASSIGNED,
    Event.CLOSED: Kind.CLOSED,
    Event.NOTE: Kind.NOTE,
}


@dataclass
class Outcome:
    """The result of one signal: its action (``created``, ``updated``, ``reopened``,
    ``unchanged`` or ``ignored``) and the kinds of the rows it added."""

    action: str
    incident_id: int | None
    signal: Signal
    kinds: list[str] = field(default_factory=list)
    reason: str = ""


@dataclass(frozen=True)
class EngineSettings:
    owner: str = "SE4H"
    reopen_window: dt.timedelta = dt.timedelta(hours=1)
    default_severity: str = "P2"
    # Where escalations are queued (team.escalations.EscalationRoute); None records only.
    escalation: Any = None

    @classmethod
    def from_config(cls, incidents: dict[str, Any], escalation: Any = None) -> EngineSettings:
        return cls(owner=incidents["owner"],
                   reopen_window=dt.timedelta(seconds=incidents["reopen_window_s"]),
                   default_severity=incidents["default_severity"], escalation=escalation)


def apply_signals(store: Store, signals: Iterable[Signal],
                  settings: EngineSettings) -> list[Outcome]:
    """Apply ``signals`` in one transaction and return one outcome per signal.

    Two writers racing on the same dedup key (``ingest`` while ``serve`` runs, or two
    servers on a shared PostgreSQL store) make one transaction fail on the unique key.
    The transaction is retried, and the other writer's rows then count as already
    recorded.
    """
    signals = list(signals)
    for attempt in range(1, RETRIES + 1):
        try:
            with store.begin() as connection:
                session = _Session(connection, settings)
                return [session.apply(signal) for signal in signals]
        except IntegrityError:
            if attempt == RETRIES:
                raise
            log.info("a concurrent writer stored some of the same signals; retrying "
                     "(attempt %d of %d)", attempt + 1, RETRIES)
            time.sleep(0.05 * attempt)
    return []


@dataclass
class _State:
    """The engine's view of one incident, derived from its timeline."""

    summary: dict[str, Any]
    alerts: dict[str, tuple[str, dt.datetime]]
    detected_row: dict[str, Any] | None
    resolved_row: dict[str, Any] | None

    @property
    def done(self) -> bool:
        return self.summary["status"] in ("resolved", "verified", "closed")

    @property
    def severity(self) -> str | None:
        return self.summary["severity"]

    @property
    def resolved_at(self) -> dt.datetime | None:
        return self.summary["resolved_at"]


class _Session:
    """One transaction's work: the connection, the settings, and each touched incident's
    rows, kept in memory so a payload of many alerts reads each timeline once."""

    def __init__(self, connection: Connection, settings: EngineSettings):
        self.connection = connection
        self.settings = settings
        self._rows: dict[int, list[dict[str, Any]]] = {}
        self._states: dict[int, _State] = {}

    def apply(self, signal: Signal) -> Outcome:
        if records.has_dedup_key(self.connection, signal.dedup_key):
            return Outcome("unchanged", None, signal, reason="already recorded")

        incident_id = records.current_incident(self.connection, signal.source,
                                               signal.incident_key)
        if incident_id is None:
            if not signal.opens_incident:
                return Outcome("ignored", None, signal, reason="no incident for this key")
            return self.open(signal)

        outcome = Outcome("updated", incident_id, signal)
        self.move_detection_earlier(incident_id, signal, outcome)
        if signal.event is Event.FIRING:
            return self.fire(incident_id, signal, outcome)
        if signal.event is Event.RESOLVED:
            return self.resolve(incident_id, signal, outcome)
        return self.update(incident_id, signal, outcome)

    def open(self, signal: Signal) -> Outcome:
        severity = signal.severity or self.settings.default_severity
        incident_id = records.create_incident(
            self.connection, title=signal.title, service=signal.service,
            source=signal.source, opened_by=signal.actor or signal.source,
            keys=(signal.incident_key,))
        self._rows[incident_id] = []
        outcome = Outcome("created", incident_id, signal)

        firing = signal.event is Event.FIRING
        details = signal.details if firing else {
            "opened_by": str(signal.event), "detected_time_estimated": signal.started_at is None}
        detected = NewRow(
            Kind.DETECTED, signal.started_at or signal.occurred_at, signal.source,
            actor=signal.actor or signal.source, actor_kind=signal.actor_kind,
            severity=severity, description=signal.title or signal.description,
            details=details, alert_key=signal.alert_key,
            dedup_key=signal.dedup_key if firing else None)
        self.add(incident_id, detected, outcome)
        self.escalate(incident_id, None, severity, detected.occurred_at, outcome)

        if signal.event is Event.RESOLVED:
            self.resolve(incident_id, signal, outcome)
        elif not firing:
            self.update(incident_id, signal, outcome)
        return outcome

    def fire(self, incident_id: int, signal: Signal, outcome: Outcome) -> Outcome:
        state = self.state(incident_id)
        if state.done:
            if state.resolved_at is not None and signal.occurred_at <= state.resolved_at:
                outcome.action = "unchanged" if not outcome.kinds else "updated"
                outcome.reason = ("late delivery of an alert that started before the "
                                  "incident was resolved")
                return outcome
            if signal.occurred_at - state.resolved_at > self.settings.reopen_window:
                new = self.open(signal)
                new.reason = "re-fired after the reopen window; opened a new incident"
                return new
            outcome.action = "reopened"
            self.add(incident_id, NewRow(
                Kind.REOPENED, signal.occurred_at, signal.source,
                actor=signal.actor or signal.source,
                description=f"re-fired: {signal.title or signal.description}",
                alert_key=signal.alert_key), outcome)

        self.add(incident_id, NewRow(
            Kind.ALERT_FIRED, signal.occurred_at, signal.source,
            actor=signal.actor or signal.source, actor_kind=signal.actor_kind,
            description=signal.description or signal.title,
            details={**signal.details, "severity": signal.severity},
            alert_key=signal.alert_key, dedup_key=signal.dedup_key), outcome)
        self.raise_severity(incident_id, signal, outcome)
        return outcome

    def resolve(self, incident_id: int, signal: Signal, outcome: Outcome) -> Outcome:
        state = self.state(incident_id)
        if signal.alert_key is None:
            if state.done:
                outcome.action = "unchanged" if not outcome.kinds else outcome.action
                outcome.reason = "already resolved"
                return outcome
            self.add(incident_id, NewRow(
                Kind.RESOLVED, signal.occurred_at, signal.source,
                actor=signal.actor or signal.source, actor_kind=signal.actor_kind,
                description=signal.description or "resolved", details=signal.details,
                dedup_key=signal.dedup_key), outcome)
            return outcome

        self.add(incident_id, NewRow(
            Kind.ALERT_RESOLVED, signal.occurred_at, signal.source,
            actor=signal.actor or signal.source, actor_kind=signal.actor_kind,
            description=signal.description or signal.title, details=signal.details,
            alert_key=signal.alert_key, dedup_key=signal.dedup_key), outcome)
        self.raise_severity(incident_id, signal, outcome)

        alerts = {**state.alerts, signal.alert_key: ("resolved", signal.occurred_at)}
        if state.done:
            self.extend_resolution(incident_id, state, signal, outcome)
        elif all(value[0] == "resolved" for value in alerts.values()):
            resolved_at = max(value[1] for value in alerts.values())
            self.add(incident_id, NewRow(
                Kind.RESOLVED, resolved_at, signal.source, actor=signal.source,
                description=f"every alert of the group resolved ({len(alerts)} in all)",
                alert_key=signal.alert_key, dedup_key=f"{signal.dedup_key}:group"), outcome)
        return outcome

    def extend_resolution(self, incident_id: int, state: _State, signal: Signal,
                          outcome: Outcome) -> None:
        """Move the group's resolution later when another member alert, which was firing
        before the resolution, reports a later end (two resolved alerts in one payload)."""
        row = state.resolved_row
        began = signal.started_at or signal.occurred_at
        if row is None or state.resolved_at is None or signal.occurred_at <= state.resolved_at \
                or began > state.resolved_at or row["source"] != signal.source:
            return
        self.add(incident_id, NewRow(
            Kind.RESOLVED, signal.occurred_at, row["source"], actor=row["actor"],
            description="every alert of the group resolved; a late notice moved the end later",
            details={**row["details"], "corrects_end": True}, alert_key=signal.alert_key,
            supersedes=row["id"], dedup_key=f"{signal.dedup_key}:group"), outcome)

    def move_detection_earlier(self, incident_id: int, signal: Signal,
                               outcome: Outcome) -> None:
        """Correct the ``detected`` row when this signal reports an earlier start."""
        began = signal.started_at or (signal.occurred_at if signal.event is Event.FIRING
                                      else None)
        row = self.state(incident_id).detected_row
        if began is None or row is None or began >= row["occurred_at"]:
            return
        self.add(incident_id, NewRow(
            Kind.DETECTED, began, row["source"], actor=row["actor"],
            actor_kind=ActorKind(row["actor_kind"]), severity=row["severity"],
            description=row["description"],
            details={**row["details"], "detected_time_estimated": False,
                     "moved_earlier_by": signal.dedup_key},
            alert_key=row["alert_key"], supersedes=row["id"]), outcome)

    def update(self, incident_id: int, signal: Signal, outcome: Outcome) -> Outcome:
        state = self.state(incident_id)
        if signal.event is Event.SEVERITY:
            if signal.severity is None or signal.severity == state.severity:
                self.add(incident_id, _row_from(signal, Kind.NOTE), outcome)
            else:
                self.change_severity(incident_id, state.severity, signal, outcome)
            return outcome
        if signal.event is Event.REOPENED:
            kind = Kind.REOPENED if state.done else Kind.NOTE
            self.add(incident_id, _row_from(signal, kind), outcome)
            return outcome
        self.add(incident_id, _row_from(signal, _EVENT_KIND[signal.event]), outcome)
        return outcome

    def raise_severity(self, incident_id: int, signal: Signal, outcome: Outcome) -> None:
        current = self.state(incident_id).severity
        if signal.severity and current and is_stricter(signal.severity, current):
            self.change_severity(incident_id, current, signal, outcome)

    def change_severity(self, incident_id: int, old: str | None, signal: Signal,
                        outcome: Outcome) -> None:
        # A member alert raises the severity from the moment it began; a priority change
        # takes effect when it was made.
        at = signal.occurred_at
        if signal.alert_key is not None and signal.started_at is not None:
            at = signal.started_at
        self.add(incident_id, NewRow(
            Kind.SEVERITY, at, signal.source, actor=signal.actor or signal.source,
            actor_kind=signal.actor_kind, severity=signal.severity,
            description=f"severity {old or '?'} -> {signal.severity}",
            details={"from": old, "to": signal.severity}, alert_key=signal.alert_key,
            dedup_key=signal.dedup_key if signal.event is Event.SEVERITY else None), outcome)
        self.escalate(incident_id, old, signal.severity, at, outcome)

    def escalate(self, incident_id: int, old: str | None, new: str, at: dt.datetime,
                 outcome: Outcome) -> None:
        row = escalate(self.connection, incident_id, old, new, at, self.settings.owner,
                       self.settings.escalation)
        if row is not None:
            self.add(incident_id, row, outcome)

    def rows(self, incident_id: int) -> list[dict[str, Any]]:
        if incident_id not in self._rows:
            self._rows[incident_id] = records.timeline_rows(self.connection, incident_id)
        return self._rows[incident_id]

    def state(self, incident_id: int) -> _State:
        if incident_id in self._states:
            return self._states[incident_id]
        rows = self.rows(incident_id)
        superseded = {row["supersedes"] for row in rows if row["supersedes"] is not None}
        alerts: dict[str, tuple[str, dt.datetime]] = {}
        detected = resolved = None
        for row in rows:
            if row["id"] in superseded:
                continue
            if row["alert_key"] and row["kind"] in (Kind.DETECTED, Kind.ALERT_FIRED,
                                                    Kind.ALERT_RESOLVED):
                status = "resolved" if row["kind"] == Kind.ALERT_RESOLVED else "firing"
                alerts[row["alert_key"]] = (status, row["occurred_at"])
            if row["kind"] == Kind.DETECTED and detected is None:
                detected = row
            if row["kind"] == Kind.RESOLVED:
                resolved = row
        self._states[incident_id] = _State(summarize_rows(rows), alerts, detected, resolved)
        return self._states[incident_id]

    def add(self, incident_id: int, row: NewRow, outcome: Outcome) -> None:
        row_id = records.append_row(self.connection, incident_id, row)
        stored = {
            "id": row_id, "incident_id": incident_id, "occurred_at": row.occurred_at,
            "recorded_at": utc_now(), "kind": str(row.kind), "source": row.source,
            "actor": row.actor, "actor_kind": str(row.actor_kind), "severity": row.severity,
            "description": row.description, "details": row.details or {},
            "alert_key": row.alert_key, "supersedes": row.supersedes,
            "dedup_key": row.dedup_key,
        }
        bisect.insort(self.rows(incident_id), stored,
                      key=lambda item: (item["occurred_at"], item["id"]))
        self._update_state(incident_id, stored)
        outcome.kinds.append(str(row.kind))

    def _update_state(self, incident_id: int, row: dict[str, Any]) -> None:
        """Keep the cached state after an alert row; anything else is derived afresh.

        A group of thousands of alerts adds thousands of alert rows, and deriving the
        whole state after each of them made ingesting such a payload quadratic.
        """
        state = self._states.get(incident_id)
        simple = row["kind"] in (Kind.ALERT_FIRED, Kind.ALERT_RESOLVED) and \
            row["supersedes"] is None and row["severity"] is None
        if state is None or not simple:
            self._states.pop(incident_id, None)
            return
        newest = state.alerts.get(row["alert_key"])
        if row["alert_key"] and (newest is None or newest[1] <= row["occurred_at"]):
            status = "resolved" if row["kind"] == Kind.ALERT_RESOLVED else "firing"
            state.alerts[row["alert_key"]] = (status, row["occurred_at"])


def _row_from(signal: Signal, kind: Kind) -> NewRow:
    return NewRow(kind, signal.occurred_at, signal.source, actor=signal.actor or signal.source,
                  actor_kind=signal.actor_kind, description=signal.description or signal.title,
                  details=signal.details, alert_key=signal.alert_key,
                  dedup_key=signal.dedup_key)

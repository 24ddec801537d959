"""Turn adapter signals into timeline rows: open, update, resolve and reopen incidents.

Rules, per signal, inside one transaction per payload:
- a signal whose dedup key is already stored adds nothing (repeat or duplicate delivery);
- the first signal of an external key opens an incident with a ``detected`` row;
- an incident with member alerts resolves only when every member's newest state is
  resolved, at the latest of their end times;
- a re-fire that starts after the resolution and within the reopen window reopens the
  incident; a later one opens a new incident under the same key; one that started before
  the resolution is a late duplicate and adds nothing;
- a stricter severity from an alert or a priority change adds a ``severity`` row, and
  reaching P0 or P1 adds an ``escalated`` row addressed to the human owner.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from ..store import Store
from . import records
from .derive import summarize
from .escalation import escalation_row
from .model import ActorKind, Event, Kind, Signal, is_stricter
from .records import NewRow

log = logging.getLogger(__name__)

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
    """What one signal did: ``created``, ``updated``, ``reopened``, ``unchanged`` or
    ``ignored``, with the rows it added."""

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

    @classmethod
    def from_config(cls, incidents: dict[str, Any]) -> EngineSettings:
        return cls(owner=incidents["owner"],
                   reopen_window=dt.timedelta(seconds=incidents["reopen_window_s"]),
                   default_severity=incidents["default_severity"])


def apply_signals(store: Store, signals: Iterable[Signal],
                  settings: EngineSettings) -> list[Outcome]:
    """Apply ``signals`` in one transaction and return one outcome per signal.

    Two writers racing on the same dedup key (two ``serve`` processes on a shared
    PostgreSQL store) make one transaction fail on the unique key; it is retried once and
    then sees the other's rows.
    """
    signals = list(signals)
    for attempt in (1, 2):
        try:
            with store.begin() as connection:
                return [_apply(connection, signal, settings) for signal in signals]
        except IntegrityError:
            if attempt == 2:
                raise
            log.info("a concurrent writer stored the same signals; retrying once")
    return []


def _apply(connection: Connection, signal: Signal, settings: EngineSettings) -> Outcome:
    if records.has_dedup_key(connection, signal.dedup_key):
        return Outcome("unchanged", None, signal, reason="already recorded")

    incident_id = records.current_incident(connection, signal.source, signal.incident_key)
    if incident_id is None:
        if signal.event in (Event.NOTE, Event.RESOLVED) and signal.started_at is None:
            # A note or a success with no known problem before it (a green CI job, a
            # Normal Kubernetes event) is not an incident.
            return Outcome("ignored", None, signal, reason="no incident for this key")
        return _open(connection, signal, settings)

    state = _State.load(connection, incident_id)
    if signal.event is Event.FIRING:
        return _fire(connection, incident_id, state, signal, settings)
    if signal.event is Event.RESOLVED:
        return _resolve(connection, incident_id, state, signal)
    return _update(connection, incident_id, state, signal, settings)


@dataclass
class _State:
    """What the engine needs to know of one incident, derived from its timeline."""

    status: str
    severity: str | None
    resolved_at: dt.datetime | None
    alerts: dict[str, tuple[str, dt.datetime]]
    resolved_row: dict[str, Any] | None = None

    @classmethod
    def load(cls, connection: Connection, incident_id: int) -> _State:
        rows = records.timeline_rows(connection, incident_id)
        summary = summarize(pd.DataFrame(rows)).iloc[0]
        alerts: dict[str, tuple[str, dt.datetime]] = {}
        for row in rows:
            if row["alert_key"] and row["supersedes"] is None and row["kind"] in (
                    Kind.DETECTED, Kind.ALERT_FIRED, Kind.ALERT_RESOLVED):
                state = "resolved" if row["kind"] == Kind.ALERT_RESOLVED else "firing"
                alerts[row["alert_key"]] = (state, row["occurred_at"])
        superseded = {row["supersedes"] for row in rows if row["supersedes"]}
        resolved_rows = [row for row in rows if row["kind"] == Kind.RESOLVED
                         and row["id"] not in superseded]
        resolved = summary["resolved_at"]
        return cls(status=summary["status"],
                   severity=None if pd.isna(summary["severity"]) else summary["severity"],
                   resolved_at=None if pd.isna(resolved) else resolved.to_pydatetime(),
                   alerts=alerts, resolved_row=resolved_rows[-1] if resolved_rows else None)

    @property
    def done(self) -> bool:
        return self.status in ("resolved", "verified", "closed")


def _open(connection: Connection, signal: Signal, settings: EngineSettings) -> Outcome:
    severity = signal.severity or settings.default_severity
    incident_id = records.create_incident(
        connection, title=signal.title, service=signal.service, source=signal.source,
        opened_by=signal.actor or signal.source, keys=(signal.incident_key,))
    outcome = Outcome("created", incident_id, signal)

    firing = signal.event is Event.FIRING
    detected = NewRow(
        Kind.DETECTED, signal.occurred_at if firing else (signal.started_at
                                                           or signal.occurred_at),
        signal.source, actor=signal.actor or signal.source, actor_kind=signal.actor_kind,
        severity=severity, description=signal.title or signal.description,
        details=signal.details if firing else {
            "opened_by": str(signal.event),
            "detected_time_estimated": signal.started_at is None},
        alert_key=signal.alert_key, dedup_key=signal.dedup_key if firing else None,
    )
    _add(connection, incident_id, detected, outcome)
    _escalate_if_needed(connection, incident_id, None, severity, detected.occurred_at, settings,
                        outcome)

    if not firing:
        state = _State.load(connection, incident_id)
        if signal.event is Event.RESOLVED:
            _resolve(connection, incident_id, state, signal, outcome)
        else:
            _update(connection, incident_id, state, signal, settings, outcome)
        outcome.action = "created"
    return outcome


def _fire(connection: Connection, incident_id: int, state: _State, signal: Signal,
          settings: EngineSettings) -> Outcome:
    if state.done:
        if state.resolved_at is not None and signal.occurred_at <= state.resolved_at:
            return Outcome("unchanged", incident_id, signal,
                           reason="late delivery of an alert that started before the "
                                  "incident was resolved")
        if signal.occurred_at - state.resolved_at > settings.reopen_window:
            new = _open(connection, signal, settings)
            new.reason = "re-fired after the reopen window; opened a new incident"
            return new
        outcome = Outcome("reopened", incident_id, signal)
        _add(connection, incident_id, NewRow(
            Kind.REOPENED, signal.occurred_at, signal.source, actor=signal.actor or
            signal.source, description=f"re-fired: {signal.title or signal.description}",
            alert_key=signal.alert_key), outcome)
    else:
        outcome = Outcome("updated", incident_id, signal)

    _add(connection, incident_id, NewRow(
        Kind.ALERT_FIRED, signal.occurred_at, signal.source, actor=signal.actor or
        signal.source, actor_kind=signal.actor_kind, description=signal.description
        or signal.title, details={**signal.details, "severity": signal.severity},
        alert_key=signal.alert_key, dedup_key=signal.dedup_key), outcome)
    if signal.severity and state.severity and is_stricter(signal.severity, state.severity):
        _change_severity(connection, incident_id, state.severity, signal, settings, outcome)
    return outcome


def _resolve(connection: Connection, incident_id: int, state: _State, signal: Signal,
             outcome: Outcome | None = None) -> Outcome:
    outcome = outcome or Outcome("updated", incident_id, signal)
    if signal.alert_key is None:
        if state.done:
            return Outcome("unchanged", incident_id, signal, reason="already resolved")
        _add(connection, incident_id, NewRow(
            Kind.RESOLVED, signal.occurred_at, signal.source, actor=signal.actor
            or signal.source, actor_kind=signal.actor_kind, description=signal.description
            or "resolved", details=signal.details, dedup_key=signal.dedup_key), outcome)
        return outcome

    _add(connection, incident_id, NewRow(
        Kind.ALERT_RESOLVED, signal.occurred_at, signal.source, actor=signal.actor
        or signal.source, actor_kind=signal.actor_kind, description=signal.description
        or signal.title, details=signal.details, alert_key=signal.alert_key,
        dedup_key=signal.dedup_key), outcome)
    alerts = {**state.alerts, signal.alert_key: ("resolved", signal.occurred_at)}
    if state.done:
        _extend_resolution(connection, incident_id, state, signal, outcome)
    elif all(value[0] == "resolved" for value in alerts.values()):
        resolved_at = max(value[1] for value in alerts.values())
        _add(connection, incident_id, NewRow(
            Kind.RESOLVED, resolved_at, signal.source, actor=signal.source,
            description=f"every alert of the group resolved ({len(alerts)} in all)",
            alert_key=signal.alert_key, dedup_key=f"{signal.dedup_key}:group"), outcome)
    return outcome


def _extend_resolution(connection: Connection, incident_id: int, state: _State,
                       signal: Signal, outcome: Outcome) -> None:
    """Move the group's resolution later when another member alert, which was firing
    before the resolution, reports a later end (two resolved alerts in one payload)."""
    row = state.resolved_row
    began = signal.started_at or signal.occurred_at
    if row is None or state.resolved_at is None or signal.occurred_at <= state.resolved_at \
            or began > state.resolved_at or row["source"] != signal.source:
        return
    _add(connection, incident_id, NewRow(
        Kind.RESOLVED, signal.occurred_at, row["source"], actor=row["actor"],
        description="every alert of the group resolved; a late notice moved the end later",
        details={**row["details"], "corrects_end": True}, alert_key=signal.alert_key,
        supersedes=row["id"], dedup_key=f"{signal.dedup_key}:group"), outcome)


def _update(connection: Connection, incident_id: int, state: _State, signal: Signal,
            settings: EngineSettings, outcome: Outcome | None = None) -> Outcome:
    outcome = outcome or Outcome("updated", incident_id, signal)
    if signal.event is Event.SEVERITY:
        if signal.severity is None or signal.severity == state.severity:
            return _note_only(connection, incident_id, signal, outcome)
        _change_severity(connection, incident_id, state.severity, signal, settings, outcome)
        return outcome
    if signal.event is Event.REOPENED:
        kind = Kind.REOPENED if state.done else Kind.NOTE
        _add(connection, incident_id, _row_from(signal, kind), outcome)
        return outcome
    _add(connection, incident_id, _row_from(signal, _EVENT_KIND[signal.event]), outcome)
    return outcome


def _note_only(connection: Connection, incident_id: int, signal: Signal,
               outcome: Outcome) -> Outcome:
    _add(connection, incident_id, _row_from(signal, Kind.NOTE), outcome)
    return outcome


def _change_severity(connection: Connection, incident_id: int, old: str | None,
                     signal: Signal, settings: EngineSettings, outcome: Outcome) -> None:
    _add(connection, incident_id, NewRow(
        Kind.SEVERITY, signal.occurred_at, signal.source, actor=signal.actor
        or signal.source, actor_kind=signal.actor_kind, severity=signal.severity,
        description=f"severity {old or '?'} -> {signal.severity}",
        details={"from": old, "to": signal.severity}, alert_key=signal.alert_key,
        dedup_key=None if signal.event is Event.FIRING else signal.dedup_key), outcome)
    _escalate_if_needed(connection, incident_id, old, signal.severity, signal.occurred_at,
                        settings, outcome)


def _escalate_if_needed(connection: Connection, incident_id: int, old: str | None,
                        new: str, at: dt.datetime, settings: EngineSettings,
                        outcome: Outcome) -> None:
    row = escalation_row(old, new, at, settings.owner)
    if row is not None:
        _add(connection, incident_id, row, outcome)


def _row_from(signal: Signal, kind: Kind) -> NewRow:
    return NewRow(kind, signal.occurred_at, signal.source, actor=signal.actor or signal.source,
                  actor_kind=signal.actor_kind, description=signal.description or signal.title,
                  details=signal.details, alert_key=signal.alert_key,
                  dedup_key=signal.dedup_key)


def _add(connection: Connection, incident_id: int, row: NewRow, outcome: Outcome) -> None:
    records.append_row(connection, incident_id, row)
    outcome.kinds.append(str(row.kind))


__all__ = ["ActorKind", "EngineSettings", "Outcome", "apply_signals"]

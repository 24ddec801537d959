"""SLA targets per severity: deadlines, and met / at risk / breached / on track.

A target is measured from detection. Raising the severity applies the stricter target from
the moment of the change: the deadline becomes the earlier of the old one and the change
time plus the new target. Lowering it measures the looser target from detection again,
but a breach that had already happened stays a breach.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .model import SEVERITIES, is_stricter
from .settings import NEXT_SPRINT, parse_duration

TARGETS = {"acknowledge": "acknowledged_at", "resolve": "resolved_at"}
MET, AT_RISK, BREACHED, ON_TRACK = "met", "at risk", "breached", "on track"


@dataclass(frozen=True)
class SlaPolicy:
    """The configured targets: seconds, NEXT_SPRINT, or None for "no target"."""

    targets: dict[tuple[str, str], float | str | None]
    sprint_start: dt.datetime
    sprint: dt.timedelta
    at_risk_fraction: float

    @classmethod
    def from_config(cls, sla: dict[str, Any]) -> SlaPolicy:
        targets: dict[tuple[str, str], float | str | None] = {}
        for severity in SEVERITIES:
            for name in TARGETS:
                text = sla[f"{severity.lower()}_{name}"]
                seconds = parse_duration(text, f"sla.{severity.lower()}_{name}")
                targets[(severity, name)] = NEXT_SPRINT if text.strip() == NEXT_SPRINT \
                    else seconds
        start = dt.datetime.combine(dt.date.fromisoformat(sla["sprint_start"]), dt.time(),
                                    dt.UTC)
        return cls(targets, start, dt.timedelta(days=sla["sprint_days"]),
                   sla["at_risk_fraction"])

    def deadline(self, severity: str, name: str, start: dt.datetime) -> dt.datetime | None:
        """Return when target ``name`` of ``severity`` falls due if the clock starts at
        ``start``. "Next sprint" means the end of the sprint after the one ``start`` is in."""
        target = self.targets[(severity, name)]
        if target is None:
            return None
        if target == NEXT_SPRINT:
            sprints_done = (start - self.sprint_start) // self.sprint
            return self.sprint_start + (sprints_done + 2) * self.sprint
        return start + dt.timedelta(seconds=target)

    def deadlines(self, severity: pd.Series, name: str, start: pd.Series) -> pd.Series:
        """Vectorised ``deadline`` for many incidents at once."""
        result = pd.Series(pd.NaT, index=start.index, dtype="datetime64[ns, UTC]")
        for level in SEVERITIES:
            chosen = severity == level
            target = self.targets[(level, name)]
            if not chosen.any() or target is None:
                continue
            if target == NEXT_SPRINT:
                anchor = pd.Timestamp(self.sprint_start)
                step = pd.Timedelta(self.sprint)
                done = np.floor((start[chosen] - anchor) / step)
                result[chosen] = anchor + (done + 2) * step
            else:
                result[chosen] = start[chosen] + pd.Timedelta(seconds=target)
        return result


def evaluate(summary: pd.DataFrame, changes: pd.DataFrame, policy: SlaPolicy,
             now: dt.datetime) -> pd.DataFrame:
    """Add ``<target>_due`` and ``<target>_sla`` columns for every target to ``summary``.

    ``changes`` is the severity history (``derive.severity_changes``). Incidents whose
    severity never changed are computed column-wise; the few with changes walk their
    history one change at a time, over plain Python values.
    """
    summary = summary.copy()
    first_severity = changes.groupby("incident_id")["severity"].first()
    initial = summary["incident_id"].map(first_severity).fillna(summary["severity"])
    history = _histories(changes)
    positions = np.flatnonzero(summary["incident_id"].isin(list(history)).to_numpy())
    changed_ids = summary["incident_id"].to_numpy()[positions]
    detected = summary["detected_at"].iloc[positions].tolist()

    for name, milestone in TARGETS.items():
        met_at = summary[milestone]
        if name == "acknowledge":
            # An incident that ended before anyone acknowledged it needed no response.
            met_at = met_at.fillna(summary["resolved_at"])
        due = policy.deadlines(initial, name, summary["detected_at"])
        breached_early = np.zeros(len(summary), dtype=bool)
        walked = [_walk(history[key], start, met, name, policy) for key, start, met
                  in zip(changed_ids, detected, met_at.iloc[positions].tolist(), strict=True)]
        if walked:
            due.iloc[positions] = pd.to_datetime([value for value, _ in walked], utc=True)
            breached_early[positions] = [breached for _, breached in walked]
        summary[f"{name}_due"] = due
        summary[f"{name}_sla"] = _status(summary["detected_at"], due, met_at,
                                         pd.Series(breached_early, index=summary.index),
                                         policy.at_risk_fraction, now)
    return summary


def _histories(changes: pd.DataFrame) -> dict[int, list[tuple[pd.Timestamp, str]]]:
    """Return the severity history of every incident whose severity changed at least once."""
    counts = changes["incident_id"].value_counts()
    several = changes[changes["incident_id"].isin(counts.index[counts > 1])]
    history: dict[int, list[tuple[pd.Timestamp, str]]] = {}
    for key, at, severity in zip(several["incident_id"].tolist(),
                                 several["occurred_at"].tolist(),
                                 several["severity"].tolist(), strict=True):
        history.setdefault(key, []).append((at, severity))
    return history


def _walk(history: list[tuple[pd.Timestamp, str]], detected: pd.Timestamp,
          met_at: pd.Timestamp, name: str, policy: SlaPolicy) -> tuple[Any, bool]:
    """Return the deadline after every severity change, and whether a breach happened
    before a change lowered the severity."""
    current = history[0][1]
    due = policy.deadline(current, name, detected.to_pydatetime())
    breached = False
    for at, severity in history[1:]:
        if not pd.isna(met_at) and met_at <= at:
            break
        if due is not None and at > due:
            breached = True
        if is_stricter(severity, current):
            new_due = policy.deadline(severity, name, at.to_pydatetime())
            due = new_due if due is None or (new_due is not None and new_due < due) else due
        elif severity != current and not breached:
            # After a breach the missed deadline stays the one shown.
            looser = policy.deadline(severity, name, detected.to_pydatetime())
            due = looser if due is None or looser is None else max(due, looser)
        current = severity
    return (pd.NaT if due is None else pd.Timestamp(due)), breached


def _status(start: pd.Series, due: pd.Series, met_at: pd.Series, breached_early: pd.Series,
            fraction: float, now: dt.datetime) -> pd.Series:
    now_ts = pd.Timestamp(now)
    met = met_at.notna()
    late = (met & (met_at > due)) | (~met & (now_ts > due)) | breached_early
    risky = ~met & (now_ts >= start + (due - start) * fraction)
    status = np.select([due.isna(), late, met, risky], [None, BREACHED, MET, AT_RISK],
                       default=ON_TRACK)
    return pd.Series(status, index=start.index, dtype="object")

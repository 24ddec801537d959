"""The incident model: severities, timeline kinds and the signals adapters produce.

An adapter turns one payload into ``Signal`` values; ``engine.apply_signals`` turns signals
into timeline rows. Adapters never touch the store, so each one is a pure function of its
payload and can be tested on the fixture files alone.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("P0", "P1", "P2", "P3")


def severity_rank(severity: str) -> int:
    """Return 0 for P0 (most severe) up to 3 for P3, so that a lower rank is stricter."""
    return SEVERITIES.index(severity)


def is_stricter(new: str, old: str) -> bool:
    return severity_rank(new) < severity_rank(old)


class Kind(enum.StrEnum):
    """The kind of a timeline row."""

    DETECTED = "detected"
    ACKNOWLEDGED = "acknowledged"
    UNACKNOWLEDGED = "unacknowledged"
    CONTAINED = "contained"
    RESOLVED = "resolved"
    VERIFIED = "verified"
    CLOSED = "closed"
    REOPENED = "reopened"
    SEVERITY = "severity"
    ESCALATED = "escalated"
    ASSIGNED = "assigned"
    ALERT_FIRED = "alert_fired"
    ALERT_RESOLVED = "alert_resolved"
    NOTE = "note"
    IMPACT = "impact"
    ROOT_CAUSE = "root_cause"
    TRIGGER = "trigger"
    RESOLUTION = "resolution"
    LESSON = "lesson"
    ACTION_ITEM = "action_item"
    RETRACTION = "retraction"


# Kinds that move the incident's status; the newest of them (by occurred_at, then id) sets it.
STATUS_OF_KIND = {
    Kind.DETECTED: "open",
    Kind.REOPENED: "open",
    Kind.UNACKNOWLEDGED: "open",
    Kind.ACKNOWLEDGED: "acknowledged",
    Kind.CONTAINED: "contained",
    Kind.RESOLVED: "resolved",
    Kind.VERIFIED: "verified",
    Kind.CLOSED: "closed",
}
DONE_STATUSES = ("resolved", "verified", "closed")

# Kinds a person may write with ``incident log --kind``.
LOG_KINDS = (Kind.NOTE, Kind.CONTAINED, Kind.VERIFIED, Kind.IMPACT, Kind.ROOT_CAUSE,
             Kind.TRIGGER, Kind.RESOLUTION, Kind.LESSON, Kind.ACTION_ITEM)


class Event(enum.StrEnum):
    """What a payload reports happened; the engine decides which rows that becomes."""

    FIRING = "firing"
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"
    UNACKNOWLEDGED = "unacknowledged"
    ESCALATED = "escalated"
    SEVERITY = "severity"
    ASSIGNED = "assigned"
    REOPENED = "reopened"
    CLOSED = "closed"
    NOTE = "note"


class ActorKind(enum.StrEnum):
    HUMAN = "human"
    AGENT = "agent"
    SYSTEM = "system"


@dataclass(frozen=True)
class Signal:
    """One thing a payload reports, normalised by an adapter.

    ``incident_key`` groups signals into one incident (an Alertmanager group key, a
    PagerDuty incident id). ``alert_key`` names one member alert of that incident (an
    Alertmanager fingerprint); the incident counts as resolved only when every member
    alert is. ``dedup_key`` is the same string every time the same happening is delivered,
    so ingesting a payload twice adds nothing.
    """

    source: str
    incident_key: str
    event: Event
    occurred_at: dt.datetime
    dedup_key: str
    alert_key: str | None = None
    started_at: dt.datetime | None = None
    title: str = ""
    service: str = ""
    severity: str | None = None
    actor: str = ""
    actor_kind: ActorKind = ActorKind.SYSTEM
    description: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    opens_incident: bool = True

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise ValueError(f"signal {self.dedup_key}: occurred_at must be timezone-aware")
        if self.severity is not None and self.severity not in SEVERITIES:
            raise ValueError(f"signal {self.dedup_key}: severity {self.severity!r} is not "
                             f"one of {', '.join(SEVERITIES)}")


@dataclass(frozen=True)
class AdapterContext:
    """The inputs of an adapter besides its payload: the severity mapping and the clock."""

    severity_map: dict[str, str]
    severity_labels: tuple[str, ...] = ("severity", "priority")
    default_severity: str = "P2"
    received_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def severity(self, source: str, value: Any) -> str | None:
        """Map a payload's severity value to P0-P3, or None when the mapping has no entry.

        A key written ``source:value`` (``opsgenie:p1``) wins over a plain ``value`` key;
        matching ignores case and surrounding spaces.
        """
        if value is None or value == "":
            return None
        text = str(value).strip().lower()
        qualified = f"{source}:{text}"
        if qualified in self.severity_map:
            return self.severity_map[qualified]
        return self.severity_map.get(text)

    def severity_from_labels(self, source: str, labels: dict[str, Any]) -> str:
        """Map the first configured severity label present in ``labels``, else the default."""
        for label in self.severity_labels:
            mapped = self.severity(source, labels.get(label))
            if mapped is not None:
                return mapped
        return self.default_severity


# Label values of common alerting tools mapped to P0-P3. Opsgenie names P1 "critical" and
# P5 "informational"; PagerDuty priorities keep their number.
DEFAULT_SEVERITY_MAP = {
    "critical": "P0", "emergency": "P0", "page": "P0", "fatal": "P0", "disaster": "P0",
    "high": "P1", "error": "P1", "major": "P1", "severe": "P1",
    "warning": "P2", "warn": "P2", "medium": "P2", "moderate": "P2", "average": "P2",
    "low": "P3", "minor": "P3", "info": "P3", "informational": "P3", "notice": "P3",
    "none": "P3",
    "p0": "P0", "p1": "P1", "p2": "P2", "p3": "P3", "p4": "P3", "p5": "P3",
    "opsgenie:p1": "P0", "opsgenie:p2": "P1", "opsgenie:p3": "P2", "opsgenie:p4": "P3",
    "opsgenie:p5": "P3",
}

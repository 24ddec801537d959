"""The facts one postmortem shows, read from the store: summary, timeline, detection, SLA.

The written sections (impact, root cause, trigger, resolution, action items, lessons) are
the effective timeline rows of those kinds. A retracted or corrected row is left out, the
same as in ``incident timeline``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..config import Config, load_config
from ..store import open_store, utc_now
from . import view
from .model import Kind
from .records import display_id, parse_incident_id
from .report_format import parse_report_time
from .sla import SlaPolicy
from .times import load_zone

# The written sections in the order the report shows them.
SECTION_KINDS = (Kind.IMPACT, Kind.ROOT_CAUSE, Kind.TRIGGER, Kind.RESOLUTION, Kind.ACTION_ITEM,
                 Kind.LESSON)
SECTION_TITLES = {Kind.IMPACT: "Impact", Kind.ROOT_CAUSE: "Root cause", Kind.TRIGGER: "Trigger",
                  Kind.RESOLUTION: "Resolution", Kind.ACTION_ITEM: "Action items",
                  Kind.LESSON: "Lessons"}
_ALERT_KINDS = (Kind.DETECTED, Kind.ALERT_FIRED, "flapping")
# Response milestones: label, abbreviation, milestone field, SLA target name (None: no target).
_RESPONSES = (("Acknowledge", "TTA", "acknowledged_at", "acknowledge"),
              ("Contain", "TTC", "contained_at", None),
              ("Resolve", "TTR", "resolved_at", "resolve"))


@dataclass(frozen=True)
class Response:
    """One response time measured from detection, with its SLA target and result."""

    label: str
    abbreviation: str
    seconds: float | None
    target: str
    due: dt.datetime | None
    status: str | None


@dataclass(frozen=True)
class Detection:
    """The detection of the incident: its source, time and first alert."""

    source: str
    detected_at: dt.datetime | None
    opened_by: str
    first_alert_at: dt.datetime | None
    first_alert: str
    alert_name: str
    alert_count: int


@dataclass(frozen=True)
class Postmortem:
    """Everything the postmortem notebook renders for one incident."""

    incident_id: int
    detail: dict[str, Any]
    rows: list[dict[str, Any]]
    owner: str
    detection: Detection
    responses: list[Response]
    zone: ZoneInfo
    now: dt.datetime

    @property
    def label(self) -> str:
        return display_id(self.incident_id)

    def entries(self, kind: str) -> list[dict[str, Any]]:
        """Return the effective rows of one section kind, oldest first."""
        return [row for row in self.rows if row["kind"] == kind]

    def missing_sections(self) -> list[str]:
        """Return the section kinds that have no written row yet."""
        return [str(kind) for kind in SECTION_KINDS if not self.entries(kind)]


def load_postmortem(project_dir: str | Path, incident_id: str | int, *,
                    database_url: str | None = None, now: str | None = None) -> Postmortem:
    """Read one incident's postmortem facts; an unknown incident raises UsageError."""
    config = load_config(Path(project_dir))
    number = parse_incident_id(incident_id)
    moment = parse_report_time(now or "", "now") or utc_now()
    policy = SlaPolicy.from_config(config.sla)

    store = open_store(database_url or config.database_url)
    try:
        detail = view.incident_detail(store, number, policy, now=moment)
        rows = view.incident_rows(store, number,
                                  flapping=view.Flapping.from_config(config.incidents))
    finally:
        store.close()

    return Postmortem(
        incident_id=number, detail=detail, rows=rows, owner=incident_owner(rows, config),
        detection=detection_of(detail, rows), responses=responses_of(detail, config),
        zone=load_zone(config.project["display_zone"]), now=moment,
    )


def incident_owner(rows: list[dict[str, Any]], config: Config) -> str:
    """Name the owner: the newest assignee, else the escalation target, else the first
    person who acknowledged; "not assigned" when the timeline names none of them."""
    for row in reversed(rows):
        if row["kind"] == Kind.ASSIGNED:
            names = row["details"].get("assignees") or row["details"].get("owner")
            if isinstance(names, list):
                names = ", ".join(str(name) for name in names)
            return f"{names or row['description'] or row['actor']} (assigned)"

    for row in rows:
        if row["kind"] == Kind.ESCALATED:
            target = row["details"].get("to") or config.incidents["owner"]
            return f"{target} (escalation target)"

    for row in rows:
        if row["kind"] == Kind.ACKNOWLEDGED and row["actor_kind"] == "human":
            return f"{row['actor']} (first to acknowledge)"
    return "not assigned"


def detection_of(detail: dict[str, Any], rows: list[dict[str, Any]]) -> Detection:
    """Describe the detection from the ``detected`` row and the first alert row."""
    detected = next((row for row in rows if row["kind"] == Kind.DETECTED), None)
    alerts = [row for row in rows if row["alert_key"] and row["kind"] in _ALERT_KINDS]
    first = alerts[0] if alerts else None
    labels = (first["details"].get("labels") or {}) if first else {}

    return Detection(
        source=detail["source"],
        detected_at=_time(detail["detected_at"]),
        opened_by=detected["actor"] if detected else "",
        first_alert_at=first["occurred_at"] if first else None,
        first_alert=_alert_text(first) if first else "",
        alert_name=str(labels.get("alertname") or first["details"].get("alertname") or "")
        if first else "",
        alert_count=len({row["alert_key"] for row in rows if row["alert_key"]}),
    )


def responses_of(detail: dict[str, Any], config: Config) -> list[Response]:
    """Measure TTA, TTC and TTR from detection and pair them with the SLA results."""
    detected = _time(detail["detected_at"])
    severity = (detail["severity"] or config.incidents["default_severity"]).lower()
    responses = []
    for label, abbreviation, field, target_name in _RESPONSES:
        reached = _time(detail[field])
        seconds = (reached - detected).total_seconds() if reached and detected else None
        if target_name is None:
            responses.append(Response(label, abbreviation, seconds, "no target", None, None))
            continue

        target = config.sla[f"{severity}_{target_name}"].strip() or "no target"
        sla = detail["sla"][target_name]
        responses.append(Response(label, abbreviation, seconds, target, _time(sla["due"]),
                                  sla["status"]))
    return responses


def _alert_text(row: dict[str, Any]) -> str:
    """Return the alert's own text: its description or summary annotation, else the row's
    description (a ``detected`` row carries only the incident title there)."""
    annotations = row["details"].get("annotations") or {}
    return str(annotations.get("description") or annotations.get("summary")
               or row["description"])


def _time(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None

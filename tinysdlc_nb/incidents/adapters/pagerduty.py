"""Adapter for PagerDuty V3 webhooks (``{"event": {"event_type": "incident.*", ...}}``).

Every V3 delivery carries one event with its own id, so the dedup key is that id. The
incident is ``data.id`` when ``data`` is the incident itself. Events about a part of an
incident (``incident.annotated`` sends the note) reference it as ``data.incident``.
"""

from __future__ import annotations

from typing import Any

from ..model import ActorKind, AdapterContext, Event, Signal
from ._payload import (
    optional_mapping,
    read_time,
    require_field,
    require_mapping,
    require_object,
    require_time,
    text,
)

NAME = "pagerduty"

_EVENTS = {
    "triggered": Event.FIRING,
    "acknowledged": Event.ACKNOWLEDGED,
    "unacknowledged": Event.UNACKNOWLEDGED,
    "resolved": Event.RESOLVED,
    "reopened": Event.REOPENED,
    "escalated": Event.ESCALATED,
    "reassigned": Event.ASSIGNED,
    "priority_updated": Event.SEVERITY,
    "annotated": Event.NOTE,
}
_URGENCY_SEVERITY = {"high": "P1", "low": "P3"}
# Incident fields copied into details when present.
_DETAIL_FIELDS = ("number", "status", "urgency", "html_url", "incident_key", "created_at",
                  "reopened_at", "resolve_reason")


def parse(payload: Any, context: AdapterContext) -> list[Signal]:
    """Return the signal of one V3 event, or [] for an event that is not about an incident.

    Incident event types without a timeline meaning of their own (delegated,
    responder.added, status_update_published...) become notes.
    """
    body = require_object(payload, NAME)
    event = require_mapping(body, "event", NAME, "event", "the V3 event object")
    event_type = text(require_field(event, "event_type", NAME, "event.event_type",
                                    "an event type such as incident.triggered"))
    if not event_type.startswith("incident."):
        return []

    event_id = text(require_field(event, "id", NAME, "event.id", "the event's id"))
    occurred_at = require_time(event.get("occurred_at"), NAME, "event.occurred_at")
    data = require_mapping(event, "data", NAME, "event.data", "the incident object")
    incident = _incident(data)
    incident_key = text(require_field(incident, "id", NAME, _incident_path(data),
                                      "the PagerDuty incident id"))
    action = event_type.removeprefix("incident.")
    actor, actor_kind = _actor(optional_mapping(event, "agent", NAME, "event.agent"))

    return [Signal(
        source=NAME,
        incident_key=incident_key,
        event=_EVENTS.get(action, Event.NOTE),
        occurred_at=occurred_at,
        dedup_key=f"{NAME}:{event_id}",
        started_at=read_time(incident.get("created_at"), NAME, "event.data.created_at"),
        title=text(incident.get("title") or incident.get("summary")),
        service=_summary(incident.get("service")),
        severity=_severity(incident, context),
        actor=actor,
        actor_kind=actor_kind,
        description=_description(action, data, incident),
        details=_details(event_type, incident),
    )]


def _incident(data: dict[str, Any]) -> dict[str, Any]:
    """Return the incident object: ``data`` itself, or the reference in ``data.incident``."""
    if data.get("type") not in (None, "incident") and isinstance(data.get("incident"), dict):
        return data["incident"]
    return data


def _incident_path(data: dict[str, Any]) -> str:
    return "event.data.id" if _incident(data) is data else "event.data.incident.id"


def _actor(agent: dict[str, Any]) -> tuple[str, ActorKind]:
    """Return the agent's name and kind. Only a user reference is a person."""
    kind = ActorKind.HUMAN if agent.get("type") == "user_reference" else ActorKind.SYSTEM
    return text(agent.get("summary")), kind


def _severity(incident: dict[str, Any], context: AdapterContext) -> str | None:
    """Map the incident's priority (P1-P5), else its urgency (high is P1, low is P3)."""
    priority = _summary(incident.get("priority"))
    mapped = context.severity(NAME, priority)
    if mapped is not None:
        return mapped
    return _URGENCY_SEVERITY.get(text(incident.get("urgency")).lower())


def _description(action: str, data: dict[str, Any], incident: dict[str, Any]) -> str:
    if action == "annotated":
        return text(data.get("content"))
    if action == "reassigned":
        names = [_summary(assignee) for assignee in incident.get("assignees") or []]
        return f"assigned to {', '.join(names)}" if names else "assignees removed"
    if action == "priority_updated":
        return f"priority {_summary(incident.get('priority')) or 'removed'}"
    return ""


def _details(event_type: str, incident: dict[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = {"event_type": event_type}
    for key in _DETAIL_FIELDS:
        if incident.get(key) is not None:
            details[key] = incident[key]
    for key in ("priority", "escalation_policy"):
        if _summary(incident.get(key)):
            details[key] = _summary(incident[key])
    if isinstance(incident.get("assignees"), list):
        details["assignees"] = [_summary(assignee) for assignee in incident["assignees"]]
    return details


def _summary(reference: Any) -> str:
    """Return the ``summary`` of a PagerDuty reference object, "" when there is none."""
    if isinstance(reference, dict):
        return text(reference.get("summary"))
    return ""

"""Adapter for Opsgenie outgoing webhooks (``{"action": "Create", "alert": {...}}``).

Opsgenie writes ``updatedAt`` as a 19-digit epoch in nanoseconds, above 2**53, so it is
read as an integer (``json.loads`` keeps it exact) and kept verbatim in the dedup key.
Escalation payloads carry only ``alert.alertId``, so their time is the receipt time and
their dedup key hashes the whole payload.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..model import ActorKind, AdapterContext, Event, Signal
from ._payload import (
    content_hash,
    optional_mapping,
    read_time,
    require_field,
    require_mapping,
    require_object,
    text,
)

NAME = "opsgenie"

# Actions by lower-cased name. Every other action becomes a note.
_EVENTS = {
    "create": Event.FIRING,
    "acknowledge": Event.ACKNOWLEDGED,
    "unacknowledge": Event.UNACKNOWLEDGED,
    "close": Event.RESOLVED,
    "escalate": Event.ESCALATED,
    "escalatetonext": Event.ESCALATED,
    "addnote": Event.NOTE,
    "assignownership": Event.ASSIGNED,
    "takeownership": Event.ASSIGNED,
    "updatepriority": Event.SEVERITY,
}
# Names Opsgenie records as the user of actions no person took.
_SYSTEM_ACTORS = frozenset({"system", "alert api", "api", "heartbeat", "opsgenie"})
_DETAIL_FIELDS = ("tinyId", "alias", "entity", "source", "tags", "priority", "owner")


def parse(payload: Any, context: AdapterContext) -> list[Signal]:
    """Return the signal of one Opsgenie alert action."""
    body = require_object(payload, NAME)
    action = text(require_field(body, "action", NAME, "action",
                                "an alert action such as Create or Close"))
    alert = require_mapping(body, "alert", NAME, "alert", "the alert object")
    alert_id = text(require_field(alert, "alertId", NAME, "alert.alertId", "the alert's id"))
    source = optional_mapping(body, "source", NAME, "source")

    details = _details(body, alert)
    occurred_at, time_token = _time(alert, context.received_at)
    if time_token is None:
        details["time_estimated"] = True
        time_token = f"sha256-{content_hash(body)}"
    actor = text(alert.get("username") or source.get("name"))

    return [Signal(
        source=NAME,
        incident_key=alert_id,
        event=_EVENTS.get(action.lower(), Event.NOTE),
        occurred_at=occurred_at,
        dedup_key=f"{NAME}:{alert_id}:{action}:{time_token}",
        started_at=read_time(alert.get("createdAt"), NAME, "alert.createdAt"),
        title=text(alert.get("message")),
        service=text(alert.get("entity")),
        severity=_severity(alert.get("priority"), context),
        actor=actor,
        actor_kind=_actor_kind(actor, text(body.get("integrationName"))),
        description=_description(action, alert),
        details=details,
    )]


def _time(alert: dict[str, Any], received_at: dt.datetime) -> tuple[dt.datetime, str | None]:
    """Return the action's time and its exact payload spelling, or the receipt time and None.

    ``updatedAt`` is the time of this action. ``createdAt`` (milliseconds) is the alert's
    creation, used only when no update time is sent.
    """
    for key in ("updatedAt", "createdAt"):
        parsed = read_time(alert.get(key), NAME, f"alert.{key}")
        if parsed is not None:
            return parsed, text(alert[key])
    return received_at, None


def _severity(priority: Any, context: AdapterContext) -> str | None:
    """Map Opsgenie's priority, reading a bare number such as 3 as P3."""
    if isinstance(priority, int) and not isinstance(priority, bool):
        priority = f"P{priority}"
    elif isinstance(priority, str) and priority.strip().isdigit():
        priority = f"P{priority.strip()}"
    return context.severity(NAME, priority)


def _actor_kind(actor: str, integration: str) -> ActorKind:
    name = actor.strip().lower()
    if not name:
        return ActorKind.SYSTEM
    if name in _SYSTEM_ACTORS or "integration" in name or name == integration.strip().lower():
        return ActorKind.SYSTEM
    return ActorKind.HUMAN


def _description(action: str, alert: dict[str, Any]) -> str:
    if action.lower() == "addnote":
        return text(alert.get("note"))
    return text(alert.get("description"))


def _details(body: dict[str, Any], alert: dict[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = {"action": body["action"]}
    for key in _DETAIL_FIELDS:
        if alert.get(key) not in (None, ""):
            details[key] = alert[key]
    for key in ("integrationName", "escalationName"):
        if body.get(key):
            details[key] = body[key]
    notify = body.get("escalationNotify")
    if isinstance(notify, dict) and notify.get("name"):
        details["escalation_notify"] = notify["name"]
    return details

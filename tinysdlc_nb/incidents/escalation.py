"""Escalation of P0 and P1 incidents to the human owner.

The role's rule: a P0 or P1 is reported to the owner (SE4H) at once. The store records an
``escalated`` row whenever an incident opens at, or rises to, P0 or P1; a rise from P1 to
P0 escalates again because the stakes changed. When team settings name a devops agent,
the same transaction queues a message to it, and the agent's reply notifies the owner.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection

from .model import ActorKind, Kind, is_stricter
from .records import NewRow, display_id, incident_row

ESCALATE_AT = ("P0", "P1")
ESCALATION_SOURCE = "tinysdlc-nb"


def needs_escalation(old: str | None, new: str) -> bool:
    return new in ESCALATE_AT and (old is None or is_stricter(new, old))


def escalation_row(old: str | None, new: str, at: dt.datetime, owner: str,
                   queued: tuple[str, int] | None = None) -> NewRow | None:
    """Return the ``escalated`` row for a change from ``old`` to ``new``, or None.

    ``queued`` is the (agent, conversation id) the escalation was handed to, if any.
    """
    if not needs_escalation(old, new):
        return None
    details = {"to": owner, "severity": new, "from_severity": old, "delivered": False}
    if queued is None:
        description = (f"{new} incident: escalation to {owner} recorded, not sent (no "
                       f"readable team settings name a devops agent)")
    else:
        agent, conversation_id = queued
        description = (f"{new} incident: escalation to {owner} queued for @{agent} "
                       f"(conversation C-{conversation_id})")
        details.update(queued_for=agent, conversation_id=conversation_id)
    return NewRow(Kind.ESCALATED, at, ESCALATION_SOURCE, actor=ESCALATION_SOURCE,
                  actor_kind=ActorKind.SYSTEM, description=description, details=details)


def escalate(connection: Connection, incident_id: int, old: str | None, new: str,
             at: dt.datetime, owner: str, route=None) -> NewRow | None:
    """Queue the escalation for the team when ``route`` is set, and return its row."""
    if not needs_escalation(old, new):
        return None
    queued = None
    if route is not None:
        from ..team.escalations import enqueue_escalation

        incident = incident_row(connection, incident_id)
        conversation_id = enqueue_escalation(
            connection, route, label=display_id(incident_id), title=incident["title"],
            service=incident["service"], severity=new, old=old, owner=owner)
        queued = (route.agent, conversation_id)
    return escalation_row(old, new, at, owner, queued)

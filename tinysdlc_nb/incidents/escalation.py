"""Escalation of P0 and P1 incidents to the human owner.

The role's rule: a P0 or P1 is reported to the owner (SE4H) at once. The store records an
``escalated`` row whenever an incident opens at, or rises to, P0 or P1; a rise from P1 to
P0 escalates again because the stakes changed.
"""

from __future__ import annotations

import datetime as dt

from .model import ActorKind, Kind, is_stricter
from .records import NewRow

ESCALATE_AT = ("P0", "P1")
ESCALATION_SOURCE = "tinysdlc-nb"


def escalation_row(old: str | None, new: str, at: dt.datetime, owner: str) -> NewRow | None:
    """Return the ``escalated`` row for a change from ``old`` to ``new``, or None."""
    if new not in ESCALATE_AT:
        return None
    if old is not None and not is_stricter(new, old):
        return None
    return NewRow(
        Kind.ESCALATED, at, ESCALATION_SOURCE, actor=ESCALATION_SOURCE,
        actor_kind=ActorKind.SYSTEM,
        description=f"{new} incident: escalation to {owner} recorded, not sent (no team "
                    f"messaging is set up)",
        details={"to": owner, "severity": new, "from_severity": old, "delivered": False},
    )

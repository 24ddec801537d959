"""Incident escalations handed to the team's devops agent through the queue."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Connection

from ..errors import ConfigError
from .conversations import insert_conversation
from .model import Delivery, RouteDecision
from .queue import SYSTEM
from .settings import load_team_settings, settings_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EscalationRoute:
    """The agent escalations go to, and the queue limits of the conversation they start."""

    agent: str
    max_messages: int
    max_attempts: int


def escalation_route(config) -> EscalationRoute | None:
    """Return where escalations go: the agent whose role is devops, else the default agent.

    None when there are no team settings or they cannot be read; the escalation is then
    only recorded, and the timeline row says so.
    """
    try:
        settings = load_team_settings(config.home)
    except ConfigError as error:
        if settings_path(config.home).exists():
            log.warning("escalations are recorded but not queued, because the team settings "
                        "cannot be read: %s", error)
        else:
            log.info("escalations are recorded but not queued: %s", error)
        return None

    devops = [spec.id for spec in settings.agents.values() if spec.role == "devops"]
    agent = devops[0] if devops else config.team["default_agent"]
    if agent not in settings.agents:
        log.warning("escalations are recorded but not queued: no agent has the devops role "
                    "and [team].default_agent '%s' is not an agent", agent)
        return None
    return EscalationRoute(agent, config.team["max_conversation_messages"],
                           config.team["max_attempts"])


def enqueue_escalation(connection: Connection, route: EscalationRoute, *, label: str,
                       title: str, service: str, severity: str, old: str | None,
                       owner: str) -> int:
    """Queue the escalation message in the caller's transaction; return the conversation id."""
    change = f"rose from {old} to {severity}" if old else f"opened at {severity}"
    text = (f"Incident escalation: {label} {change}: {title}. Service: {service or 'not named'}. "
            f"Notify {owner} and hand the fix to the team.")
    decision = RouteDecision((Delivery(route.agent, text, text),), (), "")
    started = insert_conversation(connection, decision, text=text, started_by=SYSTEM,
                                  sender=SYSTEM, origin="incident", team=None,
                                  max_messages=route.max_messages,
                                  max_attempts=route.max_attempts)
    return started.conversation_id

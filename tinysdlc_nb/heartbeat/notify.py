"""Hand a beat that needs a person to the outbox, and to the channels when they exist."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import importlib.util
import logging

from sqlalchemy import Connection

from ..channels.outbox import queue_notification
from ..config import Config
from ..errors import TinySDLCError
from ..store import Store
from .findings import Finding

log = logging.getLogger(__name__)

DELIVERY_MODULE = "tinysdlc_nb.channels.delivery"


def recipient_of(config: Config) -> str:
    """Return ``[heartbeat].recipient``, or ``[incidents].owner`` when it is empty."""
    return config.heartbeat["recipient"].strip() or config.incidents["owner"].strip()


def notification_text(project: str, at: dt.datetime, summary: str, summary_source: str,
                      findings: list[Finding]) -> str:
    """Return the text for the person: the summary, then the findings that need them.

    A summary written by code already lists those findings, so they are not repeated.
    """
    lines = [f"tinysdlc-nb heartbeat of {project} at {at.astimezone(dt.UTC):%Y-%m-%d %H:%M} "
             f"UTC", summary]
    if summary_source != "code":
        lines.append("Needs a person:")
        lines += [f"- {finding.text}" for finding in findings if finding.needs_person]
    return "\n".join(lines)


def dedup_key(previous_id: int | None, fingerprint: str) -> str:
    """Return the outbox key of a change from the beat ``previous_id`` to ``fingerprint``.

    Two beats that see the same change at the same time queue one notification, while a
    state that comes back after it had cleared is a new change and notifies again.
    """
    change = f"heartbeat {previous_id or 0} {fingerprint}"
    return hashlib.sha256(change.encode("utf-8")).hexdigest()


def queue(connection: Connection, config: Config, text: str, key: str) -> int | None:
    """Queue the notification in the caller's transaction; None when the key was queued."""
    recipient = recipient_of(config)
    notification_id = queue_notification(connection, recipient, text, dedup_key=key)
    if notification_id is None:
        log.info("heartbeat: notification for %s was already queued (key %s)", recipient,
                 key[:12])
    else:
        log.info("heartbeat: queued notification %d for %s", notification_id, recipient)
    return notification_id


def deliver_now(config: Config, store: Store, now: dt.datetime) -> dict | None:
    """Run one delivery pass so a queued notification reaches the person now.

    Returns None without sending when ``[channels].notify`` lists no channel or this
    installation has no ``channels.delivery`` module. The notification then stays queued
    for the scheduler's delivery.
    """
    if not config.channels["notify"]:
        log.info("heartbeat: no channel in [channels].notify; the notification stays queued")
        return None
    if importlib.util.find_spec(DELIVERY_MODULE) is None:
        log.info("heartbeat: channel delivery is not available; the notification stays queued")
        return None

    delivery = importlib.import_module(DELIVERY_MODULE)
    try:
        result = delivery.deliver_due(store, config, now=now)
    except TinySDLCError as error:
        log.warning("heartbeat: delivery pass failed (%s); the notification stays queued",
                    error)
        return {"error": str(error)}
    log.info("heartbeat: delivery pass: %s", result)
    return result

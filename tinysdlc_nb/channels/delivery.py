"""Delivery passes: every queued notification goes out over every channel in
``[channels].notify``, part by part, and nothing is ever dropped.

A pass creates the missing deliveries, claims the due ones (see claims.py) and sends the
parts each has not sent yet, in order. Every request is a ``channel_attempts`` row.

A 429 response rate-limits its channel for the rest of the pass, until the time the
response requests (its Retry-After, or the backoff when it names none). The channel's
other claimed deliveries go back to the queue with that time as ``next_attempt_at``,
without a request. A pass waits in place at most once, for a Retry-After of at most
``max_retry_after_s``, and then sends the rate-limited part once more. A 429 on that
retry, or any 429 after the pass used its wait, leaves the delivery queued until its
time. So a pass lasts at most one ``max_retry_after_s`` wait plus its requests, and the
other channels keep sending. Any other failure retries after ``backoff_base_s``,
doubling with each claim up to ``backoff_max_s``, without limit.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..config import Config
from ..errors import ConfigError
from ..scrub import scrub
from ..store import Store, as_utc, utc_now
from ..store.schema import team_notifications
from .base import Channel, Outgoing, SendResult, new_client
from .claims import (
    DELIVERED,
    FAILED,
    RATE_LIMITED,
    RETRYING,
    SENT,
    Claim,
    claim_due,
    create_deliveries,
    fenced_update,
    finish_notification,
    finish_waiting,
    record_attempt,
)
from .registry import build_channel, direct_target
from .split import split_text

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

# Lease time on top of the longest request and in-place wait.
LEASE_MARGIN_S = 30.0


def deliver_due(store: Store, config: Config, *, now: dt.datetime | None = None,
                client: httpx.Client | None = None,
                stop: threading.Event | None = None) -> dict[str, int]:
    """Run one delivery pass and return its counts; a failed send is recorded, not raised.

    ``now`` fixes the pass's clock (tests move it forward); ``stop`` ends in-place waits
    early and releases the delivery in hand.
    """
    settings = config.channels
    clock: Callable[[], dt.datetime] = (lambda: now) if now is not None else utc_now
    summary = {"created": 0, "claimed": 0, "delivered": 0, "retrying": 0, RATE_LIMITED: 0,
               "parts_sent": 0, "notifications_delivered": 0}
    if not settings["configured"]:
        return summary

    if "telegram" in settings["configured"]:
        from .inbound import queue_chat_answers

        queue_chat_answers(store)
    summary["created"] = create_deliveries(store, settings, clock())
    summary["notifications_delivered"] = finish_waiting(store, settings, clock())

    claims = claim_due(store, settings, clock(), lease_seconds(settings))
    summary["claimed"] = len(claims)
    own_client = client is None
    client = client or new_client(settings["timeout_s"])
    limits = RateLimits()
    try:
        for claim in claims:
            sender = _Sender(store, settings, client, claim, clock, stop or threading.Event(),
                             limits)
            outcome = sender.run()
            summary["parts_sent"] += sender.parts_sent
            summary[outcome] = summary.get(outcome, 0) + 1
            summary["notifications_delivered"] += sender.finished_notification
    finally:
        if own_client:
            client.close()

    for channel, count in limits.requeued.items():
        log.warning("channel %s: rate limited until %s; %d more delivery(ies) stay queued "
                    "until then without a request", channel,
                    limits.resume_at[channel].isoformat(timespec="seconds"), count)
    return summary


@dataclass
class RateLimits:
    """The 429 state of one pass: when each channel may get a request again, and whether
    the pass has used its one in-place wait.

    The end of a limit is kept twice: on the monotonic clock, to decide within the pass,
    and on the pass's clock, to write as ``next_attempt_at``.
    """

    deadlines: dict[str, float] = field(default_factory=dict)
    resume_at: dict[str, dt.datetime] = field(default_factory=dict)
    requeued: dict[str, int] = field(default_factory=dict)
    waited: bool = False

    def limit(self, channel: str, seconds: float, now: dt.datetime) -> None:
        """Block requests to ``channel`` for ``seconds`` from now."""
        self.deadlines[channel] = time.monotonic() + seconds
        self.resume_at[channel] = now + dt.timedelta(seconds=seconds)

    def clear(self, channel: str) -> None:
        """Lift the limit of ``channel`` after the pass waited it out."""
        self.deadlines.pop(channel, None)

    def until(self, channel: str) -> dt.datetime | None:
        """Return when ``channel`` may get a request again, or None when it may now."""
        deadline = self.deadlines.get(channel)
        if deadline is None or time.monotonic() >= deadline:
            return None
        return self.resume_at[channel]


def lease_seconds(settings: dict[str, Any]) -> float:
    """Return how long a claim is held without a write: one request, one wait and a margin."""
    return 2 * settings["timeout_s"] + settings["max_retry_after_s"] + LEASE_MARGIN_S


def backoff_seconds(settings: dict[str, Any], attempts: int) -> float:
    """Return the wait after a failed pass: the base doubled per earlier claim, capped."""
    exponent = max(attempts - 1, 0)
    if exponent > 60:
        return settings["backoff_max_s"]
    return min(settings["backoff_base_s"] * 2 ** exponent, settings["backoff_max_s"])


def outgoing_parts(channel: Channel, notification: dict[str, Any],
                   target: str | None = None) -> list[Outgoing]:
    """Return every message of a notification on ``channel``, in sending order.

    A notification to one chat goes to that chat only. Others go to each of the channel's
    recipients and start with the person they are for, except on the webhook, which
    carries the recipient as a field.
    """
    recipient = notification["recipient"]
    text = notification["text"]
    if target is None and channel.name != "webhook" and recipient:
        text = f"For {recipient}:\n{text}"
    parts = split_text(scrub(text), channel.limit)
    targets = [target] if target is not None else channel.targets()
    created = notification.get("created_at")
    return [Outgoing(text=part, target=each, part=number, parts=len(parts),
                     notification_id=notification["id"], recipient=recipient,
                     conversation_id=notification.get("conversation_id"),
                     created_at=as_utc(created) if created else None,
                     key=f"n{notification['id']}-p{number}")
            for each in targets for number, part in enumerate(parts, 1)]


class _Sender:
    """Sends the remaining parts of one claimed delivery and records what happened."""

    def __init__(self, store: Store, settings: dict[str, Any], client: httpx.Client,
                 claim: Claim, clock: Callable[[], dt.datetime], stop: threading.Event,
                 limits: RateLimits):
        self.store = store
        self.settings = settings
        self.client = client
        self.claim = claim
        self.clock = clock
        self.stop = stop
        self.limits = limits
        self.parts_sent = 0
        self.finished_notification = 0

    def run(self) -> str:
        resume_at = self.limits.until(self.claim.channel)
        if resume_at is not None:
            return self._requeue(resume_at)

        with self.store.engine.connect() as connection:
            notification = connection.execute(select(team_notifications).where(
                team_notifications.c.id == self.claim.notification_id)).mappings().one()
        direct = direct_target(notification["recipient"])
        try:
            channel = build_channel(self.claim.channel, self.settings)
            channel.prepare()
        except ConfigError as error:
            return self._failed(self.claim.parts_sent + 1, SendResult(False, error=str(error)))

        messages = outgoing_parts(channel, dict(notification), direct[1] if direct else None)
        with self.store.begin() as connection:
            if not fenced_update(connection, self.claim, parts_total=len(messages)):
                return self._lost()

        index = self.claim.parts_sent
        while index < len(messages):
            result = channel.send(self.client, messages[index])
            if result.ok:
                if not self._sent(index + 1, result):
                    return self._lost()
                index += 1
                continue
            if result.http_status == 429 and result.retry_after_s is not None:
                self.limits.limit(self.claim.channel, result.retry_after_s, self.clock())
                if not self._may_wait(result.retry_after_s):
                    return self._deferred(index + 1, result)
                self.limits.waited = True
                if not self._wait(index + 1, result):
                    return RETRYING
                self.limits.clear(self.claim.channel)
                continue
            return self._failed(index + 1, result)
        return self._delivered()

    def _sent(self, part: int, result: SendResult) -> bool:
        now = self.clock()
        with self.store.begin() as connection:
            record_attempt(connection, self.claim, part, SENT, now,
                           http_status=result.http_status)
            kept = fenced_update(connection, self.claim, parts_sent=part,
                                 next_attempt_at=now + dt.timedelta(
                                     seconds=lease_seconds(self.settings)))
        if kept:
            self.parts_sent += 1
        return kept

    def _may_wait(self, retry_after_s: float) -> bool:
        return retry_after_s <= self.settings["max_retry_after_s"] and not self.limits.waited

    def _wait(self, part: int, result: SendResult) -> bool:
        """Wait the time a 429 asked for; False when a stop came first (the claim is released)."""
        now = self.clock()
        seconds = result.retry_after_s or 0.0
        with self.store.begin() as connection:
            record_attempt(connection, self.claim, part, RATE_LIMITED, now,
                           http_status=result.http_status, retry_after_s=seconds,
                           error=result.error)
            lease = dt.timedelta(seconds=seconds + lease_seconds(self.settings))
            fenced_update(connection, self.claim, next_attempt_at=now + lease)
        log.info("channel %s: delivery %d part %d is rate limited; waiting %.1f s",
                 self.claim.channel, self.claim.id, part, seconds)
        if self.stop.wait(seconds):
            with self.store.begin() as connection:
                fenced_update(connection, self.claim, status=RETRYING,
                              next_attempt_at=now + dt.timedelta(seconds=seconds),
                              last_error=result.error)
            return False
        return True

    def _deferred(self, part: int, result: SendResult) -> str:
        now = self.clock()
        seconds = result.retry_after_s or 0.0
        with self.store.begin() as connection:
            record_attempt(connection, self.claim, part, RATE_LIMITED, now,
                           http_status=result.http_status, retry_after_s=seconds,
                           error=result.error)
            fenced_update(connection, self.claim, status=RETRYING,
                          next_attempt_at=now + dt.timedelta(seconds=seconds),
                          last_error=result.error)
        log.warning("channel %s: delivery %d part %d is rate limited for %.1f s; it stays "
                    "queued until then", self.claim.channel, self.claim.id, part, seconds)
        return RATE_LIMITED

    def _requeue(self, resume_at: dt.datetime) -> str:
        """Put the delivery back in the queue until its channel's rate limit ends.

        No request was made, so the claim's attempt is given back: the backoff after a
        later failure counts only the claims that sent. The claim is still this process's
        own, and nothing is written under it after this, so reusing its token is safe.
        """
        with self.store.begin() as connection:
            if not fenced_update(connection, self.claim, status=RETRYING,
                                 next_attempt_at=resume_at, attempts=self.claim.attempts - 1):
                return self._lost()
        channel = self.claim.channel
        self.limits.requeued[channel] = self.limits.requeued.get(channel, 0) + 1
        return RATE_LIMITED

    def _failed(self, part: int, result: SendResult) -> str:
        now = self.clock()
        wait_s = backoff_seconds(self.settings, self.claim.attempts)
        if result.retry_after_s is not None:
            wait_s = max(wait_s, result.retry_after_s)
        error = scrub(result.error or "failed without a message")
        if result.http_status == 429:
            self.limits.limit(self.claim.channel, wait_s, now)
        with self.store.begin() as connection:
            record_attempt(connection, self.claim, part, FAILED, now,
                           http_status=result.http_status, retry_after_s=result.retry_after_s,
                           error=error)
            fenced_update(connection, self.claim, status=RETRYING,
                          next_attempt_at=now + dt.timedelta(seconds=wait_s),
                          last_error=error)
        log.warning("channel %s: delivery %d of notification %d failed at part %d (%s); "
                    "retrying in %.0f s", self.claim.channel, self.claim.id,
                    self.claim.notification_id, part, error, wait_s)
        return RETRYING

    def _delivered(self) -> str:
        now = self.clock()
        with self.store.begin() as connection:
            if not fenced_update(connection, self.claim, status=DELIVERED, delivered_at=now,
                                 last_error=None):
                return self._lost()
            self.finished_notification = int(finish_notification(
                connection, self.claim.notification_id, self.settings, now))
        log.info("channel %s: delivered notification %d", self.claim.channel,
                 self.claim.notification_id)
        return DELIVERED

    def _lost(self) -> str:
        log.warning("channel %s: delivery %d was taken over by another process after its "
                    "lease ran out; this process stops sending it", self.claim.channel,
                    self.claim.id)
        return "lost"

"""The worker: claims messages, hands each to its agent, and stores what comes back.

One worker process runs ``concurrency`` threads. Each thread claims the oldest
claimable message, so different agents work in parallel while each agent gets its own
messages one at a time, in order. SIGTERM or SIGINT stops the claims; the messages in
hand are finished first.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from ..store import Store
from .agents import AgentPool
from .claims import claim_batch, has_work, renew_leases
from .delivery import LOST, Outcome, Result, bury_expired, finish_batch
from .model import AgentContext, AgentError, AgentRejected, AgentRequest, AgentUnusable
from .queue import DEAD, DONE, Claimed, QueueOptions
from .settings import TeamSettings

log = logging.getLogger(__name__)

# How often an idle worker looks for messages whose every attempt was lost.
_BURY_EVERY_S = 1.0


@dataclass
class WorkerStats:
    """Counts of what one worker run did, for its summary line and for tests."""

    done: int = 0
    retried: int = 0
    dead: int = 0
    lost: int = 0
    answered: int = 0
    stopped_by: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Processes the queue of one store until stopped, or until it is empty with ``once``."""

    def __init__(self, store: Store, context: AgentContext,
                 settings_loader: Callable[[], TeamSettings], options: QueueOptions, *,
                 concurrency: int = 4, poll_interval_s: float = 0.005, once: bool = False,
                 recipients: Collection[str] | None = None, worker_id: str | None = None,
                 batch_size: int = 32):
        self.store = store
        self.context = context
        self.options = options
        self.concurrency = concurrency
        self.poll_interval_s = poll_interval_s
        self.once = once
        self.recipients = recipients
        self.batch_size = batch_size
        self.worker_id = worker_id or new_worker_id()
        self.stats = WorkerStats()
        self.unusable: AgentUnusable | None = None
        self._settings_loader = settings_loader
        self._settings = settings_loader()
        self._settings_mtime = self._mtime()
        self._settings_lock = threading.Lock()
        self._pool = AgentPool(context)
        self._stop = threading.Event()
        self._last_bury = 0.0
        self._poll_lock = threading.Lock()
        self._last_poll = 0.0
        self._last_failure = ""
        self._last_failure_at = 0.0
        self._repeats = 0
        self._held: dict[int, Claimed] = {}
        self._held_lock = threading.Lock()

    def stop(self, reason: str = "requested") -> None:
        if not self._stop.is_set():
            log.info("worker %s stopping: %s", self.worker_id, reason)
            self.stats.stopped_by = reason
        self._stop.set()

    def run(self) -> WorkerStats:
        """Run the threads until stopped (or the queue is empty with ``once``)."""
        log.info("worker %s started: %d thread(s), store %s", self.worker_id,
                 self.concurrency, self.store.dialect)
        restore = self._install_signal_handlers()
        threads = [threading.Thread(target=self._loop, name=f"team-worker-{index}",
                                    daemon=True) for index in range(self.concurrency)]
        renewer = threading.Thread(target=self._renew_loop, name="team-lease-renewer",
                                   daemon=True)
        renewer.start()
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():
                    thread.join(timeout=0.2)
        finally:
            self._stop.set()
            restore()
        log.info("worker %s stopped: %d done, %d retried, %d dead, %d lost", self.worker_id,
                 self.stats.done, self.stats.retried, self.stats.dead, self.stats.lost)
        return self.stats

    def process_one(self) -> bool:
        """Claim and process one batch of one agent's messages; False when none was claimable."""
        batch = claim_batch(self.store, self.worker_id, self.options,
                            recipients=self.recipients, limit=self._batch_limit)
        if not batch:
            return False
        with self._held_lock:
            self._held.update((claimed.id, claimed) for claimed in batch)
        try:
            self._handle(batch)
        finally:
            with self._held_lock:
                for claimed in batch:
                    self._held.pop(claimed.id, None)
        return True

    def _batch_limit(self, agent_id: str) -> int:
        """Return how many messages of ``agent_id`` one claim may take.

        An agent object may set ``batch_size``; agents that call a remote model take one
        at a time, so a crash never holds back more than one finished reply.
        """
        spec = self._current_settings().agents.get(agent_id)
        if spec is None:
            return 1
        try:
            agent = self._pool.agent_for(spec)
        except (AgentRejected, AgentUnusable):
            return 1
        return max(1, min(self.batch_size, getattr(agent, "batch_size", 1)))

    def _renew_loop(self) -> None:
        """Renew the leases of messages in hand every third of the lease time."""
        interval = self.options.lease_s / 3
        while not self._stop.wait(interval):
            with self._held_lock:
                held = list(self._held.values())
            try:
                renew_leases(self.store, held, self.options.lease_s)
            except Exception:  # the next round tries again; the claim checks stay correct
                log.exception("worker %s: renewing %d lease(s) failed", self.worker_id,
                              len(held))

    def _loop(self) -> None:
        idle = False
        while not self._stop.is_set():
            if idle and not self._take_poll_turn():
                self._stop.wait(self.poll_interval_s)
                continue
            try:
                worked = (not idle or has_work(self.store)) and self.process_one()
            except Exception as error:  # a store error must not kill the thread silently
                self._log_failure(error)
                worked = False
                self._stop.wait(min(1.0, self.poll_interval_s * 100))
            idle = not worked
            if worked:
                continue

            self._bury_expired()
            if self.once:
                return
            self._stop.wait(self.poll_interval_s)

    def _log_failure(self, error: Exception) -> None:
        """Log a failed claim or finish; the same failure again within a minute is counted."""
        key = f"{type(error).__name__}: {error}"
        now = time.monotonic()
        with self._poll_lock:
            repeated = key == self._last_failure and now - self._last_failure_at < 60
            if repeated:
                self._repeats += 1
                return
            repeats, self._repeats = self._repeats, 0
            self._last_failure, self._last_failure_at = key, now
        suffix = f" ({repeats} repeat(s) of the previous failure were not logged)" \
            if repeats else ""
        log.error("worker %s: processing failed; trying again%s", self.worker_id, suffix,
                  exc_info=error)

    def _take_poll_turn(self) -> bool:
        """Return True for one idle thread per poll interval, so idle reads do not multiply."""
        with self._poll_lock:
            now = time.monotonic()
            if now - self._last_poll < self.poll_interval_s:
                return False
            self._last_poll = now
            return True

    def _handle(self, batch: list[Claimed]) -> None:
        """Hand each message of the batch to its agent in order, then finish them together.

        A failure that will be retried stops the batch: the messages after it go back to
        the queue untouched, so the agent never sees them before the retried one.
        """
        settings = self._current_settings()
        results: list[Result] = []
        unprocessed: list[Claimed] = []
        for index, claimed in enumerate(batch):
            result = self._run_agent(claimed, settings)
            if result is None:
                # The request may have reached the model, so this attempt stays spent.
                results.append(Result(claimed, error=f"agent {claimed.recipient} cannot "
                                                     f"work: {self.unusable}"))
                unprocessed = batch[index + 1:]
                break
            results.append(result)
            if result.reply is None and not result.permanent \
                    and claimed.attempt < claimed.max_attempts:
                unprocessed = batch[index + 1:]
                break

        outcomes = finish_batch(self.store, results, settings=settings,
                                files_dir=self.context.files_dir, options=self.options,
                                unprocessed=unprocessed)
        for result, outcome in zip(results, outcomes, strict=True):
            self._count(result, outcome)

    def _run_agent(self, claimed: Claimed, settings: TeamSettings) -> Result | None:
        """Return the agent's result for one message, or None when the agent cannot work."""
        spec = settings.agents.get(claimed.recipient)
        if spec is None:
            return Result(claimed, error=f"agent '{claimed.recipient}' is not in the team "
                                         f"settings any more; add it back and retry the "
                                         f"message", permanent=True)

        request = AgentRequest(agent_id=claimed.recipient, sender=claimed.sender,
                               message=claimed.body, conversation_id=claimed.conversation_id,
                               message_id=claimed.id, attempt=claimed.attempt,
                               depth=claimed.depth, kind=claimed.kind)
        try:
            agent = self._pool.agent_for(spec)
            return Result(claimed, reply=agent.reply(request, spec))
        except AgentUnusable as error:
            self.unusable = error
            log.error("agent %s cannot work: %s", claimed.recipient, error)
            self.stop(f"agent {claimed.recipient} cannot work")
            return None
        except AgentRejected as error:
            return Result(claimed, error=str(error), permanent=True)
        except AgentError as error:
            return Result(claimed, error=str(error), retry_after_s=error.retry_after_s)
        except Exception as error:  # an agent's bug costs one attempt, not the worker
            log.exception("agent %s failed on message %s", claimed.recipient, claimed.id)
            return Result(claimed, error=f"agent {claimed.recipient} failed: "
                                         f"{type(error).__name__}: {error}")

    def _count(self, result: Result, outcome: Outcome) -> None:
        claimed = result.claimed
        if outcome.status == LOST:
            self.stats.add("lost")
            log.warning("dropping the result of message %s: worker %s no longer holds its "
                        "attempt %d", claimed.id, self.worker_id, claimed.attempt)
        elif outcome.status == DONE:
            self.stats.add("done")
        elif outcome.status == DEAD:
            self.stats.add("dead")
        else:
            self.stats.add("retried")
            log.warning("message %s to %s failed on attempt %d, retrying: %s", claimed.id,
                        claimed.recipient, claimed.attempt, result.error)
        if outcome.answer is not None:
            self.stats.add("answered")

    def _bury_expired(self) -> None:
        now = time.monotonic()
        if now - self._last_bury < _BURY_EVERY_S and not self.once:
            return
        self._last_bury = now
        for _message_id in bury_expired(self.store):
            self.stats.add("dead")

    def _current_settings(self) -> TeamSettings:
        """Return the team settings, read again when their file changed."""
        mtime = self._mtime()
        with self._settings_lock:
            if mtime != self._settings_mtime:
                try:
                    self._settings = self._settings_loader()
                    self._settings_mtime = mtime
                    log.info("team settings reloaded from %s", self._settings.source)
                except Exception as error:
                    log.error("team settings changed but cannot be read, keeping the "
                              "previous ones: %s", error)
                    self._settings_mtime = mtime
            return self._settings

    def _mtime(self) -> float | None:
        source = getattr(self._settings, "source", None) if hasattr(self, "_settings") \
            else None
        if source is None:
            return None
        try:
            return Path(source).stat().st_mtime
        except OSError:
            return None

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {number: signal.getsignal(number)
                    for number in (signal.SIGTERM, signal.SIGINT)}

        def handle(number, _frame) -> None:
            name = signal.Signals(number).name
            if self._stop.is_set():
                # A second signal while an agent call is in flight: stop now. The leases of
                # the messages in hand expire after team.lease_s and they are taken again.
                log.warning("worker %s: second %s, exiting without finishing %d message(s)",
                            self.worker_id, name, len(self._held))
                os._exit(128 + number)
            self.stop(name)

        for number in previous:
            signal.signal(number, handle)

        def restore() -> None:
            for number, handler in previous.items():
                signal.signal(number, handler)

        return restore

"""The scheduler: claims due fires, starts their runs, and keeps leases, limits and reports.

Several schedulers may share one PostgreSQL store. A fire is claimed by inserting its
``schedule_runs`` row, whose (schedule_id, scheduled_for) pair is unique, so exactly one
scheduler wins it. ``next_run_at`` then moves forward with a compare-and-set update. A
running run carries a lease that its scheduler renews every third of ``lease_s``; any
scheduler marks a run whose lease lapsed as interrupted.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ..config import Config
from ..errors import TinySDLCError
from ..store import Store, utc_now
from . import records
from .cron import parse_cron
from .jobs import ProcessRunner, finish_unrecorded, store_url
from .retention import delete_old_reports

log = logging.getLogger(__name__)

RETENTION_INTERVAL_S = 300.0
KILL_AFTER_S = 10.0
MIN_SLEEP_S = 0.01


@dataclass
class _Active:
    """A run this scheduler started and has not yet seen end."""

    run_id: int
    schedule_id: int | None
    name: str
    handle: Any
    started: float
    kill_at: float | None = None


class Scheduler:
    """Run due jobs of the store's schedules; see the module docstring for the protocol.

    ``runner`` starts a run: ``runner.start(run)`` gets the ``schedule_runs`` row as a dict
    and returns a handle with ``poll()``, ``terminate()``, ``kill()`` and ``pid``. The
    default starts ``python -m tinysdlc_nb.schedules.job RUN_ID`` processes.
    """

    def __init__(self, config: Config, store: Store, *, runner=None,
                 scheduler_id: str | None = None):
        self.config = config
        self.store = store
        self.settings = config.scheduler
        self.runner = runner or ProcessRunner(store_url(store))
        self.scheduler_id = scheduler_id or f"{socket.gethostname()}:{os.getpid()}"
        self.reports_root = config.home.resolve() / "runs" / "schedules"
        self._active: dict[int, _Active] = {}
        self._waiting: set[tuple[int, dt.datetime]] = set()
        self._stop = threading.Event()
        self._stop_reason = ""
        self._next_lease_pass = 0.0
        self._next_retention = 0.0  # the first tick applies retention

    @property
    def active_runs(self) -> list[int]:
        return sorted(self._active)

    def tick(self, now: dt.datetime | None = None) -> list[int]:
        """Handle everything due at ``now`` once and return the ids of the runs started."""
        now = now or utc_now()
        self._reap()
        self._lease_pass()

        started: list[int] = []
        due = records.due_schedules(self.store, now) if not self._stop.is_set() else []
        if due:
            running: dict[int, list[dict[str, Any]]] = {}
            for run in records.running_runs(self.store):
                running.setdefault(run["schedule_id"], []).append(run)
            for schedule in due:
                try:
                    run_id = self._handle_fire(schedule, now, running.get(schedule["id"], []))
                except TinySDLCError as error:
                    # A cron or zone that no longer parses, e.g. after a tzdata update.
                    records.pause_broken(self.store, schedule["id"])
                    log.error("schedule %s paused: %s; fix it, then resume it",
                              schedule["name"], error)
                    continue
                if run_id is not None:
                    started.append(run_id)

        if time.monotonic() >= self._next_retention:
            self._next_retention = time.monotonic() + RETENTION_INTERVAL_S
            delete_old_reports(self.store, self.reports_root,
                               keep_days=self.settings["keep_days"],
                               keep_runs=self.settings["keep_runs"], now=utc_now())
        return started

    def stop(self, reason: str) -> None:
        """Stop starting runs; ``run_forever`` then finishes or releases the runs in progress."""
        if not self._stop.is_set():
            log.info("scheduler %s stopping: %s", self.scheduler_id, reason)
        self._stop_reason = reason
        self._stop.set()

    def run_forever(self) -> int:
        """Tick until ``stop`` or SIGTERM/SIGINT, then shut down cleanly; return 0."""
        restore = self._install_signal_handlers()
        service = self._start_channels()
        log.info("scheduler %s started (max_parallel %d, poll %gs)", self.scheduler_id,
                 self.settings["max_parallel"], self.settings["poll_interval_s"])
        try:
            while not self._stop.is_set():
                try:
                    self.tick()
                except (SQLAlchemyError, OSError) as error:
                    log.error("scheduler %s: tick failed, retrying after %gs: %s",
                              self.scheduler_id, self.settings["poll_interval_s"], error)
                self._stop.wait(self._sleep_seconds())
            self.shutdown()
        finally:
            if service is not None:
                service.stop()
            restore()
        log.info("scheduler %s stopped", self.scheduler_id)
        return 0

    def run_once(self) -> list[int]:
        """Handle what is due now, wait for those runs to end, and return their ids."""
        moment = utc_now()
        started = self.tick(moment)
        while not self._stop.is_set() and (self._active or
                                           records.due_schedules(self.store, moment)):
            self._stop.wait(min(0.2, self.settings["poll_interval_s"]))
            started += self.tick(moment)
        if self._stop.is_set():
            self.shutdown()
        return started

    def shutdown(self) -> None:
        """Wait up to stop_grace_s for the runs in progress, then stop and release them."""
        deadline = time.monotonic() + self.settings["stop_grace_s"]
        while self._active and time.monotonic() < deadline:
            self._reap()
            self._lease_pass()
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        self._reap()

        for active in list(self._active.values()):
            records.finish_run(self.store, active.run_id, "interrupted", exit_code=None,
                               message=f"released by scheduler {self.scheduler_id} on stop "
                                       f"({self._stop_reason}) after waiting "
                                       f"{self.settings['stop_grace_s']:g} s")
            log.warning("run %d of %s interrupted by the scheduler stop", active.run_id,
                        active.name)
            active.handle.terminate()
        kill_at = time.monotonic() + KILL_AFTER_S
        while self._active and time.monotonic() < kill_at:
            self._forget_ended()
            time.sleep(0.05)
        for active in list(self._active.values()):
            log.warning("run %d of %s ignored SIGTERM for %gs; killing it", active.run_id,
                        active.name, KILL_AFTER_S)
            active.handle.kill()
        while self._active and time.monotonic() < kill_at + 2:
            self._forget_ended()
            time.sleep(0.05)

    def _handle_fire(self, schedule: dict[str, Any], now: dt.datetime,
                     running: list[dict[str, Any]]) -> int | None:
        """Run, skip or miss the schedule's due fire; return the id of a run started.

        ``running`` contains the schedule's runs with status running, read once per tick.
        """
        cron = parse_cron(schedule["cron"], schedule["timezone"])
        due = schedule["next_run_at"]
        key = (schedule["id"], due)
        grace = dt.timedelta(seconds=self.settings["misfire_grace_s"])
        catching_up = now - due > grace and key not in self._waiting

        # Only the newest due fire runs, so fires that piled up never run in a burst. A fire
        # that waited for a free slot keeps its time and runs late.
        newest = due if key in self._waiting else max(due, cron.latest_at_or_before(now) or due)
        if now - newest > grace and key not in self._waiting \
                and schedule["catch_up"] == "none":
            self._record_missed(schedule, cron, due, newest, now, include_last=True,
                                following=cron.next_after(now))
            return None
        fire_at, following = newest, cron.next_after(newest)
        trigger = "catch-up" if catching_up and schedule["catch_up"] == "latest" \
            else "schedule"
        superseded = newest > due

        if self._busy(schedule, running):
            if superseded:
                self._record_missed(schedule, cron, due, newest, now, include_last=False)
            records.claim_fire(self.store, schedule, trigger=trigger, status="skipped",
                               scheduled_for=fire_at, now=now, scheduler=self.scheduler_id,
                               message="the previous run was still going",
                               following=following)
            log.info("schedule %s: fire at %s skipped, the previous run is still going",
                     schedule["name"], fire_at.isoformat())
            return None

        if len(self._active) >= self.settings["max_parallel"]:
            if not catching_up:
                self._waiting.add(key)  # started late when a slot frees, never dropped
            return None

        if superseded:
            self._record_missed(schedule, cron, due, newest, now, include_last=False)
        run = records.claim_fire(self.store, schedule, trigger=trigger, status="running",
                                 scheduled_for=fire_at, now=utc_now(),
                                 scheduler=self.scheduler_id, lease_s=self.settings["lease_s"],
                                 reports_root=self.reports_root, following=following)
        self._waiting.discard(key)
        if run is None:
            return None  # another scheduler claimed this fire
        self._start(schedule, run)
        return run["id"]

    def _start(self, schedule: dict[str, Any], run: dict[str, Any]) -> None:
        run_id = run["id"]
        try:
            handle = self.runner.start(run)
        except OSError as error:
            records.finish_run(self.store, run_id, "error", exit_code=None,
                               message=f"the job process could not start: {error}")
            log.error("run %d of %s could not start: %s", run_id, schedule["name"], error)
            return
        if getattr(handle, "pid", None) is not None:
            records.set_run_process(self.store, run_id, handle.pid)
        active = _Active(run_id, schedule["id"], schedule["name"], handle, time.monotonic())
        self._active[run_id] = active
        log.info("run %d of %s started (%s %s, fire %s)", run_id, schedule["name"],
                 schedule["kind"], schedule["target"], _iso(run["scheduled_for"]))
        exit_code = handle.poll()
        if exit_code is not None:  # an in-process runner may finish before returning
            del self._active[run_id]
            self._record_end(active, exit_code)

    def _record_missed(self, schedule, cron, first: dt.datetime, last: dt.datetime,
                       now: dt.datetime, *, include_last: bool,
                       following: dt.datetime | None = None) -> None:
        """Record one ``missed`` row for the fires from ``first`` to ``last``.

        With ``following``, the schedule moves on to that fire in the same transaction.
        """
        count, capped = cron.count_between(first, last)
        if not include_last:
            count -= 1
            last = cron.latest_at_or_before(last - dt.timedelta(microseconds=1)) or first
        if count <= 0:
            if following is not None:
                records.advance_schedule(self.store, schedule["id"], first, following)
            return
        if count == 1 and not capped:
            message = f"the fire at {first.isoformat()} was not run"
        else:
            amount = f"more than {count}" if capped else str(count)
            message = f"{amount} fires from {first.isoformat()} to {last.isoformat()} were not run"
        message += f" (catch-up {schedule['catch_up']})"
        records.claim_fire(self.store, schedule, trigger="schedule", status="missed",
                           scheduled_for=first, now=now, scheduler=self.scheduler_id,
                           message=message, following=following)
        log.warning("schedule %s: %s", schedule["name"], message)

    def _busy(self, schedule: dict[str, Any], running: list[dict[str, Any]]) -> bool:
        """Return True when a run of ``schedule`` is still going; release lapsed ones."""
        if any(active.schedule_id == schedule["id"] for active in self._active.values()):
            return True
        busy = False
        moment = utc_now()
        for run in running:
            if run["lease_expires_at"] is not None and run["lease_expires_at"] > moment:
                busy = True
            else:
                self._release_lapsed(run)
        return busy

    def _release_lapsed(self, run: dict[str, Any]) -> None:
        if records.finish_run(self.store, run["id"], "interrupted", exit_code=None,
                              message=f"scheduler {run['scheduler']} stopped renewing its "
                                      f"lease"):
            log.warning("run %d of %s interrupted: scheduler %s stopped renewing its lease",
                        run["id"], run["schedule_name"], run["scheduler"])

    def _lease_pass(self) -> None:
        """Renew this scheduler's leases and release lapsed ones, once per third of lease_s."""
        if time.monotonic() < self._next_lease_pass:
            return
        self._next_lease_pass = time.monotonic() + self.settings["lease_s"] / 3
        moment = utc_now()
        records.renew_leases(self.store, list(self._active),
                             moment + dt.timedelta(seconds=self.settings["lease_s"]))
        for run in records.lapsed_runs(self.store, moment):
            if run["id"] not in self._active:
                self._release_lapsed(run)

    def _reap(self) -> None:
        """Record runs that ended without recording themselves, and stop runs past the limit."""
        for active in list(self._active.values()):
            exit_code = active.handle.poll()
            if exit_code is None:
                self._enforce_timeout(active)
                continue
            del self._active[active.run_id]
            self._record_end(active, exit_code)

    def _enforce_timeout(self, active: _Active) -> None:
        limit = self.settings["job_timeout_s"]
        if active.kill_at is None and time.monotonic() - active.started > limit:
            records.finish_run(self.store, active.run_id, "error", exit_code=None,
                               message=f"the job timed out after {limit:g} s and was stopped")
            log.error("run %d of %s timed out after %gs; stopping it", active.run_id,
                      active.name, limit)
            active.handle.terminate()
            active.kill_at = time.monotonic() + KILL_AFTER_S
        elif active.kill_at is not None and time.monotonic() > active.kill_at:
            active.handle.kill()
            active.kill_at = float("inf")

    def _record_end(self, active: _Active, exit_code: int) -> None:
        if finish_unrecorded(self.store, active.run_id, exit_code):
            status = "passed" if exit_code == 0 else "error"
        else:
            status = (records.get_run(self.store, active.run_id) or {}).get("status")
        log.info("run %d of %s ended: %s (exit %s)", active.run_id, active.name, status,
                 exit_code)

    def _forget_ended(self) -> None:
        for active in list(self._active.values()):
            if active.handle.poll() is not None:
                del self._active[active.run_id]

    def _sleep_seconds(self) -> float:
        poll = self.settings["poll_interval_s"]
        if len(self._active) >= self.settings["max_parallel"]:
            return poll
        due = records.next_due_at(self.store)
        if due is None:
            return poll
        return min(poll, max(MIN_SLEEP_S, (due - utc_now()).total_seconds()))

    def _start_channels(self):
        if not self.settings["deliver_notifications"] or \
                not self.config.channels.get("configured"):
            return None
        try:
            from ..channels.service import ChannelService
        except ImportError as error:
            log.warning("channels are configured but their service is unavailable (%s); "
                        "notifications stay queued", error)
            return None
        service = ChannelService(self.store, self.config)
        service.start()
        log.info("channel delivery started with the scheduler")
        return service

    def _install_signal_handlers(self):
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {number: signal.getsignal(number)
                    for number in (signal.SIGTERM, signal.SIGINT)}

        def handle(number, _frame) -> None:
            self.stop(signal.Signals(number).name)

        for number in previous:
            signal.signal(number, handle)

        def restore() -> None:
            for number, handler in previous.items():
                signal.signal(number, handler)

        return restore


def _iso(value: dt.datetime | None) -> str:
    return value.isoformat() if value is not None else "run-now"

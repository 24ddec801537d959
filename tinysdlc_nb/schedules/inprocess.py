"""A runner that starts jobs inside the scheduler's process, for benchmarks and tests.

``Scheduler(config, store, runner=RecordingRunner())`` keeps the whole scheduling path
(claims, leases, overlap, limits, records). Only the job process is replaced, by a call
of ``job(run)`` that returns an exit code. A benchmark then measures the scheduler's own
lateness and CPU use without the cost of a papermill kernel.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..store import utc_now


@dataclass
class Start:
    """One run the runner started: its row id, its fire time and when it really started."""

    run_id: int
    schedule_name: str
    scheduled_for: dt.datetime | None
    started_at: dt.datetime

    @property
    def lateness_s(self) -> float | None:
        if self.scheduled_for is None:
            return None
        return (self.started_at - self.scheduled_for).total_seconds()


class FinishedHandle:
    """The handle of a job that ended before ``start`` returned."""

    def __init__(self, exit_code: int):
        self.exit_code = exit_code
        self.pid = None

    def poll(self) -> int:
        return self.exit_code

    def terminate(self) -> None:
        """Nothing to stop: the job has ended."""

    def kill(self) -> None:
        """Nothing to stop: the job has ended."""


@dataclass
class RecordingRunner:
    """Run ``job(run)`` (default: nothing, exit 0) at once and record every start."""

    job: Callable[[dict[str, Any]], int] | None = None
    starts: list[Start] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, run: dict[str, Any]) -> FinishedHandle:
        started = Start(run["id"], run["schedule_name"], run["scheduled_for"], utc_now())
        with self._lock:
            self.starts.append(started)
        return FinishedHandle(self.job(run) if self.job is not None else 0)

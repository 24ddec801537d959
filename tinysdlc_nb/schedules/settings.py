"""The ``[scheduler]`` section of config.toml: pace, parallel runs, leases and retention."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..settings import Section, Setting

SCHEDULER_SECTION = Section("scheduler", (
    Setting("poll_interval_s", float, 1.0, "Longest pause between two looks at the schedules; "
            "the scheduler wakes earlier when a job is due sooner.", unit="seconds",
            minimum=0.05),
    Setting("max_parallel", int, 2, "Runs one scheduler process keeps going at once; a due "
            "job waits for a free slot.", minimum=1),
    Setting("lease_s", float, 60.0, "How long a run stays claimed without renewal; a live "
            "scheduler renews it every third of this, so a crashed one's run is released "
            "after it.", unit="seconds", minimum=1),
    Setting("misfire_grace_s", float, 60.0, "A fire found this late or later counts as missed "
            "and follows the schedule's catch-up policy.", unit="seconds", minimum=1),
    Setting("stop_grace_s", float, 30.0, "On SIGTERM, how long runs in progress may finish "
            "before they are stopped and released.", unit="seconds", minimum=0),
    Setting("job_timeout_s", float, 3600.0, "Time limit of one scheduled run.",
            unit="seconds", minimum=1),
    Setting("keep_days", int, 30, "Reports of runs older than this are deleted (their "
            "records stay).", unit="days", minimum=1),
    Setting("keep_runs", int, 50, "Reports of each schedule's newest runs kept whatever "
            "their age.", minimum=1),
    Setting("deliver_notifications", bool, True, "Deliver queued notifications through the "
            "configured channels between runs."),
))


def validate_scheduler(values: dict[str, Any], where: str) -> dict[str, Any]:
    """Reject combinations the declarations alone cannot catch."""
    if values["poll_interval_s"] > values["lease_s"] / 3:
        raise ConfigError(f"{where}: scheduler.poll_interval_s = {values['poll_interval_s']:g} "
                          f"is above a third of scheduler.lease_s = {values['lease_s']:g}; "
                          f"leases would lapse between renewals, so lower poll_interval_s")
    return values

"""Running one scheduled job: the child process's work, and how a parent starts it.

The scheduler and ``schedule run-now`` start every run as ``python -m
tinysdlc_nb.schedules.job RUN_ID`` in a process group of its own. The child reads its
``schedule_runs`` row, runs the job through the same functions as the CLI and records the
status, exit code, files and a one-line message. A run the child could not finish (a
crash, a kill, a timeout) is recorded by the parent.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TinySDLCError
from ..scrub import scrub
from ..store import Store, utc_now
from . import records
from .model import notebook_parameters, notebook_source

log = logging.getLogger(__name__)

DATABASE_URL_ENV = "TINYSDLC_NB_DATABASE_URL"
USAGE_EXIT = 2
INTERRUPTED_EXIT = 130
LOG_NAME = "job.log"


@dataclass
class JobResult:
    """The end state of a job, as the child records it."""

    status: str
    exit_code: int
    message: str
    notebook_path: str | None = None
    html_path: str | None = None
    output_dir: str | None = None


def status_of_exit(exit_code: int) -> str:
    """Return the run status of a job's exit code: 0 passed, 2 error, any other failed."""
    if exit_code == 0:
        return "passed"
    return "error" if exit_code == USAGE_EXIT else "failed"


def execute_run(store: Store, run_id: int) -> int:
    """Run the job of ``run_id`` in this process, record its end, and return its exit code."""
    run = records.get_run(store, run_id)
    if run is None or run["status"] != records.RUNNING:
        log.error("schedule run %s is not a running run; nothing to do", run_id)
        return USAGE_EXIT
    log.info("schedule run %d started: %s %s", run_id, run["kind"], run["target"])

    previous = _sigterm_as_interrupt()
    try:
        result = _run_job(store, run)
    except KeyboardInterrupt:
        result = JobResult("interrupted", INTERRUPTED_EXIT, "the job was stopped by a signal "
                           "before it finished")
    except TinySDLCError as error:
        result = JobResult("error", USAGE_EXIT, f"the job could not start: {error}")
    except Exception as error:  # a crash of the job is recorded, never lost
        log.exception("schedule run %d crashed", run_id)
        result = JobResult("error", USAGE_EXIT, f"the job crashed: {type(error).__name__}: "
                           f"{error}")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)

    message = scrub(" ".join(result.message.split()))
    paths = {key: value for key, value in (("notebook_path", result.notebook_path),
                                           ("html_path", result.html_path),
                                           ("output_dir", result.output_dir)) if value}
    records.finish_run(store, run_id, result.status, exit_code=result.exit_code,
                       message=message, **paths)
    log.info("schedule run %d ended: %s (exit %d) %s", run_id, result.status,
             result.exit_code, message)
    return result.exit_code


def _run_job(store: Store, run: dict[str, Any]) -> JobResult:
    schedule = _schedule_of(store, run)
    output_dir = Path(run["output_dir"])
    output_dir.mkdir(parents=True, exist_ok=True)
    job = {"notebook": _run_notebook, "gate": _run_gate, "runbook": _run_runbook}
    return job[run["kind"]](run, schedule, output_dir)


def _schedule_of(store: Store, run: dict[str, Any]) -> dict[str, Any]:
    from sqlalchemy import select

    from ..store.schema import schedules

    with store.begin() as connection:
        row = connection.execute(select(schedules)
                                 .where(schedules.c.id == run["schedule_id"])).first()
    if row is None:
        raise TinySDLCError(f"schedule '{run['schedule_name']}' was removed before its run "
                            f"started")
    schedule = row._asdict()
    schedule["parameters"] = json.loads(schedule["parameters"])
    return schedule


def _run_notebook(run: dict[str, Any], schedule: dict[str, Any], output_dir: Path) -> JobResult:
    import nbformat

    from ..config import load_config
    from ..execute import declared_parameters, run_notebook
    from ..htmlreport import export_html

    config = load_config(Path(schedule["project"]))
    source = notebook_source(schedule["target"], schedule["project"])
    declared = declared_parameters(nbformat.read(source, as_version=4), str(source))
    parameters = notebook_parameters(schedule["parameters"], declared, schedule["project"],
                                     run["id"])
    notebook_path = output_dir / f"{source.stem}.ipynb"
    execution = run_notebook(source, parameters, cwd=Path(schedule["project"]),
                             cell_timeout_s=config.gate["cell_timeout_s"],
                             output_ipynb=notebook_path, failure_expected=True)
    html_path = export_html(execution.notebook, output_dir / f"{source.stem}.html",
                            f"{schedule['name']}: {source.stem}, run {run['id']}")

    if execution.completed:
        return JobResult("passed", 0, f"notebook {source.stem} ran to the end",
                         str(notebook_path), str(html_path))
    exit_code = 1 if execution.state == "cell_error" else 4
    return JobResult("failed", exit_code, f"notebook {source.stem} stopped: "
                     f"{execution.message}", str(notebook_path), str(html_path))


def _run_gate(run: dict[str, Any], schedule: dict[str, Any], output_dir: Path) -> JobResult:
    from ..gatecmd import run_gate_command

    values = schedule["parameters"]
    outcome = run_gate_command(schedule["target"], schedule["project"],
                               version=values.get("version"), tier=values.get("tier"),
                               environment=values.get("environment"), output=str(output_dir))
    verdict = outcome.summary.get("verdict", "?")
    return JobResult(status_of_exit(outcome.exit_code), outcome.exit_code,
                     f"{schedule['target'].upper()} {outcome.summary.get('version', '')}: "
                     f"{verdict}", str(outcome.notebook), str(outcome.html))


def _run_runbook(run: dict[str, Any], schedule: dict[str, Any], output_dir: Path) -> JobResult:
    import nbformat

    from ..htmlreport import export_html
    from ..runbooks.runner import run_runbook

    pairs = [f"{key}={value}" for key, value in schedule["parameters"].items()]
    outcome = run_runbook(schedule["target"], project=schedule["project"], parameters=pairs,
                          operator=schedule["created_by"] or None)
    html_path = None
    if outcome.notebook.is_file():
        html_path = export_html(nbformat.read(outcome.notebook, as_version=4),
                                output_dir / f"{outcome.runbook}.html",
                                f"{schedule['name']}: runbook {outcome.runbook}, "
                                f"run {outcome.run_id}")
    return JobResult(status_of_exit(outcome.exit_code), outcome.exit_code,
                     f"runbook {outcome.runbook} run {outcome.run_id}: "
                     f"{outcome.status.value}: {outcome.message}", str(outcome.notebook),
                     str(html_path) if html_path else None)


def _sigterm_as_interrupt():
    """Turn SIGTERM into KeyboardInterrupt, so the kernel is shut down and the run recorded."""
    def interrupt(_number, _frame) -> None:
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: the caller handles signals
        return None


class ProcessHandle:
    """A started job process; ``terminate`` and ``kill`` signal its whole process group.

    NOTE: jupyter_client starts each kernel in a session of its own, so the group signal
    does not reach it. After SIGTERM the job shuts its kernel down; after SIGKILL the
    kernel exits by itself once ipykernel's parent poller detects that the job process is gone.
    """

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.pid = process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, number: int) -> None:
        try:
            os.killpg(self.pid, number)
        except ProcessLookupError:
            pass  # the group is gone already


class ProcessRunner:
    """Start each run as a child process with the store URL in its environment."""

    def __init__(self, database_url: str):
        self.database_url = database_url

    def start(self, run: dict[str, Any]) -> ProcessHandle:
        output_dir = Path(run["output_dir"])
        output_dir.mkdir(parents=True, exist_ok=True)
        environment = {**os.environ, DATABASE_URL_ENV: self.database_url}
        with (output_dir / LOG_NAME).open("ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "tinysdlc_nb.schedules.job", str(run["id"])],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                env=environment, start_new_session=True)
        return ProcessHandle(process)


def store_url(store: Store) -> str:
    """Return the URL a child process opens the same store with, password included."""
    return store.engine.url.render_as_string(hide_password=False)


def finish_unrecorded(store: Store, run_id: int, exit_code: int) -> bool:
    """Record the end of a run whose job ended without recording it; False if it had.

    Exit code 0 comes from runners that run jobs in-process and record nothing, and counts
    as passed. Any other code means the job process crashed or was killed.
    """
    if exit_code == 0:
        return records.finish_run(store, run_id, "passed", exit_code=0,
                                  message="the job ended with exit code 0")
    if exit_code < 0:
        message = f"the job process was killed by signal {-exit_code} before it recorded a " \
                  f"result"
    else:
        message = f"the job process ended with exit code {exit_code} before it recorded a " \
                  f"result"
    changed = records.finish_run(store, run_id, "error", exit_code=exit_code, message=message)
    if changed:
        log.error("schedule run %d: %s", run_id, message)
    return changed


def run_in_foreground(store: Store, config, schedule: dict[str, Any]) -> dict[str, Any]:
    """Run ``schedule`` now through the job process, wait for it, and return its run row.

    When a run of the schedule is still going, a ``skipped`` row is recorded instead. The
    lease is renewed while the job runs, so a scheduler leaves the run alone; Ctrl-C or
    SIGTERM stops the job's process group and records the run as interrupted.
    """
    settings = config.scheduler
    now = utc_now()
    live = [run for run in records.running_runs(store, schedule["id"])
            if run["lease_expires_at"] is not None and run["lease_expires_at"] > now]
    if live:
        run_id = records.insert_run(store, schedule, trigger="run-now", status="skipped",
                                    scheduled_for=None, now=now, scheduler="run-now",
                                    message=f"run {live[0]['id']} was still going")
        return records.get_run(store, run_id)

    run_id = records.insert_run(store, schedule, trigger="run-now", status="running",
                                scheduled_for=None, now=now, scheduler="run-now",
                                lease_s=settings["lease_s"],
                                reports_root=config.home.resolve() / "runs" / "schedules")
    previous = _sigterm_as_interrupt()
    try:
        return _wait_in_foreground(store, settings, run_id)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _wait_in_foreground(store: Store, settings: dict[str, Any], run_id: int) -> dict[str, Any]:
    handle = ProcessRunner(store_url(store)).start(records.get_run(store, run_id))
    records.set_run_process(store, run_id, handle.pid)
    started = time.monotonic()
    renew_at = started + settings["lease_s"] / 3
    try:
        while (exit_code := handle.poll()) is None:
            if time.monotonic() - started > settings["job_timeout_s"]:
                records.finish_run(store, run_id, "error", exit_code=None,
                                   message=f"the job timed out after "
                                           f"{settings['job_timeout_s']:g} s and was stopped")
                _stop_group(handle)
                continue
            if time.monotonic() >= renew_at:
                renew_at = time.monotonic() + settings["lease_s"] / 3
                records.renew_leases(store, [run_id], utc_now() + dt.timedelta(
                    seconds=settings["lease_s"]))
            time.sleep(0.1)
    except KeyboardInterrupt:
        records.finish_run(store, run_id, "interrupted", exit_code=None,
                           message="run-now was interrupted, so the job was stopped")
        _stop_group(handle)
        raise
    finish_unrecorded(store, run_id, exit_code)
    return records.get_run(store, run_id)


def _stop_group(handle: ProcessHandle, grace_s: float = 10.0) -> None:
    handle.terminate()
    deadline = time.monotonic() + grace_s
    while handle.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if handle.poll() is None:
        handle.kill()
        handle.process.wait()

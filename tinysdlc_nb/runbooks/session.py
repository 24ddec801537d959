"""The runbook run inside a notebook kernel: prerequisites, steps, rollback and the result.

A compiled runbook notebook calls ``open_session`` once and then runs each step through
the ``%%step``, ``%%verify`` and ``%%rollback`` cell magics this module registers. Every
step goes through ``RunbookSession.run_step``, which applies the run's state: after a
failed step the later steps are skipped and the rollback runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..config import load_config
from ..scrub import protect
from ..store import Store, open_store, utc_now
from . import records
from .checks import evaluate_prerequisite
from .model import RUN_EXIT, Phase, RunStatus, StepStatus
from .params import complete_values, environment_values
from .records import StepRecord
from .rundir import run_folder, step_log_path
from .shell import run_command
from .spec import RunbookSpec, default_operator

log = logging.getLogger(__name__)


class StepFailed(Exception):
    """A step exited non-zero, timed out or missed its expectation."""

    def _render_traceback_(self) -> list[str]:
        return [f"StepFailed: {self}"]


class PrerequisitesNotMet(StepFailed):
    """A prerequisite check failed, so no step runs."""


class RunbookFailed(StepFailed):
    """The run ended in any status but passed."""


def open_session(definition: dict[str, Any], values: dict[str, Any], *, run_id: int = 0,
                 mode: str = "run", no_rollback: bool = False,
                 project_dir: str = ".") -> RunbookSession:
    """Start (or join, when ``run_id`` is set) the run of a compiled runbook."""
    spec = RunbookSpec.from_definition(definition)
    config = load_config(Path(project_dir))
    if mode not in ("run", "rehearse"):
        raise ValueError(f"runbook_mode {mode!r} is invalid; expected 'run' or 'rehearse'")

    values = complete_values(spec.runbook, values)
    secrets = spec.secrets()
    for value in secrets.values():
        protect(value)

    store = open_store(config.database_url, migrate=not run_id)
    interactive = not run_id
    if interactive:
        run_id = records.create_run(store, spec.run_start(config, values, mode, no_rollback,
                                                          operator=default_operator()))
    session = RunbookSession(spec, config.project_dir.resolve(), store, run_id, mode,
                             no_rollback, environment_values(spec.runbook, values, secrets),
                             interactive=interactive,
                             run_dir=run_folder(config.home, run_id, spec.name))
    session.values = values
    session.config = config
    _register_magics(session)
    _stop_on_sigterm(session)
    print(f"Runbook {spec.name}, run {run_id} ({mode}); logs in {session.run_dir / 'logs'}")
    return session


class RunbookSession:
    """The state of one run as its cells execute."""

    def __init__(self, spec: RunbookSpec, project_dir: Path, store: Store, run_id: int,
                 mode: str, no_rollback: bool, parameter_env: dict[str, str], *,
                 interactive: bool, run_dir: Path):
        self.spec = spec
        self.project_dir = project_dir
        self.store = store
        self.run_id = run_id
        self.mode = mode
        self.no_rollback = no_rollback
        self.interactive = interactive
        self.run_dir = run_dir
        self.env = self._step_environment(parameter_env)
        self.values: dict[str, Any] = {}
        self.config = None
        self.blocked = False
        self.failed: str | None = None
        self.rollback_started: float | None = None
        self.rollback_failed: str | None = None
        self.healthy_at: float | None = None
        self.done: dict[str, int] = {}
        self.stopped = False  # set by SIGTERM: nothing more runs, not even the rollback
        self.step_group: int | None = None
        self.recorded: set[tuple[str, int]] = set()

    @property
    def rolling_back(self) -> bool:
        return not self.blocked and (self.failed is not None or self.mode == "rehearse")

    def check_prerequisites(self, items: list[tuple[str, str]]) -> None:
        """Verify each checkable prerequisite and list the ones a person must confirm."""
        unmet = []
        for text, check in items:
            if not check:
                print(f"  [manual] {text} (confirm by hand; not checked)")
                continue
            ok, detail = evaluate_prerequisite(check, self)
            print(f"  [{'met' if ok else 'NOT MET'}] {text} ({check}: {detail})")
            if not ok:
                unmet.append(f"{check} ({detail})")
        if unmet:
            self.blocked = True
            self.failed = "prerequisite not met: " + "; ".join(unmet)
            raise PrerequisitesNotMet(self.failed)

    def run_step(self, phase: Phase, number: int, title: str, command: str, *,
                 timeout_s: float, expect_exit: int = 0, expect: tuple[str, ...] = ()) -> None:
        """Run one step, or record why it is skipped, and raise StepFailed when it fails.

        Any other error while running or recording the step fails it too, so the later
        steps are skipped and the rollback runs as after a failing command.
        """
        try:
            self._run_step(phase, number, title, command, timeout_s=timeout_s,
                           expect_exit=expect_exit, expect=expect)
        except StepFailed:
            raise
        except Exception as error:
            failure = f"{_label(phase, number)} ({title}) could not run: " \
                      f"{type(error).__name__}: {error}"
            log.error("runbook run %d: %s", self.run_id, failure)
            if (phase.value, number) not in self.recorded:
                self._record_crash(phase, number, title, failure)
            if phase in (Phase.ROLLBACK, Phase.VERIFY_AFTER_ROLLBACK):
                self.rollback_failed = self.rollback_failed or failure
            else:
                self.failed = self.failed or failure
            raise StepFailed(failure) from error

    def _record_crash(self, phase: Phase, number: int, title: str, failure: str) -> None:
        """Record a step that could not run; a store that fails here leaves it unrecorded."""
        try:
            self._record(StepRecord(phase.value, number, title, StepStatus.FAILED, None,
                                    utc_now(), 0.0, message=failure))
        except Exception as error:  # the store itself may be what failed
            log.error("runbook run %d: cannot record %s %d: %s", self.run_id, phase.value,
                      number, error)

    def _run_step(self, phase: Phase, number: int, title: str, command: str, *,
                  timeout_s: float, expect_exit: int, expect: tuple[str, ...]) -> None:
        key = (phase.value, number)
        if key in self.recorded:
            raise RuntimeError(f"{phase.value} {number} already ran in run {self.run_id}; "
                               f"restart the kernel and run all cells for a new run")
        skip = self._skip_reason(phase)
        if skip is not None:
            status, reason = skip
            self._record(StepRecord(phase.value, number, title, status, None, utc_now(), 0.0,
                                    message=reason))
            print(f"{_label(phase, number)}: {title} — {status.value}: {reason}")
            return

        if phase is Phase.ROLLBACK and self.rollback_started is None:
            self.rollback_started = time.monotonic()
        started_at = utc_now()
        log_path = step_log_path(self.run_dir, phase.value, number)
        try:
            result = run_command(command, env=self.env, cwd=self.project_dir,
                                 timeout_s=timeout_s, log_path=log_path, watch=expect,
                                 on_start=self._started)
        finally:
            self.step_group = None
        status, message = _judge(result, expect_exit, expect, timeout_s)
        if self.stopped:
            status, message = StepStatus.FAILED, "stopped: the kernel received SIGTERM"

        self._record(StepRecord(phase.value, number, title, status, result.exit_code,
                                started_at, result.duration_s, result.output_bytes,
                                result.tail, str(log_path), message))
        self._show(phase, number, title, status, result, message)
        if status is StepStatus.PASSED:
            if phase in (Phase.VERIFY_AFTER_ROLLBACK, Phase.ROLLBACK):
                self.healthy_at = time.monotonic()
            return

        failure = f"{_label(phase, number)} ({title}) {message}"
        if self.stopped:
            self.failed = self.failed or failure
            raise StepFailed(failure)
        if phase in (Phase.ROLLBACK, Phase.VERIFY_AFTER_ROLLBACK):
            self.rollback_failed = failure
        else:
            self.failed = failure
        raise StepFailed(failure)

    def finish(self) -> RunStatus:
        """Decide the run's status, record it and raise RunbookFailed unless it passed."""
        status, message, healthy_s = self._outcome()
        records.finish_run(self.store, self.run_id, status, RUN_EXIT[status], message,
                           rollback_healthy_s=healthy_s)
        print(f"Run {self.run_id}: {status.value} (exit {RUN_EXIT[status]}). {message}")
        if self.interactive:
            print("Evidence for the G4 gate is recorded by `tinysdlc-nb runbook run`, which "
                  "keeps the executed notebook; this run only adds to the history.")
        self.store.close()
        if status is not RunStatus.PASSED:
            raise RunbookFailed(f"{status.value}: {message}")
        return status

    def _outcome(self) -> tuple[RunStatus, str, float | None]:
        healthy_s = None
        if self.rollback_started is not None and self.healthy_at is not None \
                and not self.rollback_failed:
            healthy_s = round(self.healthy_at - self.rollback_started, 3)

        if self.blocked:
            return RunStatus.BLOCKED, self.failed or "", None
        if self.stopped:
            where = self.failed or "between steps"
            return RunStatus.ERROR, (f"the run was stopped by SIGTERM ({where}); the rollback "
                                     f"did not run, so check the service by hand"), None
        if self.rollback_failed:
            return RunStatus.ROLLBACK_FAILED, (f"{self.failed}; then the rollback failed: "
                                               f"{self.rollback_failed}" if self.failed
                                               else f"the rollback failed: "
                                                    f"{self.rollback_failed}"), None
        missing = self._missing_steps()
        if missing:
            return RunStatus.ERROR, f"{missing} never ran; run every cell in order", healthy_s
        if self.failed:
            if healthy_s is not None:
                rolled = f"the rollback brought the service back in {healthy_s:g} s"
            elif self.no_rollback:
                rolled = "no rollback ran (--no-rollback)"
            else:
                rolled = "the runbook has no rollback steps, so none ran"
            return RunStatus.FAILED, f"{self.failed}; {rolled}", healthy_s
        if self.mode == "rehearse":
            target = self.spec.rollback_target_s
            if healthy_s is None:
                return RunStatus.ERROR, "the rehearsal ran no rollback", None
            if target is None:
                return RunStatus.ERROR, ("the rehearsal has no rollback_target_s to compare "
                                         f"its {healthy_s:g} s with"), healthy_s
            if healthy_s > target:
                return RunStatus.SLOW_ROLLBACK, (f"the rollback took {healthy_s:g} s to a "
                                                 f"healthy check, over the {target:g} s "
                                                 f"target"), healthy_s
            return RunStatus.PASSED, (f"rehearsal passed: rollback to a healthy check in "
                                      f"{healthy_s:g} s (target {target:g} s)"), healthy_s
        return RunStatus.PASSED, "every step passed", None

    def _missing_steps(self) -> str:
        for phase, count in self.spec.counts.items():
            if phase == "rollback" and not self.rolling_back:
                continue
            ran = self.done.get(phase, 0)
            if ran < count:
                return f"{count - ran} of the {count} {phase} cells"
        return ""

    def _started(self, pid: int) -> None:
        self.step_group = pid

        # A SIGTERM that came after bash started but before its group was known found no
        # group to stop, so the group is stopped here instead.
        if self.stopped:
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def _skip_reason(self, phase: Phase) -> tuple[StepStatus, str] | None:
        if self.stopped:
            return StepStatus.SKIPPED, "the run was stopped (SIGTERM)"
        if self.blocked:
            return StepStatus.SKIPPED, "a prerequisite was not met"
        if phase in (Phase.STEP, Phase.VERIFY):
            return (StepStatus.SKIPPED, f"an earlier step failed: {self.failed}") \
                if self.failed else None
        if not self.rolling_back:
            return StepStatus.NOT_NEEDED, "every step passed, so nothing is rolled back"
        if self.rollback_failed:
            return StepStatus.SKIPPED, f"the rollback failed: {self.rollback_failed}"
        if phase is Phase.VERIFY_AFTER_ROLLBACK and self.rollback_started is None:
            return StepStatus.SKIPPED, "no rollback step ran"
        return None

    def _record(self, step: StepRecord) -> None:
        records.record_step(self.store, self.run_id, step)
        self.recorded.add((step.phase, step.number))
        counted = "verify" if step.phase == Phase.VERIFY.value else step.phase
        if step.phase != Phase.VERIFY_AFTER_ROLLBACK.value:
            self.done[counted] = self.done.get(counted, 0) + 1

    def _step_environment(self, parameter_env: dict[str, str]) -> dict[str, str]:
        environment = dict(os.environ)
        interpreter_dir = str(Path(sys.executable).parent)
        environment["PATH"] = os.pathsep.join([interpreter_dir, environment.get("PATH", "")])
        environment.update(parameter_env)
        environment.update(RUNBOOK_DIR=self.spec.folder, RUNBOOK_NAME=self.spec.name,
                           RUNBOOK_RUN_ID=str(self.run_id),
                           RUNBOOK_LOG_DIR=str(self.run_dir / "logs"))
        return environment

    def _show(self, phase: Phase, number: int, title: str, status: StepStatus, result,
              message: str) -> None:
        exit_text = "killed" if result.exit_code is None else f"exit {result.exit_code}"
        print(f"{_label(phase, number)}: {title} — {status.value} in {result.duration_s:.2f} s "
              f"({exit_text}, {result.output_bytes} bytes of output)")
        if message:
            print(f"  {message}")
        if result.note:
            print(f"  note: {result.note}")
        if result.tail:
            print("-" * 60)
            print(result.tail.rstrip("\n"))
        print(f"(full output: {result.log_path})")


def _judge(result, expect_exit: int, expect: tuple[str, ...],
           timeout_s: float) -> tuple[StepStatus, str]:
    if result.timed_out:
        return StepStatus.TIMED_OUT, f"timed out after {timeout_s:g} s and was killed"
    if result.exit_code != expect_exit:
        return StepStatus.FAILED, f"exited {result.exit_code}, expected {expect_exit}"
    missing = [text for text in expect if text not in result.found]
    if missing:
        return StepStatus.FAILED, f"output does not contain {missing[0]!r}"
    return StepStatus.PASSED, ""


def _label(phase: Phase, number: int) -> str:
    names = {Phase.STEP: "Step", Phase.VERIFY: "Verification",
             Phase.ROLLBACK: "Rollback step",
             Phase.VERIFY_AFTER_ROLLBACK: "Verification after rollback"}
    return f"{names[phase]} {number}"


def _stop_on_sigterm(session: RunbookSession) -> None:
    """Make SIGTERM stop the run: kill the step in progress and skip every later cell.

    jupyter_client ends a kernel that does not shut down in time with SIGTERM, then
    SIGKILL. The default action would end the kernel at once and leave the step running
    in its own process group. The handler only sets a flag and signals that group, since
    raising in the kernel's event loop between cells would crash it.
    """
    if threading.current_thread() is not threading.main_thread():
        return

    def stop(_number, _frame) -> None:
        session.stopped = True
        if session.step_group is not None:
            try:
                os.killpg(session.step_group, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)


def _register_magics(session: RunbookSession) -> None:
    """Register %%step, %%verify and %%rollback on the running IPython shell, if any."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def make(phase: Phase):
        def magic(line: str, cell: str) -> None:
            arguments = _magic_parser(phase).parse_args(shlex.split(line))
            actual = Phase.VERIFY_AFTER_ROLLBACK if getattr(arguments, "after_rollback", False) \
                else phase
            session.run_step(actual, arguments.number, arguments.title, cell,
                             timeout_s=arguments.timeout, expect_exit=arguments.expect_exit,
                             expect=tuple(arguments.expect))
        return magic

    from IPython.core.magic import no_var_expand

    for phase, name in ((Phase.STEP, "step"), (Phase.VERIFY, "verify"),
                        (Phase.ROLLBACK, "rollback")):
        # IPython would otherwise fill in {expressions} and $names on the magic line.
        shell.register_magic_function(no_var_expand(make(phase)), magic_kind="cell",
                                      magic_name=name)


def _magic_parser(phase: Phase) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"%%{phase.value}", add_help=False, exit_on_error=False)
    parser.add_argument("number", type=int)
    parser.add_argument("--title", default="")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--expect-exit", type=int, default=0)
    parser.add_argument("--expect", action="append", default=[])
    if phase is Phase.VERIFY:
        parser.add_argument("--after-rollback", action="store_true")
    return parser


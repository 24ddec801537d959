"""``tinysdlc-nb runbook run``: check the input, execute the compiled notebook, record evidence.

Everything a user can get wrong (an unknown runbook, a lint error, a parameter of the
wrong type, a missing secret, a missing rollback) is rejected before any kernel starts
and before anything is stored.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..approvals import check_person
from ..config import Config, load_config
from ..errors import UsageError
from ..execute import run_notebook
from ..scrub import protect
from ..store import open_store
from . import records
from .compile import cell_timeout_s, write_notebook
from .document import load_runbook, runbook_sha256
from .evidence import record_run_evidence
from .lint import NO_ROLLBACK
from .model import RUN_EXIT, Runbook, RunStatus
from .params import parse_cli_parameters, read_secrets
from .rundir import run_folder
from .spec import default_operator, describe_run

log = logging.getLogger(__name__)

RUNBOOKS_FOLDER = "runbooks"


@dataclass
class RunOutcome:
    """The end state of a run, with its notebook and the evidence it recorded."""

    run_id: int
    runbook: str
    status: RunStatus
    exit_code: int
    message: str
    notebook: Path
    run: dict[str, Any]
    evidence: list[dict[str, Any]] = field(default_factory=list)


def find_runbook(reference: str, project_dir: Path) -> Path:
    """Return the runbook file ``reference`` names: a path, else a name under runbooks/."""
    path = Path(reference)
    if path.suffix == ".md" or os.sep in reference or path.is_file():
        if path.is_file():
            return path
        raise UsageError(f"runbook file '{reference}' not found")

    candidates = [project_dir / RUNBOOKS_FOLDER / f"{reference}.md",
                  shipped_runbooks_dir() / f"{reference}.md"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    known = sorted({p.stem for folder in (project_dir / RUNBOOKS_FOLDER, shipped_runbooks_dir())
                    if folder.is_dir() for p in folder.glob("*.md") if p.stem != "README"})
    raise UsageError(f"runbook '{reference}' not found in {project_dir / RUNBOOKS_FOLDER} or "
                     f"the shipped runbooks; known runbooks: {', '.join(known) or 'none'}")


def shipped_runbooks_dir() -> Path:
    return Path(str(resources.files("tinysdlc_nb") / "runbooks" / "library"))


def run_runbook(reference: str, *, project: str = ".", parameters: list[str] | None = None,
                rehearse: bool = False, no_rollback: bool = False,
                operator: str | None = None, progress: bool = False) -> RunOutcome:
    """Run a runbook end to end and return how it ended."""
    config = load_config(Path(project))
    path = find_runbook(reference, config.project_dir)
    runbook = load_runbook(path, accept=frozenset({NO_ROLLBACK}))
    _check_rollback_options(runbook, rehearse, no_rollback)
    values = parse_cli_parameters(runbook, parameters or [])
    for value in read_secrets(runbook).values():
        protect(value)
    operator = check_person(operator or default_operator(), config.agent_ids())

    store = open_store(config.database_url)
    try:
        mode = "rehearse" if rehearse else "run"
        start = describe_run(runbook, runbook_sha256(runbook), config, values, mode,
                             no_rollback, operator)
        run_id = records.create_run(store, start)
        run_dir = run_folder(config.home, run_id, runbook.name)
        notebook = run_dir / f"{runbook.name}.ipynb"
        log.info("runbook %s run %d started (%s)", runbook.name, run_id, mode)

        ending = _execute(runbook, run_id, mode, no_rollback, values, config, notebook, progress,
                          store)
        records.set_run_files(store, run_id, str(run_dir),
                              str(notebook) if notebook.is_file() else None)
        run = records.get_run(store, run_id)
        if run["status"] == RunStatus.RUNNING.value:
            records.finish_run(store, run_id, RunStatus.ERROR, RUN_EXIT[RunStatus.ERROR],
                               f"{ending}; the rollback may not have run, so check the "
                               f"service by hand")
            run = records.get_run(store, run_id)

        status = RunStatus(run["status"])
        run["steps"] = records.steps_of(store, run_id)
        evidence = record_run_evidence(store, config, runbook, run, notebook, operator)
        log.info("runbook %s run %d ended: %s", runbook.name, run_id, status)
        return RunOutcome(run_id, runbook.name, status, RUN_EXIT[status], run["message"],
                          notebook, run, evidence)
    finally:
        store.close()


def _execute(runbook: Runbook, run_id: int, mode: str, no_rollback: bool,
             values: dict[str, Any], config: Config, notebook: Path, progress: bool,
             store) -> str:
    """Run the compiled notebook and return how it ended, in words, for an unfinished run.

    An interrupt (Ctrl-C, SIGTERM) ends the run here rather than the command, so the run is
    recorded and reported like any other. Any other error finishes the run as an error
    before it is raised.
    """
    # The compiled notebook is not redacted, because its commands must run as written. It
    # lives only in a private temporary folder, and the run keeps the redacted execution.
    with tempfile.TemporaryDirectory(prefix="tinysdlc-runbook-") as scratch, \
            _sigterm_as_interrupt():
        source = write_notebook(runbook, Path(scratch) / f"{runbook.name}.ipynb")
        try:
            execution = run_notebook(source, _notebook_parameters(values, run_id, mode,
                                                                  no_rollback, config),
                                     cwd=config.project_dir,
                                     cell_timeout_s=cell_timeout_s(runbook),
                                     progress=progress, output_ipynb=notebook,
                                     failure_expected=True)
        except KeyboardInterrupt:
            log.error("runbook %s run %d interrupted", runbook.name, run_id)
            return "the run was interrupted, and the step in progress may still be running"
        except BaseException as error:
            records.finish_run(store, run_id, RunStatus.ERROR, RUN_EXIT[RunStatus.ERROR],
                               f"the notebook could not run ({error})")
            raise
    return f"the notebook stopped before the run finished ({execution.message})"


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt, so a stopped run is recorded before it ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_number, _frame) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_rollback_options(runbook, rehearse: bool, no_rollback: bool) -> None:
    if rehearse and no_rollback:
        raise UsageError("--rehearse-rollback and --no-rollback contradict each other; pass "
                         "one of them")
    if rehearse and not runbook.has_rollback:
        raise UsageError(f"runbook '{runbook.name}' has no rollback to rehearse; add a "
                         f"'## Rollback' section")
    if rehearse and not runbook.verification:
        raise UsageError(f"runbook '{runbook.name}' has no '## Verification' section; a "
                         f"rehearsal checks health with it after the steps and after the "
                         f"rollback")
    if rehearse and runbook.rollback_target_s is None:
        raise UsageError(f"runbook '{runbook.name}' has no rollback_target_s; a rehearsal "
                         f"passes only within that time, so add it to the front matter")
    if no_rollback and runbook.has_rollback:
        raise UsageError(f"--no-rollback is for runbooks without a rollback, and "
                         f"'{runbook.name}' has one; run it without --no-rollback")
    if not runbook.has_rollback and not runbook.read_only and not no_rollback:
        raise UsageError(f"runbook '{runbook.name}' has no rollback section; add one, or pass "
                         f"--no-rollback to run it anyway (the run records that you did)")


def _notebook_parameters(values: dict[str, Any], run_id: int, mode: str, no_rollback: bool,
                         config: Config) -> dict[str, Any]:
    return {**values, "runbook_run_id": run_id, "runbook_mode": mode,
            "runbook_no_rollback": no_rollback,
            "runbook_project_dir": str(config.project_dir.resolve())}

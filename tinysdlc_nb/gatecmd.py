"""The ``tinysdlc-nb gate`` command: validate, execute the gate notebook, write every report."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from sqlalchemy import insert, select, update

from .config import Config, load_config
from .errors import UsageError
from .execute import packaged_notebook, run_notebook, validate_parameters
from .gates import junit, summary
from .gates.display import GATE_TITLES
from .gates.model import Tier
from .gates.policy import Verdict
from .gates.run import default_output_dir, new_run_id
from .htmlreport import export_html
from .project import resolve_version
from .scrub import scrub
from .store import open_store, utc_now
from .store.schema import gate_runs

log = logging.getLogger(__name__)

NOTEBOOKS = {"g3": "g3_ship_ready", "g4": "g4_production_ready"}


@dataclass
class GateOutcome:
    """The outcome of a finished ``gate`` command: its summary and the paths of its files."""

    summary: dict[str, Any]
    output_dir: Path
    notebook: Path
    html: Path

    @property
    def exit_code(self) -> int:
        return int(self.summary["exit_code"])

    @property
    def files(self) -> dict[str, str]:
        names = {"notebook": self.notebook, "html": self.html,
                 "sarif": self.output_dir / "results.sarif",
                 "junit": self.output_dir / junit.JUNIT_NAME,
                 "summary": self.output_dir / summary.SUMMARY_NAME}
        return {key: str(path) for key, path in names.items() if path.exists()}


def run_gate_command(gate: str, project: str, *, version: str | None = None,
                     tier: str | None = None, environment: str | None = None,
                     output: str | None = None, junit_file: str | None = None,
                     coverage_file: str | None = None, cell_timeout_s: float | None = None,
                     progress: bool = False,
                     on_start: Callable[[Config, str], None] | None = None) -> GateOutcome:
    """Run one gate as the CLI does and return its outcome; invalid input raises UsageError."""
    gate = gate.lower()
    if gate not in NOTEBOOKS:
        raise UsageError(f"gate '{gate}' is invalid; expected g3 or g4")
    config = load_config(Path(project))
    if tier is not None and tier not in {value.value for value in Tier}:
        raise UsageError(f"tier '{tier}' is invalid; expected one of "
                         f"{', '.join(value.value for value in Tier)}")
    _check_ingest_files(junit_file, coverage_file)
    if cell_timeout_s is not None and cell_timeout_s <= 0:
        raise UsageError(f"--cell-timeout {cell_timeout_s:g} is invalid; pass a number of "
                         f"seconds above 0")

    version = resolve_version(config.project_dir, version)
    run_id = new_run_id()
    output_dir = Path(output).resolve() if output else default_output_dir(config, gate, version,
                                                                          run_id)
    if output_dir.exists() and not output_dir.is_dir():
        raise UsageError(f"--output '{output}' is a file; pass a folder for the reports")
    source = packaged_notebook(NOTEBOOKS[gate])
    parameters = {"project": str(config.project_dir.resolve()), "version": version,
                  "tier": tier or "", "environment": environment or "", "run_id": run_id,
                  "output_dir": str(output_dir), "interactive": False,
                  "junit": str(Path(junit_file).resolve()) if junit_file else "",
                  "coverage": str(Path(coverage_file).resolve()) if coverage_file else ""}
    validate_parameters(nbformat.read(source, as_version=4), str(source), parameters)

    output_dir.mkdir(parents=True, exist_ok=True)
    if on_start is not None:
        on_start(config, version)
    notebook_path = output_dir / f"{gate}-{version}.ipynb"
    execution = run_notebook(source, parameters, cwd=config.project_dir.resolve(),
                             cell_timeout_s=cell_timeout_s or config.gate["cell_timeout_s"],
                             progress=progress, output_ipynb=notebook_path)

    result = summary.read(output_dir)
    if not execution.completed or result is None:
        result = _record_incomplete(config, gate, version, tier, environment, run_id, output_dir,
                                    result, execution.message or "the notebook wrote no summary")

    html_path = export_html(execution.notebook, output_dir / f"{gate}-{version}.html",
                            f"{GATE_TITLES[gate]}: {config.name} {version}")
    return GateOutcome(result, output_dir, notebook_path, html_path)


def _record_incomplete(config: Config, gate: str, version: str, tier: str | None,
                       environment: str | None, run_id: str, output_dir: Path,
                       partial: dict[str, Any] | None, reason: str) -> dict[str, Any]:
    """Write summary and JUnit for a run whose notebook did not finish, and mark it in the store.

    Items the notebook had already judged are kept. The run's verdict is INCOMPLETE whatever
    their statuses, because the gate never reached its end.
    """
    reason = scrub(reason)
    log.error("gate %s %s: run incomplete: %s", gate, version, reason)
    result = dict(partial or {})
    result.update(gate=gate, project=config.name, version=version,
                  tier=tier or str(config.tier),
                  environment=environment or config.project["environment"], run_id=run_id,
                  verdict=str(Verdict.INCOMPLETE), exit_code=Verdict.INCOMPLETE.exit_code,
                  execution={"state": "incomplete", "reason": reason})
    items = [entry for entry in result.get("items", []) if entry["item"] != "execution"]
    items.append({"item": "execution", "kind": "run", "label": "Gate notebook ran to the end",
                  "required": True, "status": "ERROR", "summary": reason})
    result["items"] = items
    result.setdefault("finished_at", utc_now().isoformat())

    (output_dir / summary.SUMMARY_NAME).write_text(
        json.dumps(result, indent=2) + "\n", encoding="utf-8")
    junit.write_items(output_dir / junit.JUNIT_NAME, f"{gate}.{config.name}", items)
    _mark_run_incomplete(config, gate, version, result, run_id, output_dir)
    return result


def _mark_run_incomplete(config, gate, version, result, run_id, output_dir) -> None:
    store = open_store(config.database_url)
    try:
        with store.begin() as connection:
            exists = connection.execute(select(gate_runs.c.run_id)
                                        .where(gate_runs.c.run_id == run_id)).first()
            values = {"status": "incomplete", "verdict": str(Verdict.INCOMPLETE),
                      "exit_code": Verdict.INCOMPLETE.exit_code, "finished_at": utc_now()}
            if exists:
                connection.execute(update(gate_runs).where(gate_runs.c.run_id == run_id)
                                   .values(**values))
            else:
                connection.execute(insert(gate_runs).values(
                    run_id=run_id, project=config.name, gate=gate, version=version,
                    tier=result["tier"], environment=result["environment"],
                    started_at=utc_now(), output_dir=str(output_dir), **values))
    finally:
        store.close()


def _check_ingest_files(junit_file: str | None, coverage_file: str | None) -> None:
    """Reject --junit/--coverage files that are missing, folders, or given one without the other.

    The tests item needs both the results and the coverage to judge a release, so ingesting
    only one of them would end in an ERROR after the whole gate ran.
    """
    for flag, value in (("--junit", junit_file), ("--coverage", coverage_file)):
        if not value:
            continue
        path = Path(value)
        if path.is_dir():
            raise UsageError(f"{flag} '{value}' is a folder; pass the report file itself")
        if not path.is_file():
            raise UsageError(f"{flag} file '{value}' not found; pass an existing file")
    if bool(junit_file) != bool(coverage_file):
        present, missing = ("--junit", "--coverage") if junit_file else ("--coverage", "--junit")
        raise UsageError(f"{present} needs {missing} too: the tests item judges the results "
                         f"and the coverage together; pass both files, or neither to run the "
                         f"tests")


def progress_wanted() -> bool:
    return sys.stderr.isatty()

"""Turn a parsed runbook into a parameterized notebook with one cell per step.

The notebook contains the commands as written in the runbook, as ``%%step`` / ``%%verify``
/ ``%%rollback`` cells, so a reader in JupyterLab reads exactly what runs. Parameter
values are never written into a command: the step runner passes them as ``$NAME``.
"""

from __future__ import annotations

import pprint
import shlex
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from .. import __version__
from .document import runbook_sha256
from .model import Parameter, Phase, Runbook, Step

# Control parameters the CLI sets for each run. Lint rejects runbook parameter names that
# start with "runbook_", so the two cannot collide.
CONTROL_PARAMETERS = {
    "runbook_run_id": (0, "set by `tinysdlc-nb runbook run`; 0 starts a new run here"),
    "runbook_mode": ("run", '"run", or "rehearse" to roll back after the steps pass'),
    "runbook_no_rollback": (False, "True when the run was allowed without a rollback"),
    "runbook_project_dir": (".", "project folder whose store records the run"),
}
STEP_TAGS = ["runbook-step", "raises-exception"]
MAGICS = {Phase.STEP: "step", Phase.VERIFY: "verify", Phase.ROLLBACK: "rollback",
          Phase.VERIFY_AFTER_ROLLBACK: "verify"}


def compile_runbook(runbook: Runbook, project_dir: str = ".") -> nbformat.NotebookNode:
    """Return the notebook of ``runbook``; the runbook must be lint-clean.

    ``project_dir`` is the default of ``runbook_project_dir``, the project whose store
    records the runs. ``write_notebook`` makes it absolute, because JupyterLab starts a
    kernel in the notebook's folder and papermill in the caller's.
    """
    cells = [new_markdown_cell(_intro(runbook)), _parameters_cell(runbook, project_dir),
             new_code_cell(_definition_source(runbook)), new_code_cell(_session_source(runbook))]

    if runbook.prerequisites:
        cells.append(new_markdown_cell("## Prerequisites"))
        cells.append(new_code_cell(_prerequisites_source(runbook),
                                   metadata={"tags": ["raises-exception"]}))

    for phase, heading in ((Phase.STEP, "Steps"), (Phase.VERIFY, "Verification"),
                           (Phase.ROLLBACK, "Rollback"),
                           (Phase.VERIFY_AFTER_ROLLBACK, "Verification after the rollback")):
        steps = runbook.verification if phase is Phase.VERIFY_AFTER_ROLLBACK else \
            runbook.phase_steps(phase)
        if not steps:
            continue
        cells.append(new_markdown_cell(f"## {heading}" + _phase_note(phase)))
        for step in steps:
            cells.append(new_markdown_cell(_step_markdown(step)))
            cells.append(new_code_cell(_step_source(step, phase), metadata={"tags": STEP_TAGS}))

    if runbook.monitoring:
        cells.append(new_markdown_cell(f"## Monitoring\n\n{runbook.monitoring}"))
    cells.append(new_markdown_cell("## Result"))
    cells.append(new_code_cell("rb.finish()"))

    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook.metadata["tinysdlc_nb"] = {"runbook": runbook.name,
                                        "runbook_sha256": runbook_sha256(runbook),
                                        "compiled_by": f"tinysdlc-nb {__version__}"}
    return notebook


def write_notebook(runbook: Runbook, output: Path, project_dir: Path | None = None) -> Path:
    """Write the compiled notebook, with ``project_dir`` as its default project folder."""
    output.parent.mkdir(parents=True, exist_ok=True)
    folder = str(project_dir.resolve()) if project_dir is not None else "."
    nbformat.write(compile_runbook(runbook, folder), output)
    return output


def cell_timeout_s(runbook: Runbook) -> float:
    """Return a cell time limit above every step's own timeout and its kill grace."""
    steps = [*runbook.steps, *runbook.verification, *runbook.rollback]
    return max((step.timeout_s for step in steps), default=runbook.step_timeout_s) + 60.0


def definition(runbook: Runbook) -> dict[str, Any]:
    """Return the facts the notebook's session needs, as plain data."""
    return {
        "name": runbook.name,
        "path": str(runbook.path.resolve()) if runbook.path else "",
        "sha256": runbook_sha256(runbook),
        "service": runbook.service,
        "environment": runbook.environment,
        "rollback_target_s": runbook.rollback_target_s,
        "read_only": runbook.read_only,
        "parameters": {name: _declaration(parameter)
                       for name, parameter in runbook.parameters.items()},
        "counts": {"step": len(runbook.steps), "verify": len(runbook.verification),
                   "rollback": len(runbook.rollback)},
    }


def _declaration(parameter: Parameter) -> dict[str, Any]:
    """Return a parameter as front matter writes it, so the session reads it back the same."""
    spec: dict[str, Any] = {"type": parameter.type}
    if parameter.secret:
        spec.update(secret=True, required=parameter.required)
        if parameter.env:
            spec["env"] = parameter.env
    elif parameter.required:
        spec["required"] = True
    else:
        spec["default"] = parameter.default
    if parameter.choices:
        spec["choices"] = list(parameter.choices)
    if parameter.description:
        spec["description"] = parameter.description
    return spec


def _intro(runbook: Runbook) -> str:
    lines = [f"# {runbook.title or runbook.name}", "", runbook.description, ""]
    if runbook.parameters:
        lines += ["| parameter | type | default | in commands | description |",
                  "|---|---|---|---|---|"]
        for parameter in runbook.parameters.values():
            default = (f"from ${parameter.source_variable}" if parameter.secret
                       else "required" if parameter.required else repr(parameter.default))
            lines.append(f"| {parameter.name} | {parameter.type} | {default} | "
                         f"${parameter.variable} | {parameter.description} |")
        lines.append("")
    source = runbook.path.name if runbook.path else "text"
    lines.append(f"Compiled from `{source}` (SHA-256 {runbook_sha256(runbook)[:12]}) by "
                 f"tinysdlc-nb {__version__}. Each step runs in bash with `-euo pipefail`; "
                 f"a step that exits non-zero or misses its expectation fails, and the "
                 f"rollback cells then run.")
    return "\n".join(lines)


def _parameters_cell(runbook: Runbook, project_dir: str) -> nbformat.NotebookNode:
    lines = ["# Parameters: `tinysdlc-nb runbook run -p name=value` or papermill sets them."]
    for parameter in runbook.parameters.values():
        if parameter.secret:
            lines.append(f"# {parameter.name}: secret, read from ${parameter.source_variable} "
                         f"when the run starts")
            continue
        value = None if parameter.required else parameter.default
        note = "  # required" if parameter.required else ""
        lines.append(f"{parameter.name} = {value!r}{note}")
    lines.append("")
    for name, (value, help_text) in CONTROL_PARAMETERS.items():
        value = project_dir if name == "runbook_project_dir" else value
        lines.append(f"{name} = {value!r}  # {help_text}")
    return new_code_cell("\n".join(lines), metadata={"tags": ["parameters"]})


def _definition_source(runbook: Runbook) -> str:
    return "RUNBOOK = " + pprint.pformat(definition(runbook), sort_dicts=False, width=90)


def _session_source(runbook: Runbook) -> str:
    values = ", ".join(f"{name!r}: {name}" for name, parameter in runbook.parameters.items()
                       if not parameter.secret)
    return ("from tinysdlc_nb.runbooks.session import open_session\n\n"
            f"rb = open_session(RUNBOOK, {{{values}}}, run_id=runbook_run_id, "
            f"mode=runbook_mode,\n                  no_rollback=runbook_no_rollback, "
            f"project_dir=runbook_project_dir)")


def _prerequisites_source(runbook: Runbook) -> str:
    items = ",\n    ".join(repr((item.text, item.check)) for item in runbook.prerequisites)
    return f"rb.check_prerequisites([\n    {items},\n])"


def _phase_note(phase: Phase) -> str:
    if phase is Phase.ROLLBACK:
        return "\n\nThese cells run only when a step failed, or in a rollback rehearsal."
    if phase is Phase.VERIFY_AFTER_ROLLBACK:
        return "\n\nThe verification again, run only after a rollback."
    return ""


def _step_markdown(step: Step) -> str:
    return f"**{step.phase.value.capitalize()} {step.number}: {step.title}**" + \
        (f"\n\n{step.text}" if step.text else "")


def _step_source(step: Step, phase: Phase) -> str:
    words = [f"%%{MAGICS[phase]}"]
    if phase is Phase.VERIFY_AFTER_ROLLBACK:
        words.append("--after-rollback")
    # "--name=value" keeps a value that starts with "-" from reading as an option.
    words += [str(step.number), shlex.quote(f"--title={step.title}"),
              f"--timeout={step.timeout_s:g}"]
    if step.expect.exit_code:
        words.append(f"--expect-exit={step.expect.exit_code}")
    for text in step.expect.contains:
        words.append(shlex.quote(f"--expect={text}"))
    return " ".join(words) + "\n" + (step.command or "").rstrip("\n")

"""The schedule model, and the checks a new schedule passes before anything is stored.

Values given as ``-p key=value`` are typed as follows. For a runbook they keep their text
and the runbook's declared parameter types apply, as with ``runbook run``. A gate's
version, tier and environment are text. For a notebook, a value that reads as a JSON
number, ``true``, ``false`` or ``null`` becomes that value, and every other value stays a
string. A JSON string such as ``'"8080"'``
passes its text, so a number can still be passed as text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError

KINDS = ("notebook", "gate", "runbook")
GATES = ("g3", "g4")
CATCH_UP = ("none", "latest")
GATE_PARAMETERS = ("version", "tier", "environment")
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]*")
MAX_NAME_LENGTH = 100

# Parameters the job fills itself when a notebook declares them and the schedule does not
# set them: the run's schedule_runs id and the schedule's project folder.
RUN_ID_PARAMETER = "schedule_run_id"
PROJECT_PARAMETER = "project"


@dataclass
class ScheduleSpec:
    """A schedule as a person or ``init`` describes it, before it is stored."""

    name: str
    kind: str
    target: str
    cron: str
    project: str = "."
    timezone: str = "UTC"
    catch_up: str = "none"
    parameters: dict[str, Any] = field(default_factory=dict)
    created_by: str = ""
    paused: bool = False


def parse_pairs(pairs: list[str], kind: str) -> dict[str, Any]:
    """Return ``-p key=value`` pairs as a dict, typed as the module docstring describes."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, equals, raw = pair.partition("=")
        key = key.strip()
        if not equals or not key:
            raise UsageError(f"parameter '{pair}' is invalid; write -p NAME=VALUE")
        if key in values:
            raise UsageError(f"parameter '{key}' is given twice; pass it once")
        values[key] = raw if kind in ("runbook", "gate") else _typed(raw)
    return values


def validate_spec(spec: ScheduleSpec) -> ScheduleSpec:
    """Check everything about ``spec`` that needs no store; raise UsageError naming the fix.

    Returns the spec with ``project`` made absolute and the cron and time zone checked.
    """
    from .cron import parse_cron

    if len(spec.name) > MAX_NAME_LENGTH or not NAME_PATTERN.fullmatch(spec.name):
        raise UsageError(f"schedule name '{spec.name}' is invalid; use lowercase letters, "
                         f"digits, '-' and '_', starting with a letter or digit (at most "
                         f"{MAX_NAME_LENGTH} characters)")
    if spec.kind not in KINDS:
        raise UsageError(f"schedule kind '{spec.kind}' is invalid; expected one of "
                         f"{', '.join(KINDS)}")
    if spec.catch_up not in CATCH_UP:
        raise UsageError(f"--catch-up '{spec.catch_up}' is invalid; expected none or latest")
    parse_cron(spec.cron, spec.timezone)

    project = Path(spec.project).expanduser()
    if not project.is_dir():
        raise UsageError(f"--project '{spec.project}' is not a folder; pass the project's "
                         f"folder")
    spec.project = str(project.resolve())

    check = {"notebook": _check_notebook, "gate": _check_gate, "runbook": _check_runbook}
    check[spec.kind](spec)
    return spec


def notebook_source(target: str, project: str) -> Path:
    """Return the notebook a schedule runs: a path (relative to the project) or a shipped name."""
    from ..execute import packaged_notebook

    path = Path(target).expanduser()
    if not path.is_absolute():
        path = Path(project) / path
    if _is_path(target):
        if not path.is_file():
            raise UsageError(f"notebook '{target}' not found; pass an existing .ipynb file or "
                             f"the name of a shipped notebook")
        return path.resolve()
    return packaged_notebook(target)


def notebook_parameters(spec_parameters: dict[str, Any], declared: dict[str, Any],
                        project: str, run_id: int | None) -> dict[str, Any]:
    """Return the parameters a notebook run gets: the schedule's plus the ones filled in."""
    parameters = dict(spec_parameters)
    if RUN_ID_PARAMETER in declared and run_id is not None:
        parameters[RUN_ID_PARAMETER] = run_id
    if PROJECT_PARAMETER in declared and PROJECT_PARAMETER not in parameters:
        parameters[PROJECT_PARAMETER] = project
    return parameters


def _check_notebook(spec: ScheduleSpec) -> None:
    import nbformat

    from ..execute import validate_parameters

    source = notebook_source(spec.target, spec.project)
    if _is_path(spec.target):
        spec.target = str(source)
    notebook = nbformat.read(source, as_version=4)
    validate_parameters(notebook, str(source), spec.parameters)


def _check_gate(spec: ScheduleSpec) -> None:
    if spec.target not in GATES:
        raise UsageError(f"gate '{spec.target}' is invalid; expected g3 or g4")
    unknown = sorted(set(spec.parameters) - set(GATE_PARAMETERS))
    if unknown:
        raise UsageError(f"gate parameter '{unknown[0]}' is invalid; a scheduled gate takes "
                         f"{', '.join(GATE_PARAMETERS)}")
    for name, value in spec.parameters.items():
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f"gate parameter {name}={value!r} is invalid; give a non-empty "
                             f"text, or leave it out for the project's default")
    _check_gate_values(spec)


def _check_gate_values(spec: ScheduleSpec) -> None:
    """Check the tier and version as ``tinysdlc-nb gate`` would at run time."""
    from ..gates.model import Tier
    from ..project import resolve_version

    tiers = [tier.value for tier in Tier]
    tier = spec.parameters.get("tier")
    if tier is not None and tier not in tiers:
        raise UsageError(f"gate parameter tier={tier!r} is invalid; expected one of "
                         f"{', '.join(tiers)}")
    version = spec.parameters.get("version")
    if version is not None:
        resolve_version(Path(spec.project), version)


def _check_runbook(spec: ScheduleSpec) -> None:
    from ..runbooks.document import load_runbook
    from ..runbooks.lint import NO_ROLLBACK
    from ..runbooks.params import parse_cli_parameters
    from ..runbooks.runner import find_runbook

    path = find_runbook(spec.target, Path(spec.project))
    runbook = load_runbook(path, accept=frozenset({NO_ROLLBACK}))
    if not runbook.has_rollback and not runbook.read_only:
        raise UsageError(f"runbook '{spec.target}' has no rollback section and is not "
                         f"read_only; a scheduled run needs one of them, so add a "
                         f"'## Rollback' section")
    parse_cli_parameters(runbook, [f"{key}={value}" for key, value in spec.parameters.items()])


def _is_path(target: str) -> bool:
    return target.endswith(".ipynb") or "/" in target


def _typed(raw: str) -> Any:
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if value is None or isinstance(value, int | float | bool | str) else raw

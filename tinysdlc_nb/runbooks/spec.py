"""The runbook facts a compiled notebook carries, read back inside the kernel."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config
from .frontmatter import parameters_from_data
from .model import Runbook
from .params import read_secrets
from .records import RunStart


@dataclass
class RunbookSpec:
    """A runbook as its compiled notebook carries it: parameters, limits and step counts."""

    definition: dict[str, Any]
    runbook: Runbook

    @classmethod
    def from_definition(cls, definition: dict[str, Any]) -> RunbookSpec:
        path = Path(definition["path"]) if definition.get("path") else None
        runbook = Runbook(name=definition["name"], description="", path=path, source="",
                          parameters=parameters_from_data(definition),
                          rollback_target_s=definition.get("rollback_target_s"),
                          service=definition.get("service") or "",
                          environment=definition.get("environment") or "",
                          read_only=bool(definition.get("read_only")))
        return cls(definition, runbook)

    @property
    def name(self) -> str:
        return self.runbook.name

    @property
    def folder(self) -> str:
        folder = self.runbook.folder
        return str(folder) if folder is not None else os.getcwd()

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.definition.get("counts") or {})

    @property
    def rollback_target_s(self) -> float | None:
        return self.runbook.rollback_target_s

    def secrets(self) -> dict[str, str]:
        return read_secrets(self.runbook)

    def run_start(self, config: Config, values: dict[str, Any], mode: str, no_rollback: bool,
                  operator: str) -> RunStart:
        return describe_run(self.runbook, self.definition["sha256"], config, values, mode,
                            no_rollback, operator)


def default_operator() -> str:
    """Return the person running the runbook: $TINYSDLC_NB_OPERATOR, else the login name."""
    import getpass

    return os.environ.get("TINYSDLC_NB_OPERATOR") or getpass.getuser()


def run_environment(runbook: Runbook, values: dict[str, Any]) -> str:
    """Return the environment a run targets: its ``environment`` parameter, else the default."""
    value = values.get("environment")
    if isinstance(value, str) and value:
        return value
    return runbook.environment or "unspecified"


def run_version(values: dict[str, Any]) -> str | None:
    value = values.get("version")
    return str(value) if value not in (None, "") else None


def describe_run(runbook: Runbook, sha256: str, config: Config, values: dict[str, Any],
                 mode: str, no_rollback: bool, operator: str) -> RunStart:
    """Return the start record of a run of ``runbook`` with ``values``."""
    return RunStart(project=config.name, runbook=runbook.name,
                    runbook_path=str(runbook.path) if runbook.path else "",
                    runbook_sha256=sha256, service=runbook.service or runbook.name,
                    version=run_version(values), environment=run_environment(runbook, values),
                    mode=mode, parameters=values, operator=operator, no_rollback=no_rollback,
                    rollback_target_s=runbook.rollback_target_s)

"""The parts of a parsed runbook: parameters, prerequisites, steps and the whole document."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_STEP_TIMEOUT_S = 300.0
PARAMETER_TYPES = ("str", "int", "float", "bool", "list")


class Phase(enum.StrEnum):
    """The section a step belongs to, in the order a run goes through them."""

    STEP = "step"
    VERIFY = "verify"
    ROLLBACK = "rollback"
    VERIFY_AFTER_ROLLBACK = "verify_after_rollback"


class RunStatus(enum.StrEnum):
    """The end state of a runbook run. Each status has one exit code (``RUN_EXIT``)."""

    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"  # a step failed and the rollback brought the service back
    BLOCKED = "blocked"  # a prerequisite was not met, so no step ran
    SLOW_ROLLBACK = "slow_rollback"  # a rehearsal passed, but past rollback_target_s
    ROLLBACK_FAILED = "rollback_failed"
    ERROR = "error"  # the notebook stopped before the run could finish


RUN_EXIT = {RunStatus.PASSED: 0, RunStatus.FAILED: 1, RunStatus.BLOCKED: 1,
            RunStatus.SLOW_ROLLBACK: 1, RunStatus.ROLLBACK_FAILED: 4, RunStatus.ERROR: 4,
            RunStatus.RUNNING: 4}


class StepStatus(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"  # an earlier step failed
    NOT_NEEDED = "not_needed"  # a rollback step of a run that did not need one


@dataclass(frozen=True)
class Parameter:
    """A declared runbook parameter, passed to commands as ``$NAME``."""

    name: str
    type: str
    default: Any = None
    required: bool = False
    choices: tuple[Any, ...] | None = None
    description: str = ""
    secret: bool = False
    env: str = ""  # the variable a secret is read from; empty means ``name`` upper-cased
    line: int = 0

    @property
    def variable(self) -> str:
        """The environment variable commands read the value from."""
        return self.name.upper()

    @property
    def source_variable(self) -> str:
        """The environment variable a secret value is read from before the run."""
        return self.env or self.variable


@dataclass(frozen=True)
class Prerequisite:
    """A checkbox item; ``check`` is empty for an item only a person can confirm."""

    text: str
    check: str = ""
    line: int = 0


@dataclass(frozen=True)
class Expectation:
    """The result a step must show: an exit code, texts in the output, or both."""

    exit_code: int = 0
    contains: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """One numbered item of Steps, Verification or Rollback."""

    phase: Phase
    number: int
    title: str
    text: str
    command: str | None
    expect: Expectation = field(default_factory=Expectation)
    timeout_s: float = DEFAULT_STEP_TIMEOUT_S
    line: int = 0
    command_line: int = 0


@dataclass
class Runbook:
    """A whole runbook document as read from its Markdown file."""

    name: str
    description: str
    path: Path | None
    source: str
    title: str = ""
    parameters: dict[str, Parameter] = field(default_factory=dict)
    rollback_target_s: float | None = None
    step_timeout_s: float = DEFAULT_STEP_TIMEOUT_S
    service: str = ""
    environment: str = ""
    read_only: bool = False
    prerequisites: list[Prerequisite] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    verification: list[Step] = field(default_factory=list)
    rollback: list[Step] = field(default_factory=list)
    monitoring: str = ""
    sections: dict[str, int] = field(default_factory=dict)  # heading (lower case) -> line
    sha256: str = ""  # of the file's bytes, as evidence records hash it

    @property
    def has_rollback(self) -> bool:
        return any(step.command for step in self.rollback)

    @property
    def folder(self) -> Path | None:
        return self.path.parent if self.path is not None else None

    def phase_steps(self, phase: Phase) -> list[Step]:
        if phase is Phase.STEP:
            return self.steps
        if phase is Phase.ROLLBACK:
            return self.rollback
        return self.verification

"""Gate policy: the items a gate evaluates at a tier, and the verdict their statuses give."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .model import Status

G4_CHECKS = ("lint", "tests", "zero_mock", "sast", "secrets", "dependencies", "licenses",
             "sbom", "migrations")
G3_CHECKS = ("lint", "tests", "zero_mock")

CHECK_LABELS = {
    "lint": "Lint clean",
    "tests": "Tests pass with coverage at the tier threshold",
    "zero_mock": "Zero Mock scan clean (no mock code in production)",
    "sast": "Static security analysis clean",
    "secrets": "No secrets in code or configuration",
    "dependencies": "No known vulnerabilities in dependencies",
    "licenses": "Dependency licenses allowed by policy",
    "sbom": "SBOM generated (CycloneDX)",
    "migrations": "Database migrations reversible",
}


class Verdict(StrEnum):
    PASSED = "PASSED"
    FAILED = "FAILED"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    INCOMPLETE = "INCOMPLETE"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self]


EXIT_CODES = {Verdict.PASSED: 0, Verdict.FAILED: 1, Verdict.AWAITING_APPROVAL: 3,
              Verdict.INCOMPLETE: 4}
USAGE_EXIT_CODE = 2


@dataclass
class Item:
    """One line of a gate's checklist."""

    item: str
    kind: str  # check, evidence or signoff
    label: str
    status: Status | None  # None for a sign-off not given yet
    summary: str
    required: bool = True


def gate_checks(gate: str) -> tuple[str, ...]:
    return G4_CHECKS if gate == "g4" else G3_CHECKS


def decide(items: list[Item]) -> Verdict:
    """Return the verdict of a checklist.

    A failed required item outweighs an unknown one, because it is a known reason to stop.
    ERROR and UNAVAILABLE come next, since a blind scanner never reads as clean. Missing
    sign-offs come last.
    """
    required = [item for item in items if item.required]
    if any(item.status is Status.FAIL for item in required):
        return Verdict.FAILED
    if any(item.status in (Status.ERROR, Status.UNAVAILABLE) for item in required):
        return Verdict.INCOMPLETE
    if any(item.status is None for item in required):
        return Verdict.AWAITING_APPROVAL
    return Verdict.PASSED

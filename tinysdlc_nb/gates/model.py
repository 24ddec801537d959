"""The check model: item statuses, findings and the result a check returns."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class Status(StrEnum):
    """Status of one gate item. Only PASS, SKIPPED and unexpired WAIVED count toward a pass."""

    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"
    UNAVAILABLE = "UNAVAILABLE"
    SKIPPED = "SKIPPED"
    WAIVED = "WAIVED"

    @property
    def counts_as_pass(self) -> bool:
        return self in (Status.PASS, Status.SKIPPED, Status.WAIVED)


class Tier(StrEnum):
    LITE = "lite"
    STANDARD = "standard"
    PROFESSIONAL = "professional"
    ENTERPRISE = "enterprise"

    @property
    def rank(self) -> int:
        return list(Tier).index(self)

    def at_least(self, other: Tier) -> bool:
        return self.rank >= other.rank


@dataclass(frozen=True)
class Finding:
    """One problem a check found.

    ``file`` is relative to the project root with forward slashes; ``line`` is 1-based or
    None when the finding is not about a line. A finding with ``suppression`` set was
    silenced in the source (``# nosec``, an allow marker, a baseline) and is listed, not
    counted.
    """

    file: str
    line: int | None
    rule: str
    message: str
    severity: str = "error"
    suppression: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "rule": self.rule, "message": self.message,
                "severity": self.severity, "suppression": self.suppression}


@dataclass
class CheckResult:
    """The result of one check: its status, findings, tool and the raw report."""

    check: str
    status: Status
    summary: str
    tool: str
    tool_version: str = ""
    findings: list[Finding] = field(default_factory=list)
    exit_code: int | None = None
    report: bytes = b""
    report_name: str = ""
    duration_s: float = 0.0

    @property
    def report_sha256(self) -> str:
        return hashlib.sha256(self.report).hexdigest() if self.report else ""

    @property
    def active_findings(self) -> list[Finding]:
        """Findings not suppressed in source, notes below a threshold included."""
        return [finding for finding in self.findings if finding.suppression is None]

    @property
    def counted_findings(self) -> list[Finding]:
        """Findings that count against the item: not suppressed and not a mere note."""
        return [finding for finding in self.active_findings if finding.severity != "note"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check, "status": str(self.status), "summary": self.summary,
            "tool": self.tool, "tool_version": self.tool_version, "exit_code": self.exit_code,
            "report_name": self.report_name, "report_sha256": self.report_sha256,
            "duration_s": round(self.duration_s, 3),
            "findings": [finding.as_dict() for finding in self.findings],
        }


@dataclass
class CheckContext:
    """Everything a check may read: the project, the tier and its own settings.

    ``work_dir`` is a folder private to this check run where the check may write
    intermediate files (JUnit, coverage, SBOM); ``timeout_s`` bounds each tool it runs.
    """

    project: Path
    tier: Tier
    settings: dict[str, Any]
    work_dir: Path
    timeout_s: float = 600.0
    exclude_dirs: tuple[str, ...] = (".git", ".venv", "venv", ".tox", ".nox", "node_modules",
                                     ".tinysdlc", "__pycache__", ".mypy_cache",
                                     ".pytest_cache", ".ruff_cache", ".cache", "build", "dist",
                                     ".eggs")
    inputs: dict[str, Path] = field(default_factory=dict)

    def relative(self, path: str | Path) -> str:
        """Return ``path`` relative to the project with forward slashes, if it lies inside."""
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = (self.project / candidate)
        try:
            return candidate.resolve().relative_to(self.project.resolve()).as_posix()
        except ValueError:
            return Path(path).as_posix()

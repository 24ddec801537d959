"""SARIF 2.1.0: one run per tool, suppressed results kept with their justification."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..scrub import scrub
from .model import CheckResult, Finding

if TYPE_CHECKING:
    from .run import GateRun

SARIF_NAME = "results.sarif"
SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVELS = {"error": "error", "warning": "warning", "note": "note"}


def write(run: GateRun) -> Path:
    document = build(run.results.values(), run.config.project_dir.resolve().as_uri() + "/")
    path = run.output_dir / SARIF_NAME
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def build(results, project_uri: str) -> dict[str, Any]:
    """Return a SARIF log with one run per check result that has a tool."""
    runs = [_run(result, project_uri) for result in results if result.tool]
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": runs}


def _run(result: CheckResult, project_uri: str) -> dict[str, Any]:
    rules = sorted({finding.rule for finding in result.findings})
    driver: dict[str, Any] = {"name": result.tool, "rules": [{"id": rule} for rule in rules]}
    if result.tool_version:
        driver["version"] = result.tool_version
    return {
        "tool": {"driver": driver},
        "automationDetails": {"id": f"tinysdlc-nb/{result.check}/"},
        "originalUriBaseIds": {"PROJECTROOT": {"uri": project_uri}},
        "invocations": [{"executionSuccessful": str(result.status) not in ("ERROR",),
                         "exitCode": result.exit_code if result.exit_code is not None else 0,
                         "properties": {"status": str(result.status),
                                        "summary": scrub(result.summary)}}],
        "results": [_result(finding, rules.index(finding.rule)) for finding in result.findings],
    }


def _result(finding: Finding, rule_index: int) -> dict[str, Any]:
    location: dict[str, Any] = {"artifactLocation": {"uri": finding.file,
                                                     "uriBaseId": "PROJECTROOT"}}
    if finding.line:
        location["region"] = {"startLine": finding.line}
    entry: dict[str, Any] = {
        "ruleId": finding.rule, "ruleIndex": rule_index,
        "level": _LEVELS.get(finding.severity, "warning"),
        "message": {"text": scrub(finding.message)},
        "locations": [{"physicalLocation": location}],
    }
    if finding.suppression is not None:
        entry["suppressions"] = [{"kind": "inSource", "status": "accepted",
                                  "justification": scrub(finding.suppression)}]
    return entry

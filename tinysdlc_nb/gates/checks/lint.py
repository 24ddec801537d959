"""The ``lint`` check: ``ruff check`` over the project, judged by its JSON report.

ruff reads the project's own configuration (``ruff.toml``, ``.ruff.toml`` or
``[tool.ruff]`` in ``pyproject.toml``), so the project decides which rules apply. Without
one, ruff's defaults apply. Lines silenced with ``# noqa`` or ``# ruff: ignore`` are found
by a second run with ``--ignore-noqa`` and listed as suppressed findings.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from ...settings import Setting
from ..files import iter_files
from ..model import CheckContext, CheckResult, Finding, Status
from ..tool import (
    ToolRun,
    output_tail,
    plural,
    python_tool,
    require_distribution,
    result_from_run,
    run_tool,
)

log = logging.getLogger(__name__)

NAME = "lint"
TOOL = "ruff"

SETTINGS = (
    Setting("select", list, [],
            "rule codes ruff checks (ruff --select, such as ['E', 'F', 'B']); empty keeps the "
            "selection of the project's ruff configuration, or ruff's defaults without one"),
    Setting("extra_args", list, [],
            "further arguments for ruff check, such as ['--preview']; the check always adds "
            "--no-fix, so ruff never edits the project"),
)

# Exit codes of ruff check, as documented and seen with ruff 0.17: 0 means no violations,
# 1 violations, 2 a failure of ruff itself (such as an invalid configuration).
_FINDINGS_EXIT_CODES = (0, 1)

# Files ruff lints by default: Python sources, stubs and notebooks.
_PYTHON_SUFFIXES = (".py", ".pyi", ".ipynb")

_SUPPRESSION_COMMENT = re.compile(r"#\s*(?:noqa\b|ruff\s*:\s*(?:noqa|ignore|disable)\b).*$")
_FILE_EXEMPTION = re.compile(r"#\s*(?:ruff|flake8)\s*:\s*noqa\b.*$")


def run(ctx: CheckContext) -> CheckResult:
    """Run ruff over the project and turn its JSON report into findings."""
    if next(iter_files(ctx.project, ctx.exclude_dirs, _PYTHON_SUFFIXES), None) is None:
        return _result(Status.SKIPPED, "No Python files to lint in the project.")

    require_distribution(NAME, TOOL)
    counted_run = run_tool(NAME, _ruff_argv(ctx, ignore_noqa=False), cwd=ctx.project,
                           timeout_s=ctx.timeout_s)
    counted_diagnostics, problem = _parse_report(counted_run)
    if problem:
        return _result(Status.ERROR, problem, counted_run)

    full_run = run_tool(NAME, _ruff_argv(ctx, ignore_noqa=True), cwd=ctx.project,
                        timeout_s=ctx.timeout_s)
    all_diagnostics, problem = _parse_report(full_run)
    if problem:
        return _result(Status.ERROR, f"ruff run with --ignore-noqa: {problem}", full_run)

    findings = _findings(ctx, counted_diagnostics, all_diagnostics)
    return _judge(findings, counted_run)


def _ruff_argv(ctx: CheckContext, *, ignore_noqa: bool) -> list[str]:
    argv = [*python_tool("ruff"), "check", *ctx.settings["extra_args"]]
    if ctx.settings["select"]:
        argv += ["--select", ",".join(ctx.settings["select"])]
    excluded = ",".join((*ctx.exclude_dirs, "*.egg-info"))
    argv += ["--output-format", "json", "--no-fix", "--no-cache", "--extend-exclude", excluded]
    if ignore_noqa:
        argv.append("--ignore-noqa")
    return [*argv, "."]


def _parse_report(tool_run: ToolRun) -> tuple[list[dict], str]:
    """Return ruff's diagnostics, or an empty list and why the run cannot be trusted."""
    if tool_run.exit_code not in _FINDINGS_EXIT_CODES:
        return [], f"ruff exited with code {tool_run.exit_code}: {output_tail(tool_run.stderr)}"

    try:
        diagnostics = json.loads(tool_run.stdout or b"[]")
    except json.JSONDecodeError as error:
        return [], (f"ruff printed a report that is not JSON ({error}): "
                    f"{output_tail(tool_run.stderr)}")
    if not isinstance(diagnostics, list):
        return [], "ruff printed a JSON report that is not a list of diagnostics"

    if tool_run.exit_code == 1 and not diagnostics:
        return [], (f"ruff exited with code 1 but reported no diagnostics: "
                    f"{output_tail(tool_run.stderr)}")
    return diagnostics, ""


def _findings(ctx: CheckContext, counted_diagnostics: list[dict],
              all_diagnostics: list[dict]) -> list[Finding]:
    """List the counted diagnostics, then those only ``--ignore-noqa`` shows, as suppressed."""
    counted_keys = {_key(diagnostic) for diagnostic in counted_diagnostics}
    findings = [_finding(ctx, diagnostic, None) for diagnostic in counted_diagnostics]

    source_cache: dict[str, list[str]] = {}
    for diagnostic in all_diagnostics:
        if _key(diagnostic) in counted_keys:
            continue
        justification = _suppression_text(diagnostic, source_cache)
        findings.append(_finding(ctx, diagnostic, justification))

    return sorted(findings, key=lambda finding: (finding.file, finding.line or 0, finding.rule))


def _key(diagnostic: dict) -> tuple:
    location = diagnostic.get("location") or {}
    return (diagnostic.get("filename"), location.get("row"), location.get("column"),
            diagnostic.get("code"))


def _finding(ctx: CheckContext, diagnostic: dict, suppression: str | None) -> Finding:
    location = diagnostic.get("location") or {}
    rule = diagnostic.get("code") or diagnostic.get("name") or "ruff"
    message = " ".join(str(diagnostic.get("message", "")).split())
    if diagnostic.get("cell") is not None:
        message = f"cell {diagnostic['cell']}: {message}"
    return Finding(file=ctx.relative(diagnostic.get("filename", ".")), line=location.get("row"),
                   rule=rule, message=message, severity="error", suppression=suppression)


def _suppression_text(diagnostic: dict, source_cache: dict[str, list[str]]) -> str:
    """Return the comment that silenced ``diagnostic``: on its noqa line, else a file exemption."""
    filename = diagnostic.get("filename", "")
    if filename not in source_cache:
        try:
            source_cache[filename] = Path(filename).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            source_cache[filename] = []
    lines = source_cache[filename]

    row = diagnostic.get("noqa_row") or (diagnostic.get("location") or {}).get("row")
    if row and 0 < row <= len(lines):
        match = _SUPPRESSION_COMMENT.search(lines[row - 1])
        if match:
            return match.group(0).strip()

    for line in lines:
        match = _FILE_EXEMPTION.search(line)
        if match:
            return match.group(0).strip()
    return "suppressed by a ruff suppression comment"


def _judge(findings: list[Finding], tool_run: ToolRun) -> CheckResult:
    active = [finding for finding in findings if finding.suppression is None]
    suppressed = len(findings) - len(active)
    files = len({finding.file for finding in active})

    if active:
        summary = f"{plural(len(active), 'finding')} in {plural(files, 'file')}"
    else:
        summary = "No findings"
    if suppressed:
        summary += f", {suppressed} suppressed in source"
    return _result(Status.FAIL if active else Status.PASS, summary + ".", tool_run, findings)


def _result(status: Status, summary: str, tool_run: ToolRun | None = None,
            findings: list[Finding] | None = None) -> CheckResult:
    return result_from_run(NAME, TOOL, status, summary, tool_run, findings, "ruff.json")

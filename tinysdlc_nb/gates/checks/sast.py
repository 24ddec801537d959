"""The ``sast`` check: bandit over the project's production code.

The check lists the files itself (skipping excluded folders and the ``exclude`` globs) and
passes them to bandit, so tests and docs are excluded the same way as in every other check.
bandit runs with ``--ignore-nosec`` so that lines silenced with ``# nosec`` are listed as
suppressed findings with their comment, not hidden. Which of those lines bandit itself
would silence is decided by a second bandit run without ``--ignore-nosec`` over the files
that carry such comments, so a ``# nosec B101`` never hides a B602 result.

A file bandit could not read or parse (listed in its report's "errors") makes the check
ERROR, because that file was not scanned at all.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re

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

NAME = "sast"
TOOL = "bandit"

_LEVELS = ("low", "medium", "high")

SETTINGS = (
    Setting("exclude", list,
            ["**/tests/**", "**/test/**", "**/test_*.py", "**/*_test.py", "**/conftest.py",
             "docs/**", "doc/**"],
            "globs of files bandit does not scan, relative to the project with forward "
            "slashes; '**/' at the start also matches at the project root"),
    Setting("min_severity_lite", str, "high",
            "lowest bandit issue severity that fails the lite tier; results below it are "
            "listed as notes", choices=_LEVELS),
    Setting("min_severity_standard", str, "medium",
            "lowest bandit issue severity that fails the standard tier", choices=_LEVELS),
    Setting("min_severity_professional", str, "low",
            "lowest bandit issue severity that fails the professional tier", choices=_LEVELS),
    Setting("min_severity_enterprise", str, "low",
            "lowest bandit issue severity that fails the enterprise tier", choices=_LEVELS),
    Setting("min_confidence", str, "medium",
            "lowest bandit confidence that counts, at every tier; results bandit is less "
            "sure of are listed as notes", choices=_LEVELS),
)

# Severity and confidence ranks of bandit 1.9. A plugin that sets no level reports
# UNDEFINED, which ranks below LOW and so never counts.
_RANK = {"UNDEFINED": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3}

# Exit codes of bandit 1.9 (bandit/cli/main.py): 0 means no results at the requested
# levels, 1 results, 2 a usage, config or profile error. A file bandit cannot parse does
# not change the exit code, but is listed in the report's "errors".
_FINDINGS_EXIT_CODES = (0, 1)

# bandit logs this and carries on when one of its plugins raises on a file.
_INTERNAL_ERROR = "Bandit internal error running"

_NOSEC_COMMENT = re.compile(r"#\s*nosec\b.*$")

# bandit's hardcoded-password tests (string, function argument, default argument).
_PASSWORD_TESTS = frozenset({"B105", "B106", "B107"})
_QUOTED_VALUE = re.compile(r":\s*'.*'\s*$", re.DOTALL)


def run(ctx: CheckContext) -> CheckResult:
    """Run bandit over the production code and judge its results against the tier."""
    files = [ctx.relative(path) for path in iter_files(
        ctx.project, ctx.exclude_dirs, (".py",), ctx.settings["exclude"])]
    if not files:
        return _result(Status.SKIPPED, "No Python production files to scan after excludes.")

    require_distribution(NAME, TOOL)
    # NOTE: every file is one argument, so a project of tens of thousands of files could
    # pass the operating system's argument length limit (about 2 MB on Linux).
    full_run = run_tool(NAME, _bandit_argv(files, ignore_nosec=True), cwd=ctx.project,
                        timeout_s=ctx.timeout_s)
    report, problem = _parse_report(full_run)
    if problem:
        return _result(Status.ERROR, problem, full_run)
    _withhold_passwords(report)
    full_run = dataclasses.replace(full_run, stdout=json.dumps(report, indent=1).encode())

    silenced, problem = _silenced_by_nosec(ctx, report["results"])
    if problem:
        return _result(Status.ERROR, problem, full_run)

    findings = [_finding(ctx, issue, silenced.get(_key(ctx, issue)))
                for issue in report["results"]]
    unparsed = [_unparsed_finding(ctx, error) for error in report.get("errors", [])]
    if unparsed:
        names = ", ".join(finding.file for finding in unparsed[:5])
        if len(unparsed) > 5:
            names += f" and {len(unparsed) - 5} more"
        summary = (f"bandit could not parse {plural(len(unparsed), 'file')} ({names}), so they "
                   f"were not scanned; fix them or add them to [checks.sast] exclude.")
        return _result(Status.ERROR, summary, full_run, unparsed + findings)

    return _judge(ctx, findings, full_run)


def _withhold_passwords(report: dict) -> None:
    """Remove the suspected password from bandit's text and code of its password tests.

    bandit quotes the hardcoded string in ``issue_text`` and the source lines in ``code``,
    and a report must never carry the secret it warns about.
    """
    for issue in report["results"]:
        if issue.get("test_id") not in _PASSWORD_TESTS:
            continue
        text = str(issue.get("issue_text", ""))
        issue["issue_text"] = _QUOTED_VALUE.sub(": [value withheld]", text)
        issue["code"] = "[source withheld: it contains the suspected password]"


def _bandit_argv(files: list[str], *, ignore_nosec: bool) -> list[str]:
    argv = [*python_tool("bandit"), "--format", "json", "--quiet"]
    if ignore_nosec:
        argv.append("--ignore-nosec")
    return [*argv, "--", *files]


def _parse_report(tool_run: ToolRun) -> tuple[dict, str]:
    """Return bandit's JSON report, or an empty one and why the run cannot be trusted."""
    stderr = tool_run.stderr.decode("utf-8", errors="replace")
    if tool_run.exit_code not in _FINDINGS_EXIT_CODES:
        return {}, f"bandit exited with code {tool_run.exit_code}: {output_tail(stderr)}"
    if _INTERNAL_ERROR in stderr:
        start = stderr.index(_INTERNAL_ERROR)
        return {}, (f"a bandit plugin failed, so the scan is incomplete: "
                    f"{output_tail(stderr[start:])}")

    try:
        report = json.loads(tool_run.stdout)
    except json.JSONDecodeError as error:
        return {}, f"bandit printed a report that is not JSON ({error}): {output_tail(stderr)}"
    if not isinstance(report, dict) or not isinstance(report.get("results"), list):
        return {}, "bandit printed a JSON report without a 'results' list"
    return report, ""


def _silenced_by_nosec(ctx: CheckContext, issues: list[dict]) -> tuple[dict, str]:
    """Map each result bandit would silence to the text of its ``# nosec`` comment."""
    comments = {}
    sources: dict[str, list[str]] = {}
    for issue in issues:
        comment = _nosec_comment(ctx, issue, sources)
        if comment:
            comments[_key(ctx, issue)] = comment
    if not comments:
        return {}, ""

    files = sorted({key[0] for key in comments})
    tool_run = run_tool(NAME, _bandit_argv(files, ignore_nosec=False), cwd=ctx.project,
                        timeout_s=ctx.timeout_s)
    report, problem = _parse_report(tool_run)
    if problem:
        return {}, f"bandit run that honours # nosec: {problem}"

    still_reported = {_key(ctx, issue) for issue in report["results"]}
    return {key: text for key, text in comments.items() if key not in still_reported}, ""


def _nosec_comment(ctx: CheckContext, issue: dict, sources: dict[str, list[str]]) -> str | None:
    """Return the ``# nosec`` comment on the result's line or statement, if there is one."""
    filename = issue.get("filename", "")
    if filename not in sources:
        try:
            text = (ctx.project / filename).read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        sources[filename] = text.splitlines()
    lines = sources[filename]

    line_number = issue.get("line_number")
    for number in [line_number, *issue.get("line_range", [])]:
        if isinstance(number, int) and 0 < number <= len(lines):
            match = _NOSEC_COMMENT.search(lines[number - 1])
            if match:
                return match.group(0).strip()
    return None


def _key(ctx: CheckContext, issue: dict) -> tuple:
    return (ctx.relative(issue.get("filename", ".")), issue.get("test_id"),
            issue.get("line_number"), issue.get("col_offset"))


def _counts(ctx: CheckContext, issue: dict) -> bool:
    severity = _RANK.get(str(issue.get("issue_severity", "")).upper(), 0)
    confidence = _RANK.get(str(issue.get("issue_confidence", "")).upper(), 0)
    min_severity = _RANK[ctx.settings[f"min_severity_{ctx.tier.value}"].upper()]
    min_confidence = _RANK[ctx.settings["min_confidence"].upper()]
    return severity >= min_severity and confidence >= min_confidence


def _finding(ctx: CheckContext, issue: dict, suppression: str | None) -> Finding:
    severity = str(issue.get("issue_severity", "UNDEFINED")).upper()
    confidence = str(issue.get("issue_confidence", "UNDEFINED")).upper()
    cwe = (issue.get("issue_cwe") or {}).get("id")

    details = f"severity {severity}, confidence {confidence}"
    if cwe:
        details = f"CWE-{cwe}, {details}"
    message = f"{' '.join(str(issue.get('issue_text', '')).split())} ({details})"

    if not _counts(ctx, issue):
        level = "note"
        message += f"; below the {ctx.tier.value} threshold"
    elif severity == "HIGH":
        level = "error"
    else:
        level = "warning"
    return Finding(file=ctx.relative(issue.get("filename", ".")), line=issue.get("line_number"),
                   rule=str(issue.get("test_id", "bandit")), message=message, severity=level,
                   suppression=suppression)


def _unparsed_finding(ctx: CheckContext, error: dict) -> Finding:
    reason = " ".join(str(error.get("reason", "could not be parsed")).split())
    return Finding(file=ctx.relative(error.get("filename", ".")), line=None, rule="parse-error",
                   message=f"bandit did not scan this file: {reason}", severity="error")


def _judge(ctx: CheckContext, findings: list[Finding], tool_run: ToolRun) -> CheckResult:
    counted = [f for f in findings if f.suppression is None and f.severity != "note"]
    suppressed = sum(1 for finding in findings if finding.suppression is not None)
    below = sum(1 for f in findings if f.suppression is None and f.severity == "note")

    if counted:
        files = len({finding.file for finding in counted})
        summary = f"{plural(len(counted), 'finding')} in {plural(files, 'file')}"
    else:
        summary = f"No findings at the {ctx.tier.value} threshold"
    if below:
        summary += f", {below} below the threshold"
    if suppressed:
        summary += f", {suppressed} suppressed with # nosec"

    findings = sorted(findings, key=lambda f: (f.file, f.line or 0, f.rule))
    return _result(Status.FAIL if counted else Status.PASS, summary + ".", tool_run, findings)


def _result(status: Status, summary: str, tool_run: ToolRun | None = None,
            findings: list[Finding] | None = None) -> CheckResult:
    return result_from_run(NAME, TOOL, status, summary, tool_run, findings, "bandit.json")


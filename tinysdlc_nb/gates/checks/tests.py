"""The ``tests`` check: run the project's tests, or read their reports, and judge coverage.

By default the check runs ``python -m pytest`` in the project with pytest-cov options that
write JUnit XML and Cobertura XML into the check's work folder. A project whose tests run
through another command turns ``pytest_options`` off and writes the two files itself, to the
paths that replace ``{junit}`` and ``{coverage}`` in its command. When the CLI passes
existing reports (``--junit``, ``--coverage``), nothing is run and those files are judged.
"""

from __future__ import annotations

import logging
import math
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError
from ...settings import Setting
from ..model import CheckContext, CheckResult, Finding, Status, Tier
from ..tool import ToolRun, distribution_version, run_tool
from .tests_reports import (
    CoverageTotals,
    FailedCase,
    JUnitTotals,
    ReportError,
    parse_coverage,
    parse_junit,
)

log = logging.getLogger(__name__)

NAME = "tests"
TOOL = "pytest"

SETTINGS = (
    Setting("command", str, "python -m pytest",
            "test command, split like a shell line but run without a shell; 'python' as the "
            "first word is the interpreter named by the python setting; {junit} and "
            "{coverage} are replaced by the report paths"),
    Setting("python", str, "",
            "interpreter of the environment under test; empty means the interpreter running "
            "tinysdlc-nb"),
    Setting("cov_source", str, "",
            "what pytest-cov measures (--cov): a path relative to the project or a package "
            "name; empty means the whole project"),
    Setting("pytest_options", bool, True,
            "add --junitxml, --cov, --cov-branch, --cov-report=xml and -p no:cacheprovider "
            "to the command; turn off when the command is not pytest and writes {junit} and "
            "{coverage} itself, as JUnit XML and as Cobertura XML or coverage.py JSON"),
    Setting("lite_threshold", float, 60.0,
            "minimum line+branch coverage at the lite tier; standard requires 80 and "
            "professional and enterprise require 90", unit="%", minimum=0.0),
)

# The tier rules fix these thresholds, and only the lite one is a setting.
_TIER_THRESHOLDS = {Tier.STANDARD: 80.0, Tier.PROFESSIONAL: 90.0, Tier.ENTERPRISE: 90.0}

# pytest's exit codes that mean the run itself went wrong, not a test.
_PYTEST_BROKEN = {2: "interrupted", 3: "internal error", 4: "usage error"}
_PYTEST_NO_TESTS = 5

# Findings about the project as a whole, not about one file, name the project root.
_PROJECT = "."


class _CommandError(ValueError):
    """The test command cannot be built from the settings."""


@dataclass(frozen=True)
class _Reports:
    junit: Path | None
    coverage: Path | None

    @property
    def report_name(self) -> str:
        return self.junit.name if self.junit else ""


def run(ctx: CheckContext) -> CheckResult:
    """Run or ingest the project's test reports and judge them against the tier's threshold."""
    ingested = {key: Path(ctx.inputs[key]) for key in ("junit", "coverage") if key in ctx.inputs}
    if ingested:
        log.info("check tests: reading existing reports %s", ingested)
        reports = _Reports(ingested.get("junit"), ingested.get("coverage"))
        return _judge(ctx, reports, None, pytest=False)

    try:
        argv, reports = _command(ctx)
    except _CommandError as error:
        return _result(Status.ERROR, str(error))

    tool_run = run_tool(NAME, argv, cwd=ctx.project, timeout_s=ctx.timeout_s,
                        env=_environment(ctx))
    return _judge(ctx, reports, tool_run, pytest=_runs_pytest(argv))


def validate(settings: dict) -> None:
    """Reject an empty or badly quoted test command when the config is loaded."""
    try:
        words = shlex.split(settings["command"])
    except ValueError as error:
        raise ConfigError(f"[checks.tests] command {settings['command']!r} cannot be split "
                          f"into words ({error}); fix its quotes") from error
    if not words:
        raise ConfigError("[checks.tests] command is empty; set it, for example to "
                          "'python -m pytest'")


def _command(ctx: CheckContext) -> tuple[list[str], _Reports]:
    """Build the argv of the test command and the paths it writes its reports to."""
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    junit = ctx.work_dir / "junit.xml"
    coverage = ctx.work_dir / "coverage.xml"
    for stale in (junit, coverage):
        stale.unlink(missing_ok=True)

    words = shlex.split(ctx.settings["command"])
    if not words:
        raise _CommandError("setting command is empty; set [checks.tests] command, for "
                            "example to 'python -m pytest'")
    if words[0] == "python":
        interpreter = _interpreter(ctx.settings["python"])
        if interpreter is None:
            raise _CommandError(f"setting python '{ctx.settings['python']}' was not found; set "
                                f"[checks.tests] python to the interpreter of the environment "
                                f"under test")
        words[0] = interpreter

    argv = [word.replace("{junit}", str(junit)).replace("{coverage}", str(coverage))
            for word in words]
    if ctx.settings["pytest_options"]:
        argv += _pytest_options(ctx, junit, coverage)
    return argv, _Reports(junit, coverage)


def _interpreter(configured: str) -> str | None:
    if not configured:
        return sys.executable
    if "/" not in configured:
        return shutil.which(configured)
    return configured if Path(configured).exists() else None


def _pytest_options(ctx: CheckContext, junit: Path, coverage: Path) -> list[str]:
    source = ctx.settings["cov_source"] or str(ctx.project)
    return [f"--junitxml={junit}", f"--cov={source}", "--cov-branch",
            f"--cov-report=xml:{coverage}",
            # Keep .pytest_cache out of the project under check. Setting cache_dir instead
            # fails under strict config when the command already disables the cache plugin.
            "-p", "no:cacheprovider"]


def _environment(ctx: CheckContext) -> dict[str, str]:
    # COVERAGE_FILE keeps coverage.py's data file out of the project under check. PY_COLORS=0
    # keeps ANSI color codes out of the JUnit failure texts when FORCE_COLOR is set.
    return {"TINYSDLC_NB_GATE_RUN": "1", "COVERAGE_FILE": str(ctx.work_dir / ".coverage"),
            "PY_COLORS": "0"}


def _runs_pytest(argv: list[str]) -> bool:
    return any(Path(word).name in ("pytest", "py.test") for word in argv[:3])


def _judge(ctx: CheckContext, reports: _Reports, tool_run: ToolRun | None,
           pytest: bool) -> CheckResult:
    """Decide the status from the exit code, the JUnit report and the coverage report.

    ``tool_run`` is None when existing reports were ingested. ``pytest`` is True when the
    command is pytest, whose exit codes are documented.
    """
    if tool_run and pytest:
        broken = _broken_pytest_run(ctx, reports, tool_run)
        if broken is not None:
            return broken

    exit_code = tool_run.exit_code if tool_run else None
    if reports.junit is None or not reports.junit.is_file():
        where = reports.junit or "any path"
        detail = f": {_tail(tool_run)}" if tool_run else ""
        return _result(Status.ERROR, f"the test run wrote no JUnit report at {where}{detail}",
                       exit_code=exit_code)
    try:
        totals = parse_junit(reports.junit, ctx.project)
    except ReportError as error:
        return _result(Status.ERROR, str(error), exit_code=exit_code)

    findings = [_case_finding(case) for case in totals.failed_cases]
    findings += _exit_findings(tool_run, totals, pytest)
    coverage, coverage_text = _coverage(ctx, reports.coverage, findings)
    report = _read(reports.junit)
    summary = f"{_counts(totals)}; {coverage_text}"

    if findings:
        status = Status.FAIL
    elif coverage is None:
        status = Status.ERROR
    elif tool_run and exit_code != 0:
        status = Status.ERROR
        summary += f"; the command exited {exit_code}: {_tail(tool_run)}"
    else:
        status = Status.PASS
    return _result(status, summary, findings=findings, exit_code=exit_code, report=report,
                   report_name=reports.report_name)


def _broken_pytest_run(ctx: CheckContext, reports: _Reports,
                       tool_run: ToolRun) -> CheckResult | None:
    """Return an ERROR result when pytest's exit code shows that the run itself went wrong."""
    exit_code = tool_run.exit_code
    if exit_code in _PYTEST_BROKEN:
        # A collection error exits 2 and still writes JUnit, so its cases are listed.
        return _result(Status.ERROR, f"pytest exited {exit_code} ({_PYTEST_BROKEN[exit_code]}): "
                       f"{_tail(tool_run)}", exit_code=exit_code, report=_read(reports.junit),
                       report_name=reports.report_name,
                       findings=_failed_findings(ctx, reports.junit))
    if exit_code not in (0, 1, _PYTEST_NO_TESTS):
        return _result(Status.ERROR, f"pytest exited {exit_code}, which is not one of its "
                       f"documented exit codes: {_tail(tool_run)}", exit_code=exit_code)
    return None


def _failed_findings(ctx: CheckContext, junit: Path | None) -> list[Finding]:
    """List the failed cases of a JUnit report that a broken run still wrote, if any."""
    if junit is None or not junit.is_file():
        return []
    try:
        return [_case_finding(case) for case in parse_junit(junit, ctx.project).failed_cases]
    except ReportError:
        return []


def _case_finding(case: FailedCase) -> Finding:
    verb = "failed" if case.outcome == "failure" else "errored"
    rule = "test-failed" if case.outcome == "failure" else "test-error"
    return Finding(case.file or _PROJECT, case.line, rule,
                   f"{case.test_id} {verb}: {case.message}")


def _exit_findings(tool_run: ToolRun | None, totals: JUnitTotals, pytest: bool) -> list[Finding]:
    """Return findings for runs where no test ran or the exit code contradicts the JUnit."""
    if totals.tests == 0 or (tool_run and pytest and tool_run.exit_code == _PYTEST_NO_TESTS):
        return [Finding(_PROJECT, None, "no-tests",
                        "no test ran; check the test command and where it collects tests")]

    failed = totals.failures + totals.errors
    if tool_run and tool_run.exit_code != 0 and failed == 0 and pytest:
        return [Finding(_PROJECT, None, "exit-code",
                        f"pytest exited {tool_run.exit_code} but the JUnit report lists no "
                        f"failed test: {_tail(tool_run)}")]
    return []


def _coverage(ctx: CheckContext, path: Path | None,
              findings: list[Finding]) -> tuple[CoverageTotals | None, str]:
    """Read the coverage report and append a finding when it misses the tier's threshold.

    Returns the totals (None when there is no usable report) and the summary's coverage part.
    """
    threshold = _TIER_THRESHOLDS.get(ctx.tier, ctx.settings["lite_threshold"])
    if path is None or not path.is_file():
        return None, f"no coverage report at {path or 'any path'}"
    try:
        totals = parse_coverage(path)
    except ReportError as error:
        return None, str(error)

    percent_text = _floor_percent(totals.percent)
    text = f"coverage {percent_text}% (threshold {threshold:g}%)"
    if totals.measured == 0:
        findings.append(Finding(_PROJECT, None, "coverage-empty",
                                "the coverage report measured no lines; check that "
                                "cov_source names the code the tests import"))
    elif totals.percent < threshold:
        findings.append(Finding(_PROJECT, None, "coverage-threshold",
                                f"line+branch coverage {percent_text}% is under the {ctx.tier} "
                                f"threshold of {threshold:g}%"))
    if ctx.tier.at_least(Tier.PROFESSIONAL) and totals.branch_measured is False:
        findings.append(Finding(_PROJECT, None, "coverage-branch",
                                f"the coverage report has no branch data; the {ctx.tier} tier "
                                f"requires line+branch coverage (coverage run --branch)"))
    return totals, text


def _floor_percent(percent: float) -> str:
    # Round down, so a value just under the threshold never prints as the threshold.
    return f"{math.floor(percent * 10) / 10:.1f}"


def _counts(totals: JUnitTotals) -> str:
    if totals.tests == 0:
        return "no test ran"
    parts = [f"{totals.passed} passed"]
    errors = "error" if totals.errors == 1 else "errors"
    for count, word in ((totals.failures, "failed"), (totals.errors, errors),
                        (totals.skipped, "skipped")):
        if count:
            parts.append(f"{count} {word}")
    return ", ".join(parts)


def _tail(tool_run: ToolRun | None, lines: int = 3, limit: int = 400) -> str:
    """Return the last lines of the run's stderr, or of stdout when stderr is empty."""
    if tool_run is None:
        return ""
    stream = tool_run.stderr if tool_run.stderr.strip() else tool_run.stdout
    text = stream.decode("utf-8", errors="replace")
    last_lines = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    tail = " / ".join(last_lines) or "no output"
    return tail if len(tail) <= limit else "..." + tail[-limit:]


def _read(path: Path | None) -> bytes:
    if path is None or not path.is_file():
        return b""
    return path.read_bytes()


def _result(status: Status, summary: str, **fields) -> CheckResult:
    return CheckResult(check=NAME, status=status, summary=summary, tool=TOOL,
                       tool_version=distribution_version(TOOL), **fields)

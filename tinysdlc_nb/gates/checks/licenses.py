"""The ``licenses`` check: the licenses of installed distributions against a deny list.

pip-licenses reads the license metadata of every distribution in the environment of the
``python`` setting. With ``scope = "dependencies"`` (the default) only the project's
dependency closure is judged: the requirements it declares, and the project itself when
it is installed, followed through the ``Requires-Dist`` metadata of what is installed.
``licenses_deps`` finds that closure and ``licenses_spdx`` turns metadata into SPDX.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from packaging.utils import canonicalize_name

from ...errors import ConfigError
from ...settings import Setting
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
from . import licenses_deps, licenses_spdx

log = logging.getLogger(__name__)

NAME = "licenses"
TOOL = "pip-licenses"

SETTINGS = (
    Setting("scope", str, "dependencies",
            "which distributions are judged: 'dependencies' is the dependency closure of the "
            "project (pyproject.toml, setup.cfg and the requirements files, followed through "
            "installed metadata); 'environment' is everything installed",
            choices=("dependencies", "environment")),
    Setting("python", str, "",
            "interpreter of the environment whose distributions are read, absolute or "
            "relative to the project (such as .venv/bin/python); empty means the "
            "interpreter running tinysdlc-nb"),
    Setting("deny", list, ["AGPL-*", "GPL-*", "SSPL-*"],
            "SPDX license id globs that fail the check, matched without regard to case. "
            "LGPL is not denied by default: its copyleft covers changes to the library "
            "itself, and importing an unmodified, separately installed LGPL distribution "
            "leaves the project's own license free; add 'LGPL-*' to deny it too"),
    Setting("allow", dict, {},
            "distributions accepted whatever their license, as a table of package name to "
            "the reason it is acceptable (such as mysql-connector = \"used only in the "
            "internal admin tool\"); an entry without a reason is a config error"),
    Setting("requirements", list, ["requirements.txt"],
            "requirements files, relative to the project, that declare dependencies; a "
            "listed file that does not exist is ignored"),
)

# The environment pip-licenses and the closure read: PYTHONPATH cleared, as pip-licenses
# itself does when it reads another interpreter's sys.path.
_TOOL_ENV = {"PYTHONPATH": "", "VIRTUAL_ENV": ""}


def run(ctx: CheckContext) -> CheckResult:
    """Judge the licenses of the project's dependencies (or of the whole environment)."""
    allow = _allow_list(ctx.settings["allow"])
    python = _interpreter(ctx)
    if not python.exists():
        return _result(Status.ERROR, f"[checks.licenses] python '{python}' was not found; set "
                       "it to the interpreter of the environment to audit.")

    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    try:
        environment = licenses_deps.probe(ctx, NAME, python, _TOOL_ENV)
    except licenses_deps.ProbeFailed as error:
        return _result(Status.ERROR, str(error))
    if ctx.settings["scope"] == "environment":
        selection = licenses_deps.whole_environment(environment)
    else:
        selection = licenses_deps.dependency_closure(ctx, environment,
                                                     ctx.settings["requirements"])
    if selection.skip_reason:
        return _result(Status.SKIPPED, selection.skip_reason)
    if selection.problem:
        return _result(Status.ERROR, selection.problem)

    require_distribution(NAME, TOOL)
    tool_run = run_tool(NAME, [*python_tool("piplicenses"), "--python", str(python),
                               "--format", "json", "--from", "all", "--with-system"],
                        cwd=ctx.work_dir, timeout_s=ctx.timeout_s, env=_TOOL_ENV)
    rows, problem = _parse_report(tool_run)
    if problem:
        return _result(Status.ERROR, problem, tool_run)

    findings = list(selection.findings)
    for audited in selection.distributions:
        finding = _judge_distribution(audited, rows, ctx.settings["deny"])
        if finding is not None:
            findings.append(_apply_allow(finding, audited.name, allow))
    return _judge(findings, len(selection.distributions), tool_run)


def validate(settings: dict) -> None:
    """Reject an allow-list entry without a reason when the config is loaded."""
    _allow_list(settings["allow"])


def _allow_list(raw: dict) -> dict[str, str]:
    """Return the allow-list by canonical name; raise ConfigError for an entry without reason."""
    allow = {}
    for package, reason in raw.items():
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError(
                f"[checks.licenses] allow: package '{package}' has no reason; write "
                f"allow.{package} = \"why its license is acceptable\" or remove the entry"
            )
        allow[canonicalize_name(package)] = " ".join(reason.split())
    return allow


def _interpreter(ctx: CheckContext) -> Path:
    configured = ctx.settings["python"].strip()
    if not configured:
        return Path(sys.executable)
    path = Path(configured).expanduser()
    return path if path.is_absolute() else ctx.project / path


def _parse_report(tool_run: ToolRun) -> tuple[dict[tuple[str, str], dict], str]:
    """Return pip-licenses' rows keyed by (canonical name, version), or why they are unusable."""
    if tool_run.exit_code != 0:
        return {}, (f"pip-licenses exited with code {tool_run.exit_code}: "
                    f"{output_tail(tool_run.stderr)}")
    try:
        rows = json.loads(tool_run.stdout)
    except json.JSONDecodeError as error:
        return {}, f"pip-licenses printed a report that is not JSON ({error})"
    if not isinstance(rows, list):
        return {}, "pip-licenses printed a JSON report that is not a list"
    return {(canonicalize_name(str(row.get("Name", ""))), str(row.get("Version", ""))): row
            for row in rows if isinstance(row, dict)}, ""


def _judge_distribution(audited: licenses_deps.Audited, rows: dict,
                        deny: list[str]) -> Finding | None:
    row = rows.get((audited.name, audited.version))
    if row is None:
        return audited.finding("no-license-data",
                               "pip-licenses reported nothing for this distribution")

    declared = licenses_spdx.read_license(str(row.get("License-Expression", "")),
                                          str(row.get("License-Metadata", "")),
                                          str(row.get("License-Classifier", "")))
    if not declared.text:
        return audited.finding("unknown-license",
                               "no license metadata (UNKNOWN); review its license by hand")
    if not declared.expression:
        return audited.finding(
            "unrecognised-license",
            f"license '{licenses_spdx.one_line(declared.text)}' ({declared.source}) is not "
            f"an SPDX expression or a known license name")

    verdict = licenses_spdx.judge(declared.expression, deny)
    if verdict.outcome == licenses_spdx.PERMITTED:
        return None
    described = f"license {declared.expression} (from {declared.source})"
    if verdict.outcome == licenses_spdx.DENIED:
        return audited.finding("denied-license",
                               f"{described} is denied: {', '.join(verdict.denied)}")
    return audited.finding(
        "unrecognised-license",
        f"{described} has ids missing from the SPDX list: {', '.join(verdict.unrecognised)}")


def _apply_allow(finding: Finding, name: str, allow: dict[str, str]) -> Finding:
    reason = allow.get(name)
    if reason is None or finding.rule == "not-installed":
        return finding
    return Finding(finding.file, finding.line, finding.rule, finding.message, finding.severity,
                   suppression=f"allow-listed: {reason}")


def _judge(findings: list[Finding], checked: int, tool_run: ToolRun) -> CheckResult:
    active = [finding for finding in findings if finding.suppression is None]
    allowed = len(findings) - len(active)

    summary = f"{plural(checked, 'distribution')} checked, {plural(len(active), 'finding')}"
    if allowed:
        summary += f", {allowed} allow-listed"
    findings = sorted(findings, key=lambda f: (f.file, f.line or 0, f.message))
    return _result(Status.FAIL if active else Status.PASS, summary + ".", tool_run, findings)


def _result(status: Status, summary: str, tool_run: ToolRun | None = None,
            findings: list[Finding] | None = None) -> CheckResult:
    return result_from_run(NAME, TOOL, status, summary, tool_run, findings, "licenses.json")

"""The ``dependencies`` check: audit the project's dependencies for known vulnerabilities.

pip-audit does the work. By default it audits the packages installed in the environment
under check, by passing that interpreter's site-packages folders with ``--path``. With the
``requirements`` setting it audits that file instead, and a fully pinned file is audited
with ``--no-deps --disable-pip`` so that nothing is installed.

A vulnerability service that cannot be reached must not read as a clean audit. pip-audit
exits 1 with a traceback when the connection fails, which looks like its "vulnerabilities
found" exit code, and it marks a dependency as skipped when PyPI returns 404 for it. The
check therefore reads the JSON report and stderr, not only the exit code.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sys
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ...settings import Setting
from ..model import CheckContext, CheckResult, Finding, Status
from ..tool import ToolRun, distribution_version, python_tool, run_tool
from . import licenses_deps

log = logging.getLogger(__name__)

NAME = "dependencies"
TOOL = "pip-audit"

SETTINGS = (
    Setting("python", str, "",
            "interpreter of the environment whose installed packages are audited; empty "
            "means the interpreter running tinysdlc-nb"),
    Setting("scope", str, "dependencies",
            "what to audit: 'dependencies' (the project's declared dependencies and what they "
            "require, at their installed versions, the same set the licenses check reads) or "
            "'environment' (every package installed for the interpreter)",
            choices=("dependencies", "environment")),
    Setting("requirements", str, "",
            "requirements file to audit instead, relative to the project"),
    Setting("service", str, "pypi", "vulnerability service pip-audit queries",
            choices=("pypi", "osv")),
    Setting("cache_dir", str, "",
            "HTTP cache folder for pip-audit (--cache-dir); empty means pip's own cache"),
    Setting("env", dict, {},
            "extra environment variables for pip-audit, such as HTTPS_PROXY and "
            "REQUESTS_CA_BUNDLE for a proxy with its own CA; requests prefers https_proxy "
            "over HTTPS_PROXY when both are set, so set the spelling the machine uses"),
)

# Findings about installed packages have no file, so they name the environment.
ENVIRONMENT = "environment"

# Lines of pip-audit's stderr that show the vulnerability service was not reached.
_UNREACHABLE = re.compile(
    r"ConnectionError|ProxyError|SSLError|ConnectTimeout|ReadTimeout|NameResolutionError"
    r"|Max retries exceeded|Could not connect to|Connection refused"
    r"|HTTPError: (?:429|5\d\d) ")

_HOST = re.compile(r"host='([^']+)'")
_CAUSE = re.compile(r"\[Errno -?\d+\] [^'\"()]+|Failed to resolve '[^']+'")

# Requirement lines that pull in content this check cannot read as pins.
_UNPINNABLE_OPTIONS = ("-r", "--requirement", "-c", "--constraint", "-e", "--editable")


class _SourceError(ValueError):
    """The settings do not name something pip-audit can audit."""


class _NothingToAudit(ValueError):
    """The project declares no dependencies, so there is nothing to audit."""


def run(ctx: CheckContext) -> CheckResult:
    """Run pip-audit over the environment or requirements file and judge its report."""
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    output = ctx.work_dir / "pip-audit.json"
    output.unlink(missing_ok=True)

    try:
        extra_env = _extra_environment(ctx.settings["env"])
        source_args, label, lines = _source(ctx)
    except _SourceError as error:
        return _result(Status.ERROR, str(error))
    except _NothingToAudit as skipped:
        return _result(Status.SKIPPED, str(skipped))

    argv = python_tool("pip_audit") + source_args + [
        "--format", "json", "--output", str(output),
        "--vulnerability-service", ctx.settings["service"], "--progress-spinner", "off"]
    if ctx.settings["cache_dir"]:
        argv += ["--cache-dir", str(ctx.project / ctx.settings["cache_dir"])]

    tool_run = run_tool(NAME, argv, cwd=ctx.project, timeout_s=ctx.timeout_s, env=extra_env)
    report = output.read_bytes() if output.is_file() else b""
    if not report:
        return _no_report(ctx, tool_run)
    return _judge(ctx, tool_run, report, label, lines)


def _extra_environment(configured: dict) -> dict[str, str]:
    invalid = [key for key, value in configured.items() if not isinstance(value, str)]
    if invalid:
        raise _SourceError(f"setting env: values of {', '.join(sorted(invalid))} are invalid; "
                           f"expected strings")
    return dict(configured)


def _source(ctx: CheckContext) -> tuple[list[str], str, dict[str, int]]:
    """Return pip-audit's source arguments, the findings' file and requirement line numbers."""
    if ctx.settings["requirements"]:
        return _requirements_source(ctx)
    if ctx.settings["scope"] == "dependencies":
        return _closure_source(ctx)
    return _environment_source(ctx), ENVIRONMENT, {}


def _closure_source(ctx: CheckContext) -> tuple[list[str], str, dict[str, int]]:
    """Pin the project's dependency closure at its installed versions and audit that file."""
    interpreter = _interpreter(ctx.settings["python"])
    if interpreter is None:
        raise _SourceError(f"setting python '{ctx.settings['python']}' was not found; set "
                           f"[checks.dependencies] python to the interpreter of the "
                           f"environment to audit")
    try:
        environment = licenses_deps.probe(ctx, NAME, Path(interpreter),
                                          {"PYTHONPATH": "", "VIRTUAL_ENV": ""})
    except licenses_deps.ProbeFailed as error:
        raise _SourceError(str(error)) from error
    selection = licenses_deps.dependency_closure(ctx, environment)
    if selection.skip_reason:
        raise _NothingToAudit(selection.skip_reason)
    if selection.problem:
        raise _SourceError(selection.problem)
    if not selection.distributions and selection.findings:
        raise _SourceError("none of the project's declared dependencies is installed for the "
                           "audited interpreter; install them there or set "
                           "[checks.dependencies] python")
    if not selection.distributions:
        raise _NothingToAudit("The project declares no dependencies, so there is nothing "
                              "to audit.")

    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    pinned = ctx.work_dir / "dependency-closure.txt"
    pinned.write_text("".join(f"{item.name}=={item.version}\n"
                              for item in selection.distributions), encoding="utf-8")
    files = {item.file for item in selection.distributions}
    label = files.pop() if len(files) == 1 else "dependencies"
    lines = {item.name: item.line for item in selection.distributions
             if item.line is not None and item.file == label}
    return ["--requirement", str(pinned), "--no-deps", "--disable-pip"], label, lines


def _requirements_source(ctx: CheckContext) -> tuple[list[str], str, dict[str, int]]:
    path = ctx.project / ctx.settings["requirements"]
    if not path.is_file():
        raise _SourceError(f"requirements file '{ctx.settings['requirements']}' was not found "
                           f"in {ctx.project}; fix [checks.dependencies] requirements")

    pinned, lines = read_requirements(path)
    args = ["--requirement", str(path)]
    if pinned:
        args += ["--no-deps", "--disable-pip"]
    else:
        log.info("check dependencies: %s is not fully pinned; pip-audit will resolve it "
                 "with pip", path)
    return args, ctx.relative(path), lines


def read_requirements(path: Path) -> tuple[bool, dict[str, int]]:
    """Read a requirements file: whether every requirement is pinned with ``==``, and lines.

    The second value maps each canonical project name to its 1-based line number. A file
    that includes another file (``-r``, ``-c``) or an editable install is not fully pinned.
    Hash options (``--hash``) and index options are allowed.
    """
    pinned = True
    lines: dict[str, int] = {}
    for number, text in _logical_lines(path.read_text(encoding="utf-8")):
        if text.startswith(_UNPINNABLE_OPTIONS):
            pinned = False
            continue
        if text.startswith("-"):
            continue

        words = [word for word in text.split() if not word.startswith("--hash")]
        try:
            requirement = Requirement(" ".join(words))
        except InvalidRequirement:
            pinned = False
            continue
        lines.setdefault(canonicalize_name(requirement.name), number)
        if not _is_pin(requirement):
            pinned = False
    return pinned, lines


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join backslash continuations and drop comments, keeping each line's first number."""
    logical: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined = (pending + line).strip()
        pending = ""
        if joined:
            logical.append((start, joined))
    return logical


def _is_pin(requirement: Requirement) -> bool:
    specifiers = list(requirement.specifier)
    return (requirement.url is None and len(specifiers) == 1
            and specifiers[0].operator in ("==", "===") and "*" not in specifiers[0].version)


def _environment_source(ctx: CheckContext) -> list[str]:
    """Return ``--path`` arguments for the site-packages folders of the configured interpreter."""
    interpreter = _interpreter(ctx.settings["python"])
    if interpreter is None:
        raise _SourceError(f"setting python '{ctx.settings['python']}' was not found; set "
                           f"[checks.dependencies] python to the interpreter of the "
                           f"environment to audit")

    script = ("import json, sysconfig; paths = sysconfig.get_paths(); "
              "print(json.dumps(sorted({paths['purelib'], paths['platlib']})))")
    query = run_tool(NAME, [interpreter, "-c", script], cwd=ctx.project,
                     timeout_s=ctx.timeout_s)
    if query.exit_code != 0:
        raise _SourceError(f"{interpreter} could not report its site-packages folders "
                           f"(exit {query.exit_code}): {_tail(query.stderr)}")

    folders = [folder for folder in json.loads(query.stdout) if Path(folder).is_dir()]
    if not folders:
        raise _SourceError(f"{interpreter} has no site-packages folder to audit")
    return [argument for folder in folders for argument in ("--path", folder)]


def _interpreter(configured: str) -> str | None:
    if not configured:
        return sys.executable
    if "/" not in configured:
        return shutil.which(configured)
    return configured if Path(configured).exists() else None


def _no_report(ctx: CheckContext, tool_run: ToolRun) -> CheckResult:
    """Explain a run that wrote no JSON: an unreachable service, or a crash."""
    stderr = tool_run.stderr.decode("utf-8", errors="replace")
    unreachable = [line for line in stderr.splitlines() if _UNREACHABLE.search(line)]
    if unreachable:
        reason = _unreachable_reason(unreachable[-1])
        log.warning("check dependencies: the %s service was not reached: %s",
                    ctx.settings["service"], reason)
        return _result(Status.UNAVAILABLE,
                       f"pip-audit could not reach the {ctx.settings['service']} vulnerability "
                       f"service: {reason}", exit_code=tool_run.exit_code)
    return _result(Status.ERROR, f"pip-audit exited {tool_run.exit_code} without a report: "
                   f"{_tail(tool_run.stderr)}", exit_code=tool_run.exit_code)


def _unreachable_reason(line: str) -> str:
    """Shorten a requests exception line to its exception name, host and root cause."""
    exception = line.split(":", 1)[0].rsplit(".", 1)[-1].strip()
    host = _HOST.search(line)
    causes = _CAUSE.findall(line)
    if host and causes:
        return f"{exception} for {host.group(1)}: {causes[-1].strip()}"
    return line.strip()[-300:]


def _judge(ctx: CheckContext, tool_run: ToolRun, report: bytes, label: str,
           lines: dict[str, int]) -> CheckResult:
    fields = {"exit_code": tool_run.exit_code, "report": report,
              "report_name": "pip-audit.json"}
    try:
        dependencies = json.loads(report)["dependencies"]
    except (ValueError, KeyError, TypeError) as error:
        return _result(Status.ERROR, f"pip-audit wrote a report without a dependency list: "
                       f"{error!r}", **fields)

    vulnerable = [finding for dependency in dependencies
                  for finding in _vulnerability_findings(dependency, label, lines)]
    skipped = [Finding(label, lines.get(dependency["name"]), "not-audited",
                       dependency["skip_reason"], severity="note")
               for dependency in dependencies if "skip_reason" in dependency]
    total, service = len(dependencies), ctx.settings["service"]
    not_audited = f"; {len(skipped)} could not be audited" if skipped else ""

    if tool_run.exit_code not in (0, 1) or (tool_run.exit_code == 1 and not vulnerable):
        return _result(Status.ERROR, f"pip-audit exited {tool_run.exit_code} with "
                       f"{len(vulnerable)} vulnerabilities in its report: "
                       f"{_tail(tool_run.stderr)}", findings=skipped, **fields)
    # A known vulnerability fails the item even when most dependencies were not audited.
    if vulnerable:
        packages = sum(1 for dependency in dependencies if dependency.get("vulns"))
        return _result(Status.FAIL, f"{_plural(len(vulnerable), 'known vulnerability')} in "
                       f"{packages} of {_plural(total, 'dependency')}{not_audited}",
                       findings=vulnerable + skipped, **fields)
    if skipped and len(skipped) * 2 > total:
        log.warning("check dependencies: %d of %d dependencies could not be audited against %s",
                    len(skipped), total, service)
        return _result(Status.UNAVAILABLE, f"{len(skipped)} of {_plural(total, 'dependency')} "
                       f"could not be audited against {service}, for example: "
                       f"{skipped[0].message}", findings=skipped, **fields)
    return _result(Status.PASS, f"{_plural(total - len(skipped), 'dependency')} audited "
                   f"against {service}, no known vulnerabilities{not_audited}",
                   findings=skipped, **fields)


def _vulnerability_findings(dependency: dict, label: str,
                            lines: dict[str, int]) -> list[Finding]:
    findings = []
    for vulnerability in dependency.get("vulns", []):
        # pip-audit keeps aliases in a set, so their order changes from run to run.
        aliases = sorted(vulnerability.get("aliases", []))
        cves = [alias for alias in aliases if alias.startswith("CVE-")]
        fixes = vulnerability.get("fix_versions", [])
        fixed = f"fixed in {', '.join(fixes)}" if fixes else "no fixed version"
        also = f" ({', '.join(aliases)})" if aliases else ""
        findings.append(Finding(
            label, lines.get(dependency["name"]), cves[0] if cves else vulnerability["id"],
            f"{dependency['name']} {dependency['version']}: {vulnerability['id']}{also}; "
            f"{fixed}"))
    return findings


def _plural(count: int, noun: str) -> str:
    if count == 1:
        return f"1 {noun}"
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{count} {plural}"


def _tail(stream: bytes, lines: int = 3, limit: int = 400) -> str:
    text = stream.decode("utf-8", errors="replace")
    last_lines = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    tail = " / ".join(last_lines) or "no output"
    return tail if len(tail) <= limit else "..." + tail[-limit:]


def _result(status: Status, summary: str, **fields) -> CheckResult:
    return CheckResult(check=NAME, status=status, summary=summary, tool=TOOL,
                       tool_version=distribution_version(TOOL), **fields)

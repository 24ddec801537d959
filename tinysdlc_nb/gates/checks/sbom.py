"""The ``sbom`` check: a CycloneDX SBOM of what the project ships with.

With the default ``scope = "dependencies"`` the project's dependency closure (the set the
licenses and dependencies checks read) is pinned at its installed versions and
``cyclonedx-py requirements`` describes that file; every line is pinned, so the tool needs
no package index. ``scope = "environment"`` runs ``cyclonedx-py environment`` over every
distribution installed for the interpreter of the ``python`` setting, with the dependency
graph read from local metadata. With a PEP 621 ``pyproject.toml`` the project is recorded
as the SBOM's root component.
"""

from __future__ import annotations

import json
import logging
import sys
import tomllib
from pathlib import Path

from ...settings import Setting
from ..model import CheckContext, CheckResult, Finding, Status, Tier
from ..tool import (
    ToolRun,
    distribution_version,
    output_tail,
    python_tool,
    require_distribution,
    run_tool,
)
from . import licenses_deps

log = logging.getLogger(__name__)

NAME = "sbom"
TOOL = "cyclonedx-bom"

SETTINGS = (
    Setting("python", str, "",
            "interpreter of the environment the SBOM describes, absolute or relative to the "
            "project (such as .venv/bin/python); empty means the interpreter running "
            "tinysdlc-nb"),
    Setting("scope", str, "dependencies",
            "what the SBOM lists: 'dependencies' (the project's declared dependencies and what "
            "they require, as installed) or 'environment' (everything installed for the "
            "interpreter)", choices=("dependencies", "environment")),
    Setting("spec_version", str, "1.6", "CycloneDX specification version of the SBOM",
            choices=("1.4", "1.5", "1.6", "1.7")),
)

REPORT_NAME = "sbom.cdx.json"

# The SBOM is evidence only from this tier up.
_REQUIRED_FROM = Tier.PROFESSIONAL


def run(ctx: CheckContext) -> CheckResult:
    """Write a CycloneDX JSON SBOM of the environment and check that it lists components."""
    if not ctx.tier.at_least(_REQUIRED_FROM):
        return _result(Status.SKIPPED, f"An SBOM is required at the professional and "
                       f"enterprise tiers; this gate runs at the {ctx.tier.value} tier.")

    python = _interpreter(ctx)
    if not python.exists():
        return _result(Status.ERROR, f"[checks.sbom] python '{python}' was not found; set it "
                       "to the interpreter of the environment the SBOM describes.")

    require_distribution(NAME, TOOL)
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    output = ctx.work_dir / REPORT_NAME
    output.unlink(missing_ok=True)

    source = ["environment", str(python)]
    if ctx.settings["scope"] == "dependencies":
        pins, problem = _closure_pins(ctx, python)
        if problem:
            return _result(Status.ERROR, problem)
        source = ["requirements", str(pins)]

    tool_run = run_tool(NAME, _argv(ctx, source, output), cwd=ctx.work_dir,
                        timeout_s=ctx.timeout_s)
    if tool_run.exit_code != 0:
        return _result(Status.ERROR, f"cyclonedx-py exited with code {tool_run.exit_code}: "
                       f"{output_tail(tool_run.stderr)}", tool_run)

    return _judge(ctx, output, tool_run)


def _interpreter(ctx: CheckContext) -> Path:
    configured = ctx.settings["python"].strip()
    if not configured:
        return Path(sys.executable)
    path = Path(configured).expanduser()
    return path if path.is_absolute() else ctx.project / path


def _closure_pins(ctx: CheckContext, python: Path) -> tuple[Path | None, str]:
    """Write the project's dependency closure as ``name==version`` lines; return the file."""
    try:
        environment = licenses_deps.probe(ctx, NAME, python, {"PYTHONPATH": "",
                                                              "VIRTUAL_ENV": ""})
    except licenses_deps.ProbeFailed as error:
        return None, str(error)
    selection = licenses_deps.dependency_closure(ctx, environment)
    if selection.problem:
        return None, selection.problem
    missing = [finding for finding in selection.findings if finding.rule == "not-installed"]
    if missing:
        return None, (f"{len(missing)} declared dependencies are not installed for "
                      f"{_python_label(ctx)}, so the SBOM would be incomplete: "
                      f"{missing[0].message}; install them or set [checks.sbom] python")
    pins = ctx.work_dir / "sbom-requirements.txt"
    pins.write_text("".join(f"{item.name}=={item.version}\n"
                            for item in selection.distributions), encoding="utf-8")
    return pins, ""


def _argv(ctx: CheckContext, source: list[str], output: Path) -> list[str]:
    # --output-reproducible leaves out the timestamp and serial number, so the same
    # environment gives the same bytes and the same evidence hash on every run.
    argv = [*python_tool("cyclonedx_py"), source[0], "--output-format", "JSON",
            "--spec-version", ctx.settings["spec_version"], "--output-reproducible",
            "--validate", "--output-file", str(output)]
    pyproject = ctx.project / "pyproject.toml"
    if _has_project_table(pyproject):
        argv += ["--pyproject", str(pyproject)]
    return [*argv, source[1]]


def _has_project_table(pyproject: Path) -> bool:
    """Return True when pyproject.toml has a PEP 621 ``[project]`` table with a name."""
    if not pyproject.is_file():
        return False
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        log.warning("check sbom: pyproject.toml is not valid TOML, so the SBOM has no root "
                    "component: %s", error)
        return False
    return isinstance(project, dict) and bool(project.get("name"))


def _judge(ctx: CheckContext, output: Path, tool_run: ToolRun) -> CheckResult:
    try:
        report = output.read_bytes()
    except OSError as error:
        return _result(Status.ERROR, f"cyclonedx-py exited with code 0 but wrote no SBOM "
                       f"({error}): {output_tail(tool_run.stderr)}", tool_run)
    try:
        bom = json.loads(report)
    except json.JSONDecodeError as error:
        return _result(Status.ERROR, f"cyclonedx-py wrote an SBOM that is not JSON: {error}",
                       tool_run, report=report)

    version = ctx.settings["spec_version"]
    is_cyclonedx = isinstance(bom, dict) and bom.get("bomFormat") == "CycloneDX"
    if not is_cyclonedx or bom.get("specVersion") != version:
        return _result(Status.ERROR, f"cyclonedx-py wrote JSON that is not a CycloneDX "
                       f"{version} SBOM", tool_run, report=report)

    components = bom.get("components") or []
    if not components and ctx.settings["scope"] == "dependencies":
        return _result(Status.PASS, f"The project declares no installed dependencies, so the "
                       f"SBOM lists only the project itself (CycloneDX {version}).", tool_run,
                       report=report)
    if not components:
        finding = Finding(".", None, "no-components",
                          f"the SBOM of {_python_label(ctx)} lists no components; point "
                          f"[checks.sbom] python at the environment the project runs in",
                          "error")
        return _result(Status.FAIL, "The SBOM lists no components.", tool_run, [finding],
                       report)
    noun = "component" if len(components) == 1 else "components"
    return _result(Status.PASS, f"The SBOM lists {len(components)} {noun} (CycloneDX "
                   f"{version}).", tool_run, report=report)


def _python_label(ctx: CheckContext) -> str:
    return ctx.settings["python"].strip() or "the interpreter running tinysdlc-nb"


def _result(status: Status, summary: str, tool_run: ToolRun | None = None,
            findings: list[Finding] | None = None, report: bytes = b"") -> CheckResult:
    return CheckResult(
        check=NAME, status=status, summary=summary, tool=TOOL,
        tool_version=distribution_version(TOOL), findings=findings or [],
        exit_code=tool_run.exit_code if tool_run else None, report=report,
        report_name=REPORT_NAME if report else "",
    )

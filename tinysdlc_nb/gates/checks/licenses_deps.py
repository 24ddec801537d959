"""The distributions the licenses check judges: the project's dependency closure, or all.

The closure starts from the requirements the project declares (``[project] dependencies``
in pyproject.toml, ``install_requires`` in setup.cfg, requirements files) and from the
project itself when it is installed, and follows the ``Requires-Dist`` metadata of each
installed distribution. Environment markers are evaluated for the audited interpreter,
which may differ from the one running this code, so its marker values are probed first.
"""

from __future__ import annotations

import configparser
import email.parser
import json
import logging
import tomllib
from collections import deque
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.markers import UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..model import CheckContext, Finding
from ..tool import run_tool

log = logging.getLogger(__name__)

# Prints the interpreter's sys.path and its PEP 508 marker values. It imports only the
# standard library, because the audited environment may have nothing else installed.
_PROBE = """\
import json, os, platform, sys
info = sys.implementation.version
version = f"{info.major}.{info.minor}.{info.micro}"
if info.releaselevel != "final":
    version += info.releaselevel[0] + str(info.serial)
print(json.dumps({"sys_path": [entry for entry in sys.path if entry], "markers": {
    "implementation_name": sys.implementation.name, "implementation_version": version,
    "os_name": os.name, "platform_machine": platform.machine(),
    "platform_release": platform.release(), "platform_system": platform.system(),
    "platform_version": platform.version(), "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform}}))
"""

# Findings about the environment as a whole name the project root.
_PROJECT = "."


@dataclass(frozen=True)
class Environment:
    """The audited interpreter: its marker values and installed distributions by name."""

    markers: dict[str, str]
    distributions: dict[str, metadata.Distribution]


@dataclass(frozen=True)
class Audited:
    """One distribution to judge, with the declaration that brought it in.

    ``file`` and ``line`` point at the requirement the project declares; ``chain`` lists
    the distributions between that requirement and this one.
    """

    name: str
    display_name: str
    version: str
    file: str
    line: int | None
    chain: tuple[str, ...] = ()

    def finding(self, rule: str, message: str) -> Finding:
        via = f" (required through {' -> '.join(self.chain)})" if self.chain else ""
        return Finding(self.file, self.line, rule,
                       f"{self.display_name} {self.version}: {message}{via}", "error")


@dataclass
class Selection:
    """The distributions to judge and the findings raised while selecting them.

    ``skip_reason`` is set when the project declares no dependencies at all, and
    ``problem`` when its dependencies cannot be read.
    """

    distributions: list[Audited] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    skip_reason: str = ""
    problem: str = ""


@dataclass(frozen=True)
class _Root:
    requirement: Requirement
    file: str
    line: int | None


class ProbeFailed(Exception):
    """The audited interpreter could not report its sys.path and marker values."""


def probe(ctx: CheckContext, check: str, python: Path, env: dict[str, str]) -> Environment:
    """Read the marker values and installed distributions of ``python``."""
    tool_run = run_tool(check, [str(python), "-c", _PROBE], cwd=ctx.work_dir,
                        timeout_s=ctx.timeout_s, env=env)
    stderr = tool_run.stderr.decode("utf-8", errors="replace").strip()
    try:
        probed = json.loads(tool_run.stdout) if tool_run.exit_code == 0 else None
    except json.JSONDecodeError:
        probed = None
    if probed is None:
        raise ProbeFailed(f"{python} could not report its sys.path (exit code "
                          f"{tool_run.exit_code}): {' '.join(stderr[-400:].split())}")

    distributions: dict[str, metadata.Distribution] = {}
    for distribution in metadata.distributions(path=probed["sys_path"]):
        name = distribution.metadata["Name"]
        if name:
            distributions.setdefault(canonicalize_name(name), distribution)
    return Environment(probed["markers"], distributions)


def whole_environment(environment: Environment) -> Selection:
    """Select every installed distribution; the first one on sys.path wins a name."""
    audited = [Audited(name, dist.metadata["Name"], dist.version, _PROJECT, None)
               for name, dist in sorted(environment.distributions.items())]
    return Selection(distributions=audited)


def dependency_closure(ctx: CheckContext, environment: Environment,
                       requirement_files: list[str] | None = None) -> Selection:
    """Select the project's declared requirements and everything they require, installed.

    ``requirement_files`` are read besides pyproject.toml and setup.cfg; the default is
    ``requirements.txt`` when it exists.
    """
    selection = Selection()
    files = requirement_files if requirement_files is not None else ["requirements.txt"]
    roots = _declared_roots(ctx, environment, selection, files)
    if selection.skip_reason or selection.problem:
        return selection

    queue = deque((root, root.requirement, ()) for root in roots)
    expanded: dict[str, set[str]] = {}
    missing: set[str] = set()
    while queue:
        root, requirement, chain = queue.popleft()
        name = canonicalize_name(requirement.name)
        distribution = environment.distributions.get(name)
        if distribution is None:
            if name not in missing:
                missing.add(name)
                selection.findings.append(_not_installed(root, requirement, chain))
            continue

        extras = {canonicalize_name(extra) for extra in requirement.extras}
        if name in expanded and extras <= expanded[name]:
            continue
        if name not in expanded:
            selection.distributions.append(Audited(name, distribution.metadata["Name"],
                                                   distribution.version, root.file, root.line,
                                                   chain))
        expanded.setdefault(name, set()).update(extras)

        for child in _requires(distribution):
            if _applies(child, environment.markers, expanded[name]):
                queue.append((root, child, (*chain, distribution.metadata["Name"])))
    return selection


def _declared_roots(ctx: CheckContext, environment: Environment, selection: Selection,
                    requirement_files: list[str]) -> list[_Root]:
    roots: list[_Root] = []
    declared, name, dynamic = _read_pyproject(ctx, roots, selection)
    setup_declared, setup_name = _read_setup_cfg(ctx, roots, selection)
    if selection.problem:
        return []
    name = name or setup_name
    declared = declared or setup_declared
    files_read = False
    for relative in requirement_files:
        path = ctx.project / relative
        if path.is_file():
            files_read = True
            _read_requirements(ctx, path, roots, selection, seen=set())

    installed = name is not None and canonicalize_name(name) in environment.distributions
    if installed:
        manifest = "pyproject.toml" if (ctx.project / "pyproject.toml").is_file() else "setup.cfg"
        roots.append(_Root(Requirement(canonicalize_name(name)), manifest,
                           _line_of(ctx.project / manifest, name)))

    has_setup_py = (ctx.project / "setup.py").is_file()
    computed = dynamic or (has_setup_py and not declared)
    if computed and not installed and not files_read:
        files_read = _read_pkg_info(ctx, roots, selection)
    if computed and not installed and not files_read:
        selection.problem = (
            "The project's dependencies are computed at build time (setup.py or dynamic "
            "dependencies in pyproject.toml), the project is not installed in the audited "
            "environment and no requirements file was found; install it there "
            "(pip install -e .), list a requirements file or set scope = 'environment'."
        )
    elif not (declared or files_read or installed):
        selection.skip_reason = ("No Python dependency declarations found (pyproject.toml, "
                                 "setup.cfg or the requirements files).")
    return [root for root in roots if _applies(root.requirement, environment.markers, set())]


def _read_pkg_info(ctx: CheckContext, roots: list[_Root], selection: Selection) -> bool:
    """Add the ``Requires-Dist`` lines of an sdist's PKG-INFO; return True when it has any.

    A source distribution carries its built metadata in PKG-INFO, so a project whose
    setup.py computes its dependencies still lists them there once released.
    """
    path = ctx.project / "PKG-INFO"
    if not path.is_file():
        return False
    headers = email.parser.Parser().parsestr(path.read_text(encoding="utf-8", errors="replace"),
                                             headersonly=True)
    requirements = headers.get_all("Requires-Dist") or []
    for text in requirements:
        _add_root(ctx, path, text, _line_of(path, text), roots, selection)
    return bool(requirements)


def _read_pyproject(ctx: CheckContext, roots: list[_Root],
                    selection: Selection) -> tuple[bool, str | None, bool]:
    """Add pyproject.toml's dependencies; return (declares them, project name, dynamic)."""
    path = ctx.project / "pyproject.toml"
    if not path.is_file():
        return False, None, False
    try:
        project = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        selection.problem = f"pyproject.toml is not valid TOML: {error}"
        return False, None, False
    if not project:
        return False, None, False

    dynamic = "dependencies" in project.get("dynamic", [])
    for text in project.get("dependencies", []):
        _add_root(ctx, path, text, _line_of(path, text), roots, selection)
    return not dynamic, project.get("name"), dynamic


def _read_setup_cfg(ctx: CheckContext, roots: list[_Root],
                    selection: Selection) -> tuple[bool, str | None]:
    """Add setup.cfg's install_requires; return (declares them, project name)."""
    path = ctx.project / "setup.cfg"
    if not path.is_file():
        return False, None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as error:
        selection.problem = f"setup.cfg could not be read: {error}"
        return False, None

    name = parser.get("metadata", "name", fallback="").strip() or None
    if not parser.has_option("options", "install_requires"):
        return False, name
    value = parser.get("options", "install_requires").strip()
    if value.startswith("file:"):
        for relative in value[len("file:"):].split(","):
            _read_requirements(ctx, path.parent / relative.strip(), roots, selection, set())
        return True, name

    for text in filter(None, (line.strip() for line in value.splitlines())):
        _add_root(ctx, path, text, _line_of(path, text), roots, selection)
    return True, name


def _read_requirements(ctx: CheckContext, path: Path, roots: list[_Root],
                       selection: Selection, seen: set[Path]) -> None:
    """Add the requirements of a pip requirements file, following ``-r`` includes."""
    if path.resolve() in seen or not path.is_file():
        return
    seen.add(path.resolve())

    text = path.read_text(encoding="utf-8", errors="replace").replace("\\\n", "")
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ", "--requirement=")):
            include = line.split("=", 1)[1] if "=" in line else line.split(None, 1)[1]
            _read_requirements(ctx, path.parent / include.strip(), roots, selection, seen)
        elif line.startswith("-") or line.startswith((".", "/")) or "://" in line.split("@")[0]:
            log.info("check licenses: %s:%s: not a named requirement, skipped: %s",
                     ctx.relative(path), number, line)
        else:
            _add_root(ctx, path, line.split(" --", 1)[0].strip(), number, roots, selection)


def _add_root(ctx: CheckContext, path: Path, text: str, line: int | None, roots: list[_Root],
              selection: Selection) -> None:
    try:
        roots.append(_Root(Requirement(text), ctx.relative(path), line))
    except InvalidRequirement as error:
        selection.findings.append(Finding(
            ctx.relative(path), line, "invalid-requirement",
            f"requirement '{text}' is invalid, so its license is not checked: {error}", "error"))


def _requires(distribution: metadata.Distribution) -> list[Requirement]:
    requirements = []
    for text in distribution.requires or []:
        try:
            requirements.append(Requirement(text))
        except InvalidRequirement as error:
            log.warning("check licenses: %s declares an invalid requirement %r: %s",
                        distribution.metadata["Name"], text, error)
    return requirements


def _applies(requirement: Requirement, markers: dict[str, str], extras: set[str]) -> bool:
    """Return True when the requirement's marker holds for the interpreter and any extra."""
    if requirement.marker is None:
        return True
    for extra in {"", *extras}:
        try:
            if requirement.marker.evaluate({**markers, "extra": extra}):
                return True
        except (UndefinedComparison, UndefinedEnvironmentName) as error:
            log.warning("check licenses: marker of %s cannot be evaluated (%s); it is followed",
                        requirement, error)
            return True
    return False


def _not_installed(root: _Root, requirement: Requirement, chain: tuple[str, ...]) -> Finding:
    via = f" (required through {' -> '.join(chain)})" if chain else ""
    return Finding(root.file, root.line, "not-installed",
                   f"{requirement.name} is required but not installed in the audited "
                   f"environment, so its license cannot be read{via}", "error")


def _line_of(path: Path, needle: str) -> int | None:
    """Return the 1-based number of the first line of ``path`` containing ``needle``."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return next((number for number, line in enumerate(lines, start=1) if needle in line), None)

"""Facts about the project under a gate: its name and the version being released."""

from __future__ import annotations

import configparser
import email.parser
import re
import tomllib
from pathlib import Path

UNVERSIONED = "unversioned"
_VERSION_ASSIGN = re.compile(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)


def detect_version(project: Path) -> str:
    """Return the project's version from pyproject.toml, setup.cfg, PKG-INFO or __version__.

    Returns ``unversioned`` when none of them names a static version; pass --version then.
    """
    for reader in (_from_pyproject, _from_setup_cfg, _from_pkg_info, _from_version_attribute):
        version = reader(project)
        if version:
            return version
    return UNVERSIONED


def _from_pyproject(project: Path) -> str | None:
    path = project / "pyproject.toml"
    if not path.is_file():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    version = data.get("project", {}).get("version") or \
        data.get("tool", {}).get("poetry", {}).get("version")
    return str(version) if version else None


def _from_setup_cfg(project: Path) -> str | None:
    path = project / "setup.cfg"
    if not path.is_file():
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error:
        return None
    version = parser.get("metadata", "version", fallback="")
    return version if version and not version.startswith(("attr:", "file:")) else None


def _from_pkg_info(project: Path) -> str | None:
    path = project / "PKG-INFO"
    if not path.is_file():
        return None
    headers = email.parser.Parser().parsestr(path.read_text(encoding="utf-8", errors="replace"),
                                             headersonly=True)
    return headers.get("Version")


def _from_version_attribute(project: Path) -> str | None:
    candidates = sorted(project.glob("*/__version__.py")) + sorted(project.glob("*/__init__.py"))
    candidates += sorted(project.glob("src/*/__version__.py"))
    candidates += sorted(project.glob("src/*/__init__.py"))
    for path in candidates:
        match = _VERSION_ASSIGN.search(path.read_text(encoding="utf-8", errors="replace"))
        if match:
            return match.group(1)
    return None

"""Facts about the project under a gate: its name and the version being released."""

from __future__ import annotations

import configparser
import email.parser
import re
import tomllib
from pathlib import Path

from .errors import UsageError

UNVERSIONED = "unversioned"
# Versions name report folders and key records, so they stay one plain path segment.
_VERSION_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]{0,99}")
_VERSION_ASSIGN = re.compile(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)


def resolve_version(project: Path, requested: str | None) -> str:
    """Return ``requested`` or the detected version, checked to be one safe path segment.

    Raises UsageError for a version with a slash, whitespace or other characters that
    would leave the reports folder or split a command line, and when none is found.
    """
    if requested is not None and not isinstance(requested, str):
        raise UsageError(f"version {requested!r} is a number, not text (papermill's -p reads "
                         f"1.0 as a number); pass it as text with -r version {requested}")
    version = requested if requested is not None else detect_version(project)
    if requested is None and version == UNVERSIONED:
        raise UsageError(f"no version found in {project} (pyproject.toml, setup.cfg, PKG-INFO "
                         f"or __version__); pass --version with the release being gated")
    if not _VERSION_SHAPE.fullmatch(version):
        raise UsageError(f"version {version!r} is invalid; use letters, digits and . _ + ! - "
                         f"only, starting with a letter or digit (for example 1.4.0 or "
                         f"1.4.0rc1)")
    return version


def project_name(project: Path) -> str | None:
    """Return the distribution name declared in pyproject.toml or setup.cfg, if any."""
    path = project / "pyproject.toml"
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            data = {}
        name = data.get("project", {}).get("name") or \
            data.get("tool", {}).get("poetry", {}).get("name")
        if name:
            return str(name)
    path = project / "setup.cfg"
    if path.is_file():
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            return None
        return parser.get("metadata", "name", fallback="") or None
    return None


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

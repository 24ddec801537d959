"""The reversible-migrations check: every schema migration can be rolled back.

Alembic revisions are files in a ``versions`` folder, or in a folder that an
``alembic.ini`` or ``pyproject.toml`` ``[tool.alembic]`` lists in ``version_locations``,
with a module-level ``revision =`` and a ``def upgrade``. Each one is reported when its
``downgrade()`` is missing (``missing-downgrade``), does nothing while ``upgrade()`` does
something (``empty-downgrade``), or only raises (``irreversible-downgrade``). A merge
revision whose upgrade and downgrade both do nothing is fine.

Django migrations, files in a ``migrations`` folder that define ``class Migration``, are
reported for ``RunPython`` without ``reverse_code`` (``irreversible-runpython``) and
``RunSQL`` without ``reverse_sql`` (``irreversible-runsql``), the two operations that
Django cannot reverse on its own.

The files are read with ``ast`` and never imported, so no project code runs. A
``# irreversible: <reason>`` comment on the line above or inside the flagged function or
operation suppresses the finding with that reason.
"""

from __future__ import annotations

import ast
import configparser
import json
import logging
import os
import re
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...settings import Setting
from ..files import iter_files
from ..model import CheckContext, CheckResult, Finding, Status
from ..tool import distribution_version, plural

log = logging.getLogger(__name__)

NAME = "migrations"
TOOL = "alembic"

DEFAULT_EXCLUDE = ["**/tests/**", "**/test/**", "**/docs/**", "**/fixtures/**",
                   "**/examples/**"]

SETTINGS = (
    Setting("exclude", list, DEFAULT_EXCLUDE,
            "Globs of project-relative paths whose migrations are not checked, such as "
            "migrations that exist only for tests"),
    Setting("django", bool, True,
            "Also check Django migrations: RunPython without reverse_code and RunSQL without "
            "reverse_sql cannot be reversed"),
)

ALEMBIC_CONFIG_NAMES = ("alembic.ini", "pyproject.toml")
REVISION_PATTERN = re.compile(rb"^revision\s*(?::[^=\n]*)?=", re.M)
UPGRADE_PATTERN = re.compile(rb"^(?:async\s+)?def\s+upgrade\s*\(", re.M)
DJANGO_PATTERN = re.compile(rb"^class\s+Migration\s*\(", re.M)
SUPPRESSION_PATTERN = re.compile(r"#\s*irreversible:\s*(\S.*)$")
RESOURCE_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:(?![\\/])")

# Django operation -> (keyword of its reverse, position of that argument).
DJANGO_REVERSIBLE = {"RunPython": ("reverse_code", 1), "RunSQL": ("reverse_sql", 1)}

# version_path_separator values that Alembic documents, and the separator each one means.
PATH_SEPARATORS = {"os": os.pathsep, "space": " ", "newline": "\n", ";": ";", ":": ":"}


@dataclass
class _Inventory:
    """The migrations found, for the summary and the raw report."""

    alembic: list[dict[str, Any]] = field(default_factory=list)
    django: list[dict[str, Any]] = field(default_factory=list)


def run(ctx: CheckContext) -> CheckResult:
    started = time.monotonic()
    alembic_files, django_files = _find_migration_files(ctx)
    if not ctx.settings["django"]:
        django_files = []

    inventory = _Inventory()
    findings: list[Finding] = []
    for path in alembic_files:
        findings.extend(_check_alembic_file(path, ctx.relative(path), inventory))
    for path in django_files:
        findings.extend(_check_django_file(path, ctx.relative(path), inventory))
    findings.sort(key=lambda finding: (finding.file, finding.line or 0, finding.rule))

    duration = time.monotonic() - started
    log.info("check %s: %d Alembic revisions and %d Django migrations checked in %.2f s", NAME,
             len(inventory.alembic), len(inventory.django), duration)
    status, summary = _verdict(findings, inventory)
    return CheckResult(
        check=NAME, status=status, summary=summary, tool=TOOL,
        tool_version=distribution_version(TOOL), findings=findings, exit_code=None,
        report=_report(findings, inventory, duration), report_name="migrations.json",
    )


def _verdict(findings: list[Finding], inventory: _Inventory) -> tuple[Status, str]:
    if not inventory.alembic and not inventory.django:
        return Status.SKIPPED, ("No Alembic revisions or Django migrations found outside the "
                                "excluded folders.")

    kinds = [(len(inventory.alembic), "Alembic revision"),
             (len(inventory.django), "Django migration file")]
    checked = " and ".join(plural(number, noun) for number, noun in kinds if number)
    active = [finding for finding in findings if finding.suppression is None]
    suppressed = len(findings) - len(active)
    if not active and suppressed:
        return Status.PASS, (f"Every migration can be rolled back except "
                             f"{plural(suppressed, 'migration')} marked irreversible on purpose "
                             f"({checked} checked).")
    if not active:
        return Status.PASS, f"Every migration can be rolled back ({checked} checked)."

    suppressed_note = f" ({suppressed} more marked irreversible on purpose)" if suppressed else ""
    first = active[0]
    location = first.file if first.line is None else f"{first.file}:{first.line}"
    return Status.FAIL, (f"{plural(len(active), 'irreversible migration')} in {checked}"
                         f"{suppressed_note}; the first is at {location}.")


def _report(findings: list[Finding], inventory: _Inventory, duration: float) -> bytes:
    document = {
        "check": NAME,
        "tool": TOOL,
        "tool_version": distribution_version(TOOL),
        "alembic_revisions": inventory.alembic,
        "django_migrations": inventory.django,
        "duration_s": round(duration, 3),
        "findings": [finding.as_dict() for finding in findings],
    }
    # literal_eval may return a set or bytes for down_revision, which JSON stores as its repr.
    return json.dumps(document, indent=2, ensure_ascii=False, default=repr).encode("utf-8")


# Finding the migration files


def _find_migration_files(ctx: CheckContext) -> tuple[list[Path], list[Path]]:
    """Return the Alembic revision files and the Django migration files, by content."""
    python_files: list[Path] = []
    config_files: list[Path] = []
    suffixes = (".py", *ALEMBIC_CONFIG_NAMES)
    for path in iter_files(ctx.project, ctx.exclude_dirs, suffixes, ctx.settings["exclude"]):
        if path.name in ALEMBIC_CONFIG_NAMES:
            config_files.append(path)
        elif path.name.endswith(".py") and path.name != "__init__.py":
            python_files.append(path)

    version_dirs = set()
    for config_file in config_files:
        version_dirs.update(_configured_version_dirs(config_file))

    alembic_files, django_files = [], []
    for path in python_files:
        if path.parent.name == "versions" or path.parent.resolve() in version_dirs:
            if _contains(path, REVISION_PATTERN, UPGRADE_PATTERN):
                alembic_files.append(path)
        elif path.parent.name == "migrations" and _contains(path, DJANGO_PATTERN):
            django_files.append(path)
    return alembic_files, django_files


def _contains(path: Path, *patterns: re.Pattern[bytes]) -> bool:
    try:
        data = path.read_bytes()
    except OSError as error:
        log.warning("check %s: cannot read %s: %s", NAME, path, error)
        return False
    return all(pattern.search(data) for pattern in patterns)


def _configured_version_dirs(config_file: Path) -> set[Path]:
    """Return the version folders that ``alembic.ini`` or ``[tool.alembic]`` names."""
    here = config_file.parent.resolve()
    if config_file.name == "pyproject.toml":
        options = _pyproject_alembic_options(config_file)
        sections = [options] if options else []
    else:
        sections = _ini_alembic_sections(config_file)

    folders = set()
    for options in sections:
        script_location = options.get("script_location")
        if isinstance(script_location, str) and _is_path(script_location):
            folders.add(_expand(script_location, here) / "versions")
        for location in _version_locations(options):
            if _is_path(location):
                folders.add(_expand(location, here))
    return folders


def _ini_alembic_sections(config_file: Path) -> list[dict[str, str]]:
    parser = configparser.RawConfigParser()
    try:
        parser.read(config_file, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as error:
        log.warning("check %s: %s could not be read, its version_locations are ignored: %s",
                    NAME, config_file, error)
        return []
    return [dict(parser[section]) for section in parser.sections()
            if "script_location" in parser[section] or "version_locations" in parser[section]]


def _pyproject_alembic_options(config_file: Path) -> dict[str, Any]:
    try:
        document = tomllib.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        log.warning("check %s: %s could not be read, its [tool.alembic] is ignored: %s",
                    NAME, config_file, error)
        return {}
    options = document.get("tool", {}).get("alembic", {})
    return options if isinstance(options, dict) else {}


def _version_locations(options: dict[str, Any]) -> list[str]:
    locations = options.get("version_locations")
    if isinstance(locations, list):
        return [location for location in locations if isinstance(location, str)]
    if not isinstance(locations, str):
        return []
    separator = PATH_SEPARATORS.get(str(options.get("version_path_separator", "")).strip())
    if separator is None:
        return [part for part in re.split(r"[\s,]+", locations) if part]
    return [part.strip() for part in locations.split(separator) if part.strip()]


def _is_path(location: str) -> bool:
    # "package:folder" names a folder inside an installed package, which only an import can
    # find. A Windows drive ("C:\") is followed by a slash, a package name never is.
    return RESOURCE_PATTERN.match(location) is None


def _expand(location: str, here: Path) -> Path:
    folder = Path(location.replace("%(here)s", str(here)))
    return (folder if folder.is_absolute() else here / folder).resolve()


# Alembic


def _check_alembic_file(path: Path, relative: str, inventory: _Inventory) -> list[Finding]:
    source = _parse(path)
    if source.tree is None:
        inventory.alembic.append({"file": relative, "revision": None, "down_revision": None,
                                  "downgrade": "unparsable"})
        return [source.unparsable(relative)]
    tree = source.tree

    functions = {node.name: node for node in tree.body
                 if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    revision, revision_line = _module_constant(tree, "revision")
    if "upgrade" not in functions or revision_line is None:
        return []
    down_revision, _ = _module_constant(tree, "down_revision")
    label = f"revision {revision}" if isinstance(revision, str) else "revision"

    state, finding = _judge_downgrade(functions, relative, revision_line, label)
    inventory.alembic.append({"file": relative, "revision": revision,
                              "down_revision": down_revision, "downgrade": state})
    if finding is None:
        return []
    span = _suppression_range(functions.get("downgrade"), source.lines)
    return [_suppressed(finding, source.lines, span)]


def _judge_downgrade(functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef],
                     relative: str, revision_line: int,
                     label: str) -> tuple[str, Finding | None]:
    """Return the downgrade's state for the report and the finding it deserves, if any."""
    downgrade = functions.get("downgrade")
    if downgrade is None:
        return "missing", Finding(relative, revision_line, "missing-downgrade",
                                  f"{label} has no downgrade(), so it cannot be rolled back")

    body = _effective_body(downgrade)
    if not body:
        if not _effective_body(functions["upgrade"]):
            return "empty, like upgrade", None
        return "empty", Finding(relative, downgrade.lineno, "empty-downgrade",
                                f"{label}: downgrade() does nothing, so a rollback leaves the "
                                f"upgrade's changes in place")
    if len(body) == 1 and isinstance(body[0], ast.Raise):
        return "raises", Finding(relative, downgrade.lineno, "irreversible-downgrade",
                                 f"{label}: downgrade() only raises, so it cannot be rolled back")
    return "reversible", None


def _effective_body(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.stmt]:
    """Return the statements of ``function`` that do something.

    ``pass``, a bare ``return``, a docstring and ``...`` do nothing. Comments are not in the
    tree at all.
    """
    return [statement for statement in function.body if not _does_nothing(statement)]


def _does_nothing(statement: ast.stmt) -> bool:
    if isinstance(statement, ast.Pass):
        return True
    if isinstance(statement, ast.Return):
        return statement.value is None or _is_none(statement.value)
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)


def _module_constant(tree: ast.Module, name: str) -> tuple[Any, int | None]:
    """Return the literal value assigned to ``name`` at module level and its line."""
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        else:
            continue
        if any(isinstance(target, ast.Name) and target.id == name for target in targets):
            try:
                return ast.literal_eval(node.value), node.lineno
            except (ValueError, TypeError, SyntaxError, RecursionError):
                return None, node.lineno
    return None, None


# Django


def _check_django_file(path: Path, relative: str, inventory: _Inventory) -> list[Finding]:
    source = _parse(path)
    if source.tree is None:
        inventory.django.append({"file": relative, "run_python_and_run_sql": None,
                                 "irreversible": None})
        return [source.unparsable(relative)]
    tree = source.tree
    if not any(isinstance(node, ast.ClassDef) and node.name == "Migration" for node in tree.body):
        return []

    findings = []
    operations = 0
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        operation = _call_name(node.func)
        if operation not in DJANGO_REVERSIBLE:
            continue
        operations += 1
        keyword, position = DJANGO_REVERSIBLE[operation]
        if _has_reverse(node, keyword, position):
            continue
        finding = Finding(relative, node.lineno, f"irreversible-{operation.lower()}",
                          f"{operation} without {keyword} cannot be reversed; pass a reverse "
                          f"operation, or migrations.{operation}.noop when none is needed")
        findings.append(_suppressed(finding, source.lines, (node.lineno - 1, node.end_lineno)))

    inventory.django.append({"file": relative, "run_python_and_run_sql": operations,
                             "irreversible": len(findings)})
    return findings


def _call_name(function: ast.expr) -> str | None:
    if isinstance(function, ast.Attribute):
        return function.attr
    return function.id if isinstance(function, ast.Name) else None


def _has_reverse(call: ast.Call, keyword: str, position: int) -> bool:
    for argument in call.keywords:
        if argument.arg == keyword:
            return not _is_none(argument.value)
        if argument.arg is None:
            # The reverse operation may be inside **options, which the check cannot see.
            return True
    if len(call.args) > position:
        return not _is_none(call.args[position])
    return any(isinstance(argument, ast.Starred) for argument in call.args)


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


# Shared


@dataclass
class _Source:
    """A migration file's lines and tree, or the reason it has no tree."""

    lines: list[str]
    tree: ast.Module | None = None
    error_line: int | None = None
    error: str = ""

    def unparsable(self, relative: str) -> Finding:
        return Finding(relative, self.error_line, "unparsable-migration", self.error)


def _parse(path: Path) -> _Source:
    try:
        data = path.read_bytes()
    except OSError as error:
        return _Source([], error=f"migration could not be read ({error.strerror})")
    source = _Source(data.decode("utf-8", "replace").splitlines())
    try:
        source.tree = ast.parse(data, filename=str(path))
    except SyntaxError as error:
        source.error_line = error.lineno
        source.error = f"migration does not parse as Python: {error.msg}"
    except (ValueError, RecursionError) as error:
        source.error = f"migration could not be parsed ({type(error).__name__})"
    return source


def _suppression_range(function: ast.AST | None, lines: list[str]) -> tuple[int, int]:
    """Return the 1-based lines where a suppression comment counts for ``function``."""
    if function is None:
        return 1, len(lines)
    first = min([function.lineno, *(decorator.lineno for decorator in function.decorator_list)])
    return first - 1, function.end_lineno or function.lineno


def _suppressed(finding: Finding, lines: list[str], span: tuple[int, int]) -> Finding:
    first, last = span
    for text in lines[max(first, 1) - 1:last]:
        match = SUPPRESSION_PATTERN.search(text)
        if match:
            return Finding(finding.file, finding.line, finding.rule, finding.message,
                           finding.severity, match.group(1).strip())
    return finding

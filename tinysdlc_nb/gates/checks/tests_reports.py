"""Parse the two reports the ``tests`` check reads: JUnit XML and coverage totals.

JUnit comes from pytest (``<testsuites><testsuite>``) or any tool writing a bare
``<testsuite>``. Coverage comes from coverage.py, as Cobertura XML (``coverage xml``) or
JSON (``coverage json``).
"""

from __future__ import annotations

import json
import logging
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

# A traceback location line as pytest prints it: "tests/test_x.py:12: AssertionError".
_LOCATION = re.compile(r"^(?P<file>[^\s:][^:\n]*\.py):(?P<line>\d+):", re.MULTILINE)


class ReportError(ValueError):
    """A JUnit or coverage file is missing, unreadable or not in a known format."""


@dataclass(frozen=True)
class FailedCase:
    """One test case that failed or errored, located as precisely as the JUnit allows."""

    test_id: str
    outcome: str
    message: str
    file: str | None
    line: int | None


@dataclass
class JUnitTotals:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    failed_cases: list[FailedCase] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return self.tests - self.failures - self.errors - self.skipped


@dataclass(frozen=True)
class CoverageTotals:
    """Line and branch counts of a coverage report.

    ``branch_measured`` is None when the format cannot tell whether branches were measured:
    a Cobertura report of code without any branch looks the same as one made without
    ``--cov-branch``.
    """

    lines: int
    covered_lines: int
    branches: int
    covered_branches: int
    branch_measured: bool | None

    @property
    def measured(self) -> int:
        return self.lines + self.branches

    @property
    def percent(self) -> float:
        """Combined line and branch coverage, computed the way coverage.py computes its total."""
        if self.measured == 0:
            return 0.0
        return 100.0 * (self.covered_lines + self.covered_branches) / self.measured


def parse_junit(path: Path, project: Path) -> JUnitTotals:
    """Count the test cases of the JUnit file ``path`` and locate each failed one.

    ``project`` is the folder the tests ran in. Test module paths in the report are
    resolved against it.
    """
    root = _parse_xml(path, "JUnit")
    if root.tag not in ("testsuites", "testsuite"):
        raise ReportError(f"{path}: root element <{root.tag}> is not <testsuites> or <testsuite>; "
                          f"expected a JUnit XML report")

    totals = JUnitTotals()
    for case in root.iter("testcase"):
        totals.tests += 1
        problem = _first_child(case, "failure", "error")
        if problem is not None:
            if problem.tag == "failure":
                totals.failures += 1
            else:
                totals.errors += 1
            totals.failed_cases.append(_failed_case(case, problem, project))
        elif case.find("skipped") is not None:
            totals.skipped += 1
    return totals


def parse_coverage(path: Path) -> CoverageTotals:
    """Read the totals of a coverage.py report, Cobertura XML or JSON, chosen by content."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ReportError(f"coverage report {path} could not be read: {error.strerror}") from error

    if text.lstrip().startswith("{"):
        return _coverage_from_json(text, path)
    return _coverage_from_cobertura(path)


def _parse_xml(path: Path, kind: str) -> ElementTree.Element:
    try:
        return ElementTree.parse(path).getroot()
    except OSError as error:
        raise ReportError(f"{kind} report {path} could not be read: {error.strerror}") from error
    except ElementTree.ParseError as error:
        raise ReportError(f"{kind} report {path} is not valid XML: {error}") from error


def _first_child(element: ElementTree.Element, *tags: str) -> ElementTree.Element | None:
    for child in element:
        if child.tag in tags:
            return child
    return None


def _failed_case(case: ElementTree.Element, problem: ElementTree.Element,
                 project: Path) -> FailedCase:
    classname = case.get("classname", "")
    name = case.get("name", "")
    test_id = f"{classname}.{name}" if classname else name
    text = problem.text or ""

    file = case.get("file") or _module_file(classname, project)
    line = None
    if case.get("line", "").isdigit():
        # pytest writes the 0-based line of the test function (junit_family=xunit1).
        line = int(case.get("line")) + 1
    crash_file, crash_line = _crash_location(text, file, project)
    file = file or crash_file
    line = crash_line or line

    message = _first_line(problem.get("message") or text) or problem.tag
    return FailedCase(test_id, problem.tag, message, file, line)


def _module_file(classname: str, project: Path) -> str | None:
    """Map a dotted classname such as ``tests.test_api.TestLogin`` to ``tests/test_api.py``."""
    parts = [part for part in classname.split(".") if part]
    for length in range(len(parts), 0, -1):
        candidate = "/".join(parts[:length]) + ".py"
        if (project / candidate).is_file():
            return candidate
    return None


def _crash_location(text: str, file: str | None,
                    project: Path) -> tuple[str | None, int | None]:
    """Return the last traceback location in ``file``, or the first one inside the project.

    The last location in the test's own module is where the test stopped, which is the
    line a reader wants. When the module is unknown (a collection error has no classname,
    and a classname names no file when the report was made elsewhere), the first location
    inside the project is the best guess: pytest prints the test function's frame first.
    """
    locations = [(_project_relative(match["file"], project), int(match["line"]))
                 for match in _LOCATION.finditer(text)]
    if file is not None:
        in_file = [location for location in locations if location[0] == file]
        return in_file[-1] if in_file else (None, None)

    for relative, line in locations:
        if relative is not None:
            return relative, line
    return None, None


def _project_relative(name: str, project: Path) -> str | None:
    candidate = Path(name)
    if not candidate.is_absolute():
        return None if candidate.parts[0] == ".." else candidate.as_posix()
    try:
        return candidate.resolve().relative_to(project.resolve()).as_posix()
    except ValueError:
        return None


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _coverage_from_json(text: str, path: Path) -> CoverageTotals:
    try:
        document = json.loads(text)
        totals = document["totals"]
        branch_measured = bool(document.get("meta", {}).get("branch_coverage", False))
        return CoverageTotals(
            lines=int(totals["num_statements"]),
            covered_lines=int(totals["covered_lines"]),
            branches=int(totals.get("num_branches", 0)),
            covered_branches=int(totals.get("covered_branches", 0)),
            branch_measured=branch_measured,
        )
    except (ValueError, KeyError, TypeError) as error:
        raise ReportError(f"coverage report {path} is not coverage.py JSON with 'totals': "
                          f"{error!r}") from error


def _coverage_from_cobertura(path: Path) -> CoverageTotals:
    root = _parse_xml(path, "coverage")
    if root.tag != "coverage":
        raise ReportError(f"{path}: root element <{root.tag}> is not <coverage>; expected "
                          f"Cobertura XML or coverage.py JSON")

    if root.get("lines-valid") is not None and root.get("lines-covered") is not None:
        branches = _int_attribute(root, "branches-valid", path)
        return CoverageTotals(
            lines=_int_attribute(root, "lines-valid", path),
            covered_lines=_int_attribute(root, "lines-covered", path),
            branches=branches,
            covered_branches=_int_attribute(root, "branches-covered", path),
            branch_measured=True if branches > 0 else None,
        )
    return _coverage_from_lines(root)


def _int_attribute(element: ElementTree.Element, name: str, path: Path) -> int:
    value = element.get(name, "0")
    try:
        return int(value)
    except ValueError as error:
        raise ReportError(f"{path}: attribute {name}='{value}' is not an integer") from error


# The branch part of a Cobertura line: condition-coverage="50% (1/2)".
_CONDITIONS = re.compile(r"\((\d+)/(\d+)\)")


def _coverage_from_lines(root: ElementTree.Element) -> CoverageTotals:
    """Count totals from the ``<line>`` elements, for Cobertura writers without root counts.

    A line listed under several classes is counted once per file name.
    """
    seen: dict[tuple[str, str], ElementTree.Element] = {}
    for cls in root.iter("class"):
        for line in cls.iter("line"):
            seen.setdefault((cls.get("filename", ""), line.get("number", "")), line)

    lines = covered_lines = branches = covered_branches = 0
    for line in seen.values():
        lines += 1
        if line.get("hits", "0").isdigit() and int(line.get("hits")) > 0:
            covered_lines += 1
        conditions = _CONDITIONS.search(line.get("condition-coverage", ""))
        if line.get("branch") == "true" and conditions:
            covered_branches += int(conditions.group(1))
            branches += int(conditions.group(2))
    return CoverageTotals(lines, covered_lines, branches, covered_branches,
                          True if branches > 0 else None)

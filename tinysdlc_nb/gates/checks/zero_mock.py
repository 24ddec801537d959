"""The Zero Mock Policy check: production code ships no unfinished work and no mocks.

It scans every Python and config file outside the ``exclude`` globs and reports:

- ``todo-comment``, ``fixme-comment``, ``placeholder-comment`` (one rule per word in
  ``markers``): a marker in a Python comment. Strings and docstrings are never scanned.
- ``not-implemented``: ``raise NotImplementedError`` outside an abstract method, a method of
  a ``Protocol`` class or an ``@overload`` signature.
- ``mock-switch``: a key such as ``mock`` or ``use_fake`` set to a true value in a YAML,
  JSON or TOML file.
- ``unparsable-python``, ``unparsable-config``, ``unreadable-file``: a file that could not
  be scanned. It counts as a violation because a file the scanner cannot read could hide one.
  The exception is a config file with template tags (``{{`` or ``{%``), such as a Helm
  template: it cannot parse before rendering, so it is listed under ``files_skipped`` in
  the raw report instead.

A finding is suppressed, listed but not counted, by a ``# zero-mock: allow <reason>``
comment on its line. The reason is required.
"""

from __future__ import annotations

import ast
import bisect
import io
import json
import logging
import re
import sys
import time
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ...settings import Setting
from ..files import iter_files
from ..model import CheckContext, CheckResult, Finding, Status
from ..tool import distribution_version, plural
from . import zero_mock_config
from .zero_mock_config import CONFIG_SUFFIXES, ConfigSyntaxError

log = logging.getLogger(__name__)

NAME = "zero_mock"
TOOL = "tinysdlc-nb"

DEFAULT_EXCLUDE = [
    "**/tests/**", "**/test/**", "**/test_*.py", "**/*_test.py", "**/conftest.py",
    "**/docs/**", "**/doc/**", "**/fixtures/**", "**/examples/**",
]
DEFAULT_MARKERS = ["TODO", "FIXME", "placeholder"]
DEFAULT_MOCK_KEYS = [
    "mock", "mocks", "mocked", "mocking", "use_mock", "use_mocks", "mock_mode", "mock_enabled",
    "enable_mock", "enable_mocks", "fake", "fakes", "use_fake", "use_fakes", "fake_mode",
    "fake_enabled", "stub", "stubs", "use_stub", "use_stubs", "stub_mode", "stub_enabled",
]

SETTINGS = (
    Setting("exclude", list, DEFAULT_EXCLUDE,
            "Globs of project-relative paths that are not production code and are not "
            "scanned. A leading '**/' also matches at the project root"),
    Setting("markers", list, DEFAULT_MARKERS,
            "Words that mark unfinished work in a Python comment. A marker counts as a whole "
            "word in capitals anywhere in the comment, or in any case as its first word"),
    Setting("mock_keys", list, DEFAULT_MOCK_KEYS,
            "Config keys that turn a mock on when set to a true value. Keys are compared in "
            "snake_case, so useMock and use-mock match use_mock"),
)

PYTHON_SUFFIX = ".py"

# NOTE: a YAML, JSON or TOML file above this size is taken to be data, not config, and is
# listed under files_skipped instead of parsed. The limit is an estimate, not a measured
# boundary, so a config file this large would go unscanned.
MAX_CONFIG_BYTES = 10 * 1024 * 1024
ALLOW_PATTERN = re.compile(rb"#\s*zero-mock:\s*allow\b[\s:]*(.*)$")
EXEMPT_DECORATORS = frozenset({"abstractmethod", "abstractproperty", "abstractclassmethod",
                               "abstractstaticmethod", "overload"})
STATEMENT_LISTS = ("body", "orelse", "finalbody", "handlers", "cases")

# Matches a comment or a string literal. The alternatives are tried in this order at each
# position, so a '#' inside a string is never read as a comment. On source that Python 3.11
# accepts, it finds the same comments as tokenize. In 3.11 tokenize is pure Python: on the
# 282 files of pandas 3.1.1 that mention a marker it took 3.8 s against 0.2 s for this
# pattern (one run in a 2-vCPU container). test_zero_mock.py compares the two on hard cases.
_COMMENT_OR_STRING = re.compile(
    rb"""\#[^\r\n]*"""
    rb'''|"""(?:[^"\\]|\\.|"(?!""))*"""'''
    rb"""|'''(?:[^'\\]|\\.|'(?!''))*'''"""
    rb'''|"(?:[^"\\\r\n]|\\(?:\r\n|.))*"'''
    rb"""|'(?:[^'\\\r\n]|\\(?:\r\n|.))*'""",
    re.S,
)


@dataclass
class _Scan:
    """Counts and skipped files of one run, for the summary and the raw report."""

    python_files: int = 0
    config_files: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)


class _Markers:
    """Match the configured marker words in comment text."""

    def __init__(self, words: list[str]):
        self.words = {word.lower(): word for word in words if word.strip()}
        alternatives = "|".join(re.escape(word) for word in self.words)
        self.prefilter = None
        if alternatives:
            self.prefilter = re.compile(rf"\b(?:{alternatives})\b".encode(), re.I)
        capitals = "|".join(re.escape(word.upper()) for word in self.words)
        self.in_capitals = re.compile(rf"\b({capitals})\b")
        self.as_first_word = re.compile(rf"^[#:!\s]*({alternatives})\b", re.I)

    def find(self, comment: str) -> str | None:
        """Return the marker word in ``comment``, lower-cased, or None."""
        match = self.as_first_word.match(comment) or self.in_capitals.search(comment)
        return match.group(1).lower() if match else None


def run(ctx: CheckContext) -> CheckResult:
    started = time.monotonic()
    markers = _Markers(ctx.settings["markers"])
    mock_keys = frozenset(zero_mock_config.normalize_key(key) for key in ctx.settings["mock_keys"])
    scan = _Scan()

    findings: list[Finding] = []
    suffixes = (PYTHON_SUFFIX, *CONFIG_SUFFIXES)
    for path in iter_files(ctx.project, ctx.exclude_dirs, suffixes, ctx.settings["exclude"]):
        findings.extend(_scan_file(path, ctx.relative(path), markers, mock_keys, scan))
    findings.sort(key=lambda finding: (finding.file, finding.line or 0, finding.rule))

    duration = time.monotonic() - started
    log.info("check %s: scanned %d Python and %d config files in %.2f s", NAME,
             scan.python_files, scan.config_files, duration)
    status, summary = _verdict(findings, scan)
    return CheckResult(
        check=NAME, status=status, summary=summary, tool=TOOL,
        tool_version=distribution_version(TOOL), findings=findings, exit_code=None,
        report=_report(ctx, findings, scan, duration), report_name="zero_mock.json",
    )


def _scan_file(path: Path, relative: str, markers: _Markers, mock_keys: frozenset[str],
               scan: _Scan) -> list[Finding]:
    is_python = path.name.endswith(PYTHON_SUFFIX)
    if not is_python and not zero_mock_config.is_config_file(path.name, relative):
        return []

    try:
        if not is_python and path.stat().st_size > MAX_CONFIG_BYTES:
            scan.skipped.append({"file": relative, "reason": f"larger than "
                                 f"{MAX_CONFIG_BYTES // 2**20} MiB, so taken to be data"})
            return []
        data = path.read_bytes()
    except OSError as error:
        log.warning("check %s: cannot read %s: %s", NAME, relative, error)
        return [Finding(relative, None, "unreadable-file",
                        f"file could not be read ({error.strerror or type(error).__name__})")]

    if is_python:
        scan.python_files += 1
        findings = _scan_python(relative, data, markers)
    else:
        scan.config_files += 1
        findings = _scan_config(path.name, relative, data, mock_keys, scan)
    return _apply_suppressions(findings, data) if findings else findings


def _verdict(findings: list[Finding], scan: _Scan) -> tuple[Status, str]:
    scanned = (f"{plural(scan.python_files, 'Python file')} and "
               f"{plural(scan.config_files, 'config file')}")
    if scan.python_files + scan.config_files == 0:
        return Status.SKIPPED, "No Python or config files found outside the exclude globs."

    active = [finding for finding in findings if finding.suppression is None]
    suppressed = len(findings) - len(active)
    suppressed_note = f" ({suppressed} suppressed)" if suppressed else ""
    if not active:
        return Status.PASS, f"No Zero Mock violations in {scanned}{suppressed_note}."

    first = active[0]
    location = f"{first.file}:{first.line}" if first.line is not None else first.file
    files = len({finding.file for finding in active})
    return Status.FAIL, (
        f"{plural(len(active), 'Zero Mock violation')} in {files} of {scanned}"
        f"{suppressed_note}. [@coder: CI blocked — Zero Mock violation detected at "
        f"{location}. Fix before deployment]"
    )


def _report(ctx: CheckContext, findings: list[Finding], scan: _Scan, duration: float) -> bytes:
    document = {
        "check": NAME,
        "tool": TOOL,
        "tool_version": distribution_version(TOOL),
        "settings": {key: ctx.settings[key] for key in ("exclude", "markers", "mock_keys")},
        "files_scanned": {"python": scan.python_files, "config": scan.config_files},
        "files_skipped": scan.skipped,
        "duration_s": round(duration, 3),
        "findings": [finding.as_dict() for finding in findings],
    }
    return json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8")


def _apply_suppressions(findings: list[Finding], data: bytes) -> list[Finding]:
    lines = data.splitlines()
    result = []
    for finding in findings:
        reason = None
        if finding.line is not None and finding.line <= len(lines):
            match = ALLOW_PATTERN.search(lines[finding.line - 1])
            if match and match.group(1).strip():
                reason = match.group(1).strip().decode("utf-8", "replace")
        result.append(_with_suppression(finding, reason) if reason else finding)
    return result


def _with_suppression(finding: Finding, reason: str) -> Finding:
    return Finding(finding.file, finding.line, finding.rule, finding.message, finding.severity,
                   reason)


# Python


def _scan_python(relative: str, data: bytes, markers: _Markers) -> list[Finding]:
    try:
        tree = ast.parse(data, filename=relative)
    except SyntaxError as error:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        return [Finding(relative, error.lineno, "unparsable-python",
                        f"file does not parse as Python {version}: {error.msg}")]
    except (ValueError, RecursionError, MemoryError) as error:
        return [Finding(relative, None, "unparsable-python",
                        f"file could not be parsed ({type(error).__name__})")]

    findings = []
    if b"NotImplementedError" in data:
        findings.extend(_not_implemented_findings(relative, tree, data))
    if markers.prefilter is not None and markers.prefilter.search(data):
        findings.extend(_marker_findings(relative, data, markers))
    return findings


def _marker_findings(relative: str, data: bytes, markers: _Markers) -> list[Finding]:
    data = _as_utf8(data)
    findings = []
    line = 1
    position = 0
    for token in _COMMENT_OR_STRING.finditer(data):
        if data[token.start()] != ord("#"):
            continue
        comment = token.group().decode("utf-8", "replace")
        word = markers.find(comment)
        if word is None:
            continue
        line += data.count(b"\n", position, token.start())
        position = token.start()
        label = markers.words[word]
        findings.append(Finding(relative, line, f"{word}-comment",
                                f"{label} marker in a comment: finish the work or remove the "
                                f"marker", severity="warning"))
    return findings


def _as_utf8(data: bytes) -> bytes:
    """Return ``data`` re-encoded as UTF-8 when its PEP 263 coding cookie names another encoding.

    In an encoding such as Shift_JIS a backslash or quote byte can be part of a character,
    which would mislead the byte-level comment finder.
    """
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        if encoding in ("utf-8", "utf-8-sig"):
            return data
        return data.decode(encoding).encode("utf-8")
    except (SyntaxError, LookupError, UnicodeDecodeError):
        return data


@dataclass(frozen=True)
class _Scope:
    function: str | None = None
    exempt: bool = False
    protocol_class: bool = False


def _not_implemented_findings(relative: str, tree: ast.Module, data: bytes) -> list[Finding]:
    # Only statements whose lines contain the name can hold the raise, so the walk skips
    # every other subtree.
    target_lines = [number for number, text in enumerate(data.splitlines(), start=1)
                    if b"NotImplementedError" in text]
    findings = []
    for node, scope in _statements(tree.body, _Scope(), target_lines):
        if isinstance(node, ast.Raise) and _raises_not_implemented(node) and not scope.exempt:
            if scope.function:
                message = (f"raise NotImplementedError in '{scope.function}': implement it, or "
                           f"mark the method @abstractmethod if subclasses must override it")
            else:
                message = "raise NotImplementedError outside any function: implement the code"
            findings.append(Finding(relative, node.lineno, "not-implemented", message))
    return findings


def _statements(body: list[ast.AST], scope: _Scope,
                target_lines: list[int]) -> Iterator[tuple[ast.AST, _Scope]]:
    pending = [(node, scope) for node in reversed(body)]
    while pending:
        node, scope = pending.pop()
        if not _spans_any(node, target_lines):
            continue
        yield node, scope

        inner = _inner_scope(node, scope)
        children = []
        for name in STATEMENT_LISTS:
            children.extend(getattr(node, name, None) or ())
        pending.extend((child, inner) for child in reversed(children))


def _spans_any(node: ast.AST, target_lines: list[int]) -> bool:
    first = getattr(node, "lineno", None)
    last = getattr(node, "end_lineno", None)
    if first is None or last is None:
        return True
    index = bisect.bisect_left(target_lines, first)
    return index < len(target_lines) and target_lines[index] <= last


def _inner_scope(node: ast.AST, scope: _Scope) -> _Scope:
    if isinstance(node, ast.ClassDef):
        is_protocol = any(_final_name(base) == "Protocol" for base in node.bases)
        return _Scope(scope.function, exempt=False, protocol_class=is_protocol)
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        decorated = any(_final_name(decorator) in EXEMPT_DECORATORS
                        for decorator in node.decorator_list)
        return _Scope(node.name, exempt=decorated or scope.protocol_class)
    return scope


def _final_name(node: ast.AST) -> str | None:
    """Return the last name of ``x``, ``a.b.x``, ``x[T]`` or ``x(...)``."""
    if isinstance(node, ast.Subscript | ast.Call):
        node = node.value if isinstance(node, ast.Subscript) else node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _raises_not_implemented(node: ast.Raise) -> bool:
    return node.exc is not None and _final_name(node.exc) == "NotImplementedError"


# Config files


def _scan_config(name: str, relative: str, data: bytes, mock_keys: frozenset[str],
                 scan: _Scan) -> list[Finding]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return [Finding(relative, data.count(b"\n", 0, error.start) + 1, "unparsable-config",
                        "config file is not valid UTF-8")]

    try:
        switches = zero_mock_config.find_mock_switches(name, text, mock_keys)
    except ConfigSyntaxError as error:
        if zero_mock_config.looks_like_template(text):
            log.info("check %s: %s is a template, not scanned: %s", NAME, relative, error)
            scan.skipped.append({"file": relative, "reason": "template that does not parse "
                                 "before rendering"})
            return []
        return [Finding(relative, error.line, "unparsable-config",
                        f"config file does not parse: {error.problem}")]

    return [Finding(relative, switch.line, "mock-switch",
                    f"mock switch '{switch.key_path}' is set to {switch.value!r}: remove it or "
                    f"set it to false for production")
            for switch in switches]

"""The ``secrets`` check: detect-secrets and the provider patterns of ``secret_patterns``.

detect-secrets 1.5 runs as a subprocess with its own worker processes, over the project's
top-level entries minus the excluded folders. Nested excluded folders, lock files, the
baseline and the ``exclude`` globs are dropped with ``--exclude-files``. It makes no
network call (``--no-verify``). While it runs, a thread of this process scans the same
files with the high-precision patterns, which also read private keys and URL passwords.

Choices, measured on the Django 5.2.8 source distribution and on installed packages
(pandas 3.1, SQLAlchemy 2.1, tornado 6.6 and ten others), with results read by hand:

- The entropy plugins are off by default (setting ``entropy_plugins``). Their 84 results
  on Django and 8 on pandas were digests in tests, commit hashes and test data.
- KeywordDetector is off by default (setting ``keyword_plugin``). Its 159 results on
  Django and 33 on the packages were test passwords (``"secret"``, ``"tiger"``) and names
  of environment variables.
- IPPublicDetector never runs: a public IP address is not a secret.
- For the kinds the patterns cover (GitHub, GitLab, AWS, Slack, Stripe, OpenAI, private
  key, URL password), a detect-secrets result counts only where a pattern matched the same
  line. detect-secrets 1.5 reports only the prefix of GitHub and GitLab tokens ("ghp"), so
  it cannot tell a placeholder from a token, and it reports "BEGIN RSA PRIVATE KEY" in code
  that merely looks for keys. Its hash still joins the finding, so baselines made by
  ``detect-secrets scan`` keep matching.

A result on a line with ``pragma: allowlist secret`` or listed in the baseline is kept as a
suppressed finding. A baseline entry audited as a real secret (``is_secret: true``) counts.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import sys
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ... import secret_patterns
from ...errors import ToolMissing
from ...settings import Setting
from ..files import iter_files
from ..model import CheckContext, CheckResult, Finding, Status
from ..tool import ToolRun, distribution_version, plural, run_tool
from .secrets_baseline import BaselineError, ReviewedSecrets

log = logging.getLogger(__name__)

NAME = "secrets"
TOOL = "detect-secrets"

SETTINGS = (
    Setting("baseline", str, ".secrets.baseline",
            "detect-secrets baseline file, relative to the project; its entries are listed as "
            "suppressed ('reviewed in baseline') unless audited as real (is_secret: true)"),
    Setting("entropy_plugins", bool, False,
            "also run detect-secrets' Base64HighEntropyString and HexHighEntropyString "
            "plugins, which flag hashes and test data as well as secrets"),
    Setting("keyword_plugin", bool, False,
            "also run detect-secrets' KeywordDetector (password = '...'), which flags test "
            "passwords and variable names as well as secrets"),
    Setting("disabled_plugins", list, [],
            "further detect-secrets plugin class names not to run, such as JwtTokenDetector"),
    Setting("exclude", list, [],
            "globs of files not scanned, relative to the project with forward slashes; "
            "'**/' at the start also matches at the project root"),
    Setting("cores", int, 0, "worker processes detect-secrets starts; 0 starts one per CPU",
            unit="processes", minimum=0),
)

_FILTER = "tinysdlc_nb.secret_patterns.is_false_positive"
_ALLOWLIST_FILTER = "detect_secrets.filters.allowlist.is_line_allowlisted"
_ENTROPY_PLUGINS = ("Base64HighEntropyString", "HexHighEntropyString")

# detect-secrets result types whose values the patterns judge (see the module docstring).
_COVERED_TYPES = {
    "AWS Access Key": {"aws-access-key-id", "aws-secret-access-key"},
    "GitHub Token": {"github-token"},
    "GitLab Token": {"gitlab-token"},
    "Slack Token": {"slack-token", "slack-webhook"},
    "Stripe Access Key": {"stripe-live-key"},
    "OpenAI Token": {"openai-api-key"},
    "Private Key": {"private-key"},
    "Basic Auth Credentials": {"url-password"},
}


@dataclass
class _Hit:
    """One secret found at a file and line, with every hash that names its value."""

    file: str
    line: int
    rule: str
    name: str
    hashes: list[str] = field(default_factory=list)


def run(ctx: CheckContext) -> CheckResult:
    """Scan the project for secrets and judge the results against the allow markers and baseline."""
    if not distribution_version(TOOL):
        raise ToolMissing(f"check '{NAME}': '{TOOL}' is not installed; install it in this "
                          f"environment (pip install tinysdlc-nb)")

    baseline_name = Path(ctx.settings["baseline"]).as_posix()
    try:
        reviewed = ReviewedSecrets.load(ctx.project / baseline_name, baseline_name)
    except BaselineError as error:
        return _result(Status.ERROR, str(error))

    exclude_regex = _exclude_files_regex(ctx, baseline_name)
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="secrets-patterns") as pool:
        pattern_scan = pool.submit(_scan_with_patterns, ctx, exclude_regex, stop)
        try:
            tool_run = _run_detect_secrets(ctx, exclude_regex)
        except BaseException:
            stop.set()
            raise
        pattern_hits, scanned = pattern_scan.result()

    report, problem = _parse_report(tool_run)
    if problem:
        return _result(Status.ERROR, problem, tool_run)

    hits = _merge(pattern_hits, _tool_hits(report))
    lines = _LineReader(ctx.project)
    findings = [_finding(hit, lines, reviewed) for hit in hits]
    findings.sort(key=lambda finding: (finding.file, finding.line or 0, finding.rule))
    return _judge(findings, scanned, tool_run, _report(report, pattern_hits))


def _run_detect_secrets(ctx: CheckContext, exclude_regex: str) -> ToolRun | None:
    paths = _top_level_paths(ctx)
    if not paths:
        return None

    argv = [sys.executable, "-P", "-m", "detect_secrets"]
    if ctx.settings["cores"]:
        argv += ["--cores", str(ctx.settings["cores"])]
    argv += ["scan", "--all-files", "--no-verify", "--disable-filter", _ALLOWLIST_FILTER,
             "--filter", _FILTER, "--exclude-files", exclude_regex]
    for plugin in _disabled_plugins(ctx):
        argv += ["--disable-plugin", plugin]

    # -P keeps the project folder off sys.path, so a folder named like a module there cannot
    # stand in for detect-secrets or for the filter. PYTHONPATH finds the filter's package.
    package_root = str(Path(secret_patterns.__file__).resolve().parents[1])
    python_path = os.pathsep.join(part for part in (package_root, os.environ.get("PYTHONPATH"))
                                  if part)
    return run_tool(NAME, [*argv, "--", *paths], cwd=ctx.project, timeout_s=ctx.timeout_s,
                    env={"PYTHONPATH": python_path})


def _disabled_plugins(ctx: CheckContext) -> list[str]:
    disabled = ["IPPublicDetector", *ctx.settings["disabled_plugins"]]
    if not ctx.settings["entropy_plugins"]:
        disabled += _ENTROPY_PLUGINS
    if not ctx.settings["keyword_plugin"]:
        disabled.append("KeywordDetector")
    return sorted(set(disabled))


def _top_level_paths(ctx: CheckContext) -> list[str]:
    """Return the project's top-level entries detect-secrets walks: excluded folders left out."""
    paths = []
    for entry in sorted(os.scandir(ctx.project), key=lambda item: item.name):
        if entry.is_symlink() or entry.name in ctx.exclude_dirs:
            continue
        if entry.is_dir() and entry.name.endswith(".egg-info"):
            continue
        paths.append(entry.name)
    return paths


def _exclude_files_regex(ctx: CheckContext, baseline_name: str) -> str:
    """Build the regex of relative paths neither scan reads, in detect-secrets' syntax."""
    folders = "|".join([*(re.escape(name) for name in ctx.exclude_dirs), r"[^/]*\.egg-info"])
    locks = "|".join(re.escape(name) for name in sorted(secret_patterns.LOCK_FILE_NAMES))
    parts = [rf"(?:^|/)(?:{folders})/", rf"(?:^|/)(?:{locks})$", rf"^{re.escape(baseline_name)}$"]
    for glob in ctx.settings["exclude"]:
        parts.append("^" + fnmatch.translate(glob))
        if glob.startswith("**/"):
            parts.append("^" + fnmatch.translate(glob[3:]))
    return "|".join(parts)


def _scan_with_patterns(ctx: CheckContext, exclude_regex: str,
                        stop: threading.Event) -> tuple[list[_Hit], int]:
    """Scan the selected files with the patterns; return the hits and the number of text files."""
    excluded = re.compile(exclude_regex)
    hits: list[_Hit] = []
    scanned = 0
    for path in iter_files(ctx.project, ctx.exclude_dirs):
        if stop.is_set():
            break
        relative = path.relative_to(ctx.project).as_posix()
        if path.is_symlink() or excluded.search(relative):
            continue

        text = _read_text(path)
        if text is not None:
            scanned += 1
            hits.extend(_hits_in_text(relative, text))
    return hits, scanned


def _hits_in_text(relative: str, text: str) -> list[_Hit]:
    hits = []
    for found in secret_patterns.find_secrets(text):
        if not secret_patterns.is_reportable(found):
            continue

        line_start = text.rfind("\n", 0, found.start) + 1
        line_end = text.find("\n", found.start)
        line_text = text[line_start:line_end if line_end != -1 else len(text)]
        if secret_patterns.is_integrity_line(line_text):
            continue

        line_number = text.count("\n", 0, found.start) + 1
        hits.append(_Hit(relative, line_number, found.pattern.rule, found.pattern.name,
                         [secret_patterns.hash_secret(found.value)]))
    return hits


def _read_text(path: Path) -> str | None:
    """Return the file's text, or None for a binary or unreadable file (as detect-secrets skips)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        log.warning("check %s: cannot read %s: %s", NAME, path, error)
        return None
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def _parse_report(tool_run: ToolRun | None) -> tuple[dict, str]:
    """Return detect-secrets' report, or an empty one and why the run cannot be trusted."""
    if tool_run is None:
        return {"results": {}}, ""

    stderr = tool_run.stderr.decode("utf-8", errors="replace")
    if tool_run.exit_code != 0:
        return {}, f"detect-secrets exited with code {tool_run.exit_code}: {_tail(stderr)}"

    try:
        report = json.loads(tool_run.stdout)
    except json.JSONDecodeError as error:
        return {}, f"detect-secrets printed a report that is not JSON ({error}): {_tail(stderr)}"
    if not isinstance(report, dict) or not isinstance(report.get("results"), dict):
        return {}, "detect-secrets printed a JSON report without a 'results' table"

    used = {entry.get("path") for entry in report.get("filters_used", [])}
    if _FILTER not in used or "Invalid filter" in stderr:
        return {}, (f"detect-secrets did not load the filter {_FILTER}, so examples and "
                    f"placeholders would count: {_tail(stderr)}")
    return report, ""


def _tool_hits(report: dict) -> list[_Hit]:
    hits = []
    for filename, results in report["results"].items():
        for result in results:
            kind = str(result.get("type", "unknown"))
            hits.append(_Hit(Path(filename).as_posix(), int(result.get("line_number", 0)),
                             re.sub(r"[^a-z0-9]+", "-", kind.lower()).strip("-"), kind,
                             [str(result.get("hashed_secret", ""))]))
    return hits


def _merge(pattern_hits: list[_Hit], tool_hits: list[_Hit]) -> list[_Hit]:
    """Join detect-secrets' results to the pattern hits on the same line, or keep them alone.

    A result of a kind the patterns cover joins a pattern hit of that kind on its line and
    adds its hash. Without such a hit it is dropped, because the pattern judged the value.
    """
    by_line: dict[tuple[str, int], list[_Hit]] = defaultdict(list)
    for hit in pattern_hits:
        by_line[(hit.file, hit.line)].append(hit)

    merged = list(pattern_hits)
    dropped = 0
    for hit in tool_hits:
        covered = _COVERED_TYPES.get(hit.name)
        if covered is None:
            merged.append(hit)
            continue
        partner = next((own for own in by_line[(hit.file, hit.line)] if own.rule in covered), None)
        if partner is None:
            dropped += 1
        else:
            partner.hashes.extend(hit.hashes)

    if dropped:
        log.info("check %s: %d detect-secrets results had no pattern match on their line",
                 NAME, dropped)
    return merged


class _LineReader:
    """Read a line and the one before it, keeping each file's lines after the first read."""

    def __init__(self, project: Path):
        self._project = project
        self._lines: dict[str, list[str]] = {}

    def line_and_previous(self, file: str, number: int) -> tuple[str, str]:
        if file not in self._lines:
            text = _read_text(self._project / file) or ""
            self._lines[file] = text.splitlines()
        lines = self._lines[file]
        line = lines[number - 1] if 0 < number <= len(lines) else ""
        previous = lines[number - 2] if 1 < number <= len(lines) + 1 else ""
        return line, previous


def _finding(hit: _Hit, lines: _LineReader, reviewed: ReviewedSecrets) -> Finding:
    message = f"{hit.name} (hashed_secret {hit.hashes[0]})"
    line, previous = lines.line_and_previous(hit.file, hit.line)
    suppression = None
    if secret_patterns.has_allow_marker(line, previous):
        suppression = f"allowed inline ({secret_patterns.ALLOW_MARKER})"

    audit = reviewed.lookup(hit.file, hit.line, hit.hashes)
    if audit is True:
        suppression = None
        message += "; audited as a real secret in the baseline"
    elif audit is False and suppression is None:
        suppression = "reviewed in baseline"

    return Finding(hit.file, hit.line or None, hit.rule, message, "error", suppression)


def _report(tool_report: dict, pattern_hits: list[_Hit]) -> bytes:
    """Return the check's JSON report: detect-secrets' report and the pattern hits, hashes only."""
    results: dict[str, list[dict]] = defaultdict(list)
    for hit in pattern_hits:
        results[hit.file].append({"type": hit.name, "rule": hit.rule, "line_number": hit.line,
                                  "hashed_secret": hit.hashes[0]})
    document = {"detect_secrets": tool_report,
                "patterns": {"module": secret_patterns.__name__, "results": dict(results)}}
    return json.dumps(document, indent=2, sort_keys=True).encode("utf-8")


def _judge(findings: list[Finding], scanned: int, tool_run: ToolRun | None,
           report: bytes) -> CheckResult:
    active = [finding for finding in findings if finding.suppression is None]
    suppressed = len(findings) - len(active)
    tail = f"; {suppressed} suppressed" if suppressed else ""
    if not active:
        summary = f"No secrets in {plural(scanned, 'file')}{tail}."
        return _result(Status.PASS, summary, tool_run, findings, report)

    files = len({finding.file for finding in active})
    summary = f"{plural(len(active), 'secret')} in {plural(files, 'file')}{tail}."
    return _result(Status.FAIL, summary, tool_run, findings, report)


def _result(status: Status, summary: str, tool_run: ToolRun | None = None,
            findings: list[Finding] | None = None, report: bytes = b"") -> CheckResult:
    return CheckResult(
        check=NAME, status=status, summary=summary, tool=TOOL,
        tool_version=distribution_version(TOOL), findings=findings or [],
        exit_code=tool_run.exit_code if tool_run is not None else None,
        report=report, report_name="secrets.json" if report else "",
    )


def _tail(text: str, limit: int = 600) -> str:
    text = text.strip()
    return text[-limit:] if text else "(no output on stderr)"

"""Run a check's external tool with a timeout and report its version."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

from ..errors import CheckTimeout, ToolMissing
from .model import CheckResult, Finding, Status

log = logging.getLogger(__name__)

# Terminal colour and cursor codes, which tools print even into pipes now and then.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True)
class ToolRun:
    argv: tuple[str, ...]
    exit_code: int
    stdout: bytes
    stderr: bytes
    duration_s: float


def run_tool(check: str, argv: list[str], *, cwd: Path, timeout_s: float,
             env: dict[str, str] | None = None) -> ToolRun:
    """Run ``argv`` in ``cwd``; raise CheckTimeout past ``timeout_s`` and ToolMissing if absent.

    The whole process group is killed on timeout, so a tool's own children do not outlive it.
    """
    if shutil.which(argv[0]) is None and not Path(argv[0]).exists():
        raise ToolMissing(f"check '{check}': '{argv[0]}' is not installed; "
                          f"install it in this environment (pip install tinysdlc-nb)")

    merged_env = {**os.environ, **(env or {})}
    started = time.monotonic()
    log.info("check %s: running %s", check, " ".join(argv))
    process = subprocess.Popen(argv, cwd=cwd, env=merged_env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired as timeout:
        _kill_group(process)
        process.communicate()
        raise CheckTimeout(check, timeout_s) from timeout

    duration = time.monotonic() - started
    log.info("check %s: exit %s after %.1f s", check, process.returncode, duration)
    return ToolRun(tuple(argv), process.returncode, stdout, stderr, duration)


def python_tool(module: str) -> list[str]:
    """Return the argv prefix that runs ``module`` with this interpreter (``python -m module``)."""
    return [sys.executable, "-m", module]


@cache
def distribution_version(name: str) -> str:
    """Return the installed version of distribution ``name``, or '' when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, 9)
    except ProcessLookupError:
        pass


def require_distribution(check: str, distribution: str) -> None:
    """Raise ToolMissing when ``distribution`` is not installed.

    ``run_tool`` notices a missing executable, but ``python -m MODULE`` always starts an
    interpreter, so checks that run their tool as a module ask here first.
    """
    if not distribution_version(distribution):
        raise ToolMissing(f"check '{check}': {distribution} is not installed in this "
                          f"environment; install it (pip install {distribution})")


def output_tail(output: bytes | str, limit: int = 600) -> str:
    """Return the end of a tool's output on one line, for an ERROR summary."""
    text = output.decode("utf-8", errors="replace") if isinstance(output, bytes) else output
    text = _ANSI_ESCAPE.sub("", text)
    return " ".join(text.strip()[-limit:].split()) or "no error output"


def plural(number: int, noun: str) -> str:
    """Return ``3 files`` or ``1 file``, with thousands separated."""
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


def result_from_run(check: str, tool: str, status: Status, summary: str,
                    tool_run: ToolRun | None, findings: list[Finding] | None,
                    report_name: str) -> CheckResult:
    """Build a check's result whose raw report is the tool's standard output."""
    return CheckResult(
        check=check, status=status, summary=summary, tool=tool,
        tool_version=distribution_version(tool), findings=findings or [],
        exit_code=tool_run.exit_code if tool_run else None,
        report=tool_run.stdout if tool_run else b"",
        report_name=report_name if tool_run else "",
    )

"""Small projects for end-to-end gate runs, written into a test's tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

CLI = [sys.executable, "-m", "tinysdlc_nb.cli"]

# Sends pip-audit to a closed port on this machine, so the dependency audit is UNAVAILABLE
# at once instead of asking a real advisory service.
OFFLINE_AUDIT = """
[checks.dependencies.env]
HTTPS_PROXY = "http://127.0.0.1:9"
HTTP_PROXY = "http://127.0.0.1:9"
NO_PROXY = ""
"""


def make_project(root: Path, *, config: str = "", test_body: str | None = None) -> Path:
    """Write a tiny, clean Python project with one passing test and return its folder."""
    project = root / "demo"
    (project / "demo").mkdir(parents=True)
    (project / "tests").mkdir()
    (project / ".tinysdlc").mkdir()
    (project / "pyproject.toml").write_text(textwrap.dedent("""\
        [project]
        name = "demo"
        version = "1.2.0"
        dependencies = ["packaging"]
        """))
    (project / "demo" / "__init__.py").write_text(textwrap.dedent('''\
        """A tiny package for gate tests."""


        def add(left: int, right: int) -> int:
            """Return the sum of two integers."""
            return left + right
        '''))
    body = test_body or textwrap.dedent("""\
        from demo import add


        def test_add():
            assert add(2, 3) == 5
        """)
    (project / "tests" / "test_add.py").write_text(body)
    (project / ".tinysdlc" / "config.toml").write_text(textwrap.dedent("""\
        [project]
        name = "demo"

        [checks.tests]
        command = "python -m pytest -q -p no:cacheprovider tests"
        cov_source = "demo"
        """) + OFFLINE_AUDIT + config)
    return project


def cli(*args: str, cwd: Path | None = None, env: dict | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real command line in a child process and capture what it prints."""
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})

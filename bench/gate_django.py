"""The benchmark's target and its sides: Django's sdist, the tools by hand, the G4 gate.

``baseline`` runs ruff, bandit and detect-secrets one after another, as a developer would
type them, on the extracted sdist. ``ours`` is one ``tinysdlc-nb gate g4`` command on the
same tree, with every G4 check except ``tests`` (Django's own suite is not what is timed).
``scoped`` runs the same three tools by hand again, limited to what the gate's checks scan
by default, so that the effect of the checks' narrower scope can be separated from the
effect of running them concurrently. All sides use the interpreter and virtualenv that
run this script.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field, fields
from pathlib import Path

from tinysdlc_nb.config import DATABASE_URL_ENV, HOME_ENV
from tinysdlc_nb.gates.checks import sast
from tinysdlc_nb.gates.files import iter_files
from tinysdlc_nb.gates.model import CheckContext
from tinysdlc_nb.gates.policy import G4_CHECKS
from tinysdlc_nb.settings import Section

log = logging.getLogger(__name__)

DJANGO = "django==5.2.8"
CACHE = Path(__file__).resolve().parent / ".cache"
TREE_NAME = "django-5.2.8"
ARCHIVE_NAME = f"{TREE_NAME}.tar.gz"

SIDES = ("baseline", "ours", "scoped")
GATE_CHECKS = [name for name in G4_CHECKS if name != "tests"]
BIN = Path(sys.executable).parent

# Every G4 check except tests. The dependencies check audits the whole environment, because
# with its default scope it stops at once with ERROR on Django, whose requirements are not
# installed in this virtualenv, and pip-audit would not run at all.
GATE_CONFIG = f"""\
[gate]
checks = [{", ".join(f'"{name}"' for name in GATE_CHECKS)}]

[checks.dependencies]
scope = "environment"
"""

# The detect-secrets plugins that the secrets check leaves off by default.
SECRETS_CHECK_OFF = ("Base64HighEntropyString", "HexHighEntropyString", "IPPublicDetector",
                     "KeywordDetector")

# Exit codes that mean the tool ran to the end. ruff and bandit exit 1 when they report
# findings. The gate exits 1, 3 or 4 for the verdicts FAILED, AWAITING_APPROVAL and
# INCOMPLETE, and 2 only when nothing was run.
_FINDINGS = (0, 1)
_GATE_VERDICTS = (0, 1, 3, 4)


@dataclass(frozen=True)
class Step:
    """One command of a side, with where its output goes and which exit codes are normal."""

    name: str
    argv: list[str]
    cwd: Path
    stdout: Path
    stderr: Path
    ok_exit_codes: tuple[int, ...]
    env: dict[str, str] = field(default_factory=dict)


def fetch_sdist() -> Path:
    """Return Django's cached sdist, downloading it with pip only when it is not there."""
    archive = CACHE / ARCHIVE_NAME
    if archive.is_file():
        return archive

    CACHE.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s into %s", DJANGO, CACHE)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
                    "--no-deps", DJANGO, "-d", str(CACHE)], check=True, timeout=600)
    if not archive.is_file():
        raise FileNotFoundError(f"pip download finished but {archive} is missing; "
                                f"check the files pip left in {CACHE}")
    return archive


def extract(archive: Path) -> Path:
    """Extract ``archive`` into the cache afresh and return the source tree.

    A fresh tree each time keeps caches and reports of earlier runs out of the timings.
    """
    tree = CACHE / TREE_NAME
    if tree.exists():
        shutil.rmtree(tree)

    with tarfile.open(archive) as sdist:
        sdist.extractall(CACHE, filter="data")
    if not tree.is_dir():
        raise FileNotFoundError(f"{archive} did not contain the folder {TREE_NAME}")
    return tree


def steps(side: str, tree: Path, work: Path) -> list[Step]:
    """Return the commands of ``side`` on ``tree``, writing their output under ``work``."""
    if side == "baseline":
        return baseline_steps(tree, work)
    if side == "ours":
        return ours_steps(tree, work)
    if side == "scoped":
        return scoped_steps(tree, work)
    raise ValueError(f"side '{side}' is invalid; expected one of {', '.join(SIDES)}")


def baseline_steps(tree: Path, work: Path) -> list[Step]:
    # --no-cache: without it ruff writes .ruff_cache into the tree and a later round reads it.
    ruff = [str(BIN / "ruff"), "check", "--no-cache", "--output-format", "json", "."]
    bandit = [str(BIN / "bandit"), "-r", ".", "-f", "json", "-q"]
    detect_secrets = [str(BIN / "detect-secrets"), "scan", "--all-files"]
    return [
        Step("ruff", ruff, tree, work / "ruff.json", work / "ruff.err", _FINDINGS),
        Step("bandit", bandit, tree, work / "bandit.json", work / "bandit.err", _FINDINGS),
        Step("detect-secrets", detect_secrets, tree, work / "detect-secrets.json",
             work / "detect-secrets.err", (0,)),
    ]


def ours_steps(tree: Path, work: Path) -> list[Step]:
    """Return the gate command, with a fresh home whose config.toml is GATE_CONFIG."""
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(GATE_CONFIG, encoding="utf-8")

    argv = [str(BIN / "tinysdlc-nb"), "gate", "g4", "--project", str(tree)]
    # An empty database URL makes the gate fall back to the SQLite store under the home.
    env = {HOME_ENV: str(home), DATABASE_URL_ENV: ""}
    return [Step("gate", argv, tree, work / "gate.out", work / "gate.err", _GATE_VERDICTS,
                 env)]


def scoped_steps(tree: Path, work: Path) -> list[Step]:
    """Return the baseline's tools limited to the files and plugins the gate's checks use."""
    ruff, _, detect_secrets = baseline_steps(tree, work)

    # The first of the sast check's bandit runs: the files it selects, # nosec ignored.
    bandit = [str(BIN / "bandit"), "-f", "json", "-q", "--ignore-nosec", "--",
              *sast_files(tree)]
    plugins_off = [arg for plugin in SECRETS_CHECK_OFF for arg in ("--disable-plugin", plugin)]
    return [
        ruff,
        Step("bandit", bandit, tree, work / "bandit.json", work / "bandit.err", _FINDINGS),
        Step("detect-secrets", [*detect_secrets.argv, *plugins_off], tree,
             detect_secrets.stdout, detect_secrets.stderr, (0,)),
    ]


def sast_files(tree: Path) -> list[str]:
    """Return the Python files the sast check passes to bandit with its default settings."""
    exclude_dirs = next(item.default for item in fields(CheckContext)
                        if item.name == "exclude_dirs")
    exclude_globs = Section("checks.sast", sast.SETTINGS).defaults()["exclude"]
    return [path.relative_to(tree).as_posix()
            for path in iter_files(tree, exclude_dirs, (".py",), exclude_globs)]


def child_env(step: Step) -> dict[str, str]:
    return {**os.environ, **step.env}

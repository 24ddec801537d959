"""Benchmark the G4 gate against running its tools by hand on Django 5.2.8 (``make bench``).

Each side runs in its own child process (``bench/measure.py``), the sides alternate within
every round, and the printed table and ``bench/RESULTS.md`` give the medians over rounds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import gate_django
import results
import results_page

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
RESULTS_PATH = HERE / "RESULTS.md"
RAW_PATH = gate_django.CACHE / "last-run.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds to run; each round runs every side once (default: 3)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds} is invalid; pass 1 or more")

    started = dt.datetime.now(dt.UTC)
    revision = product_revision()
    tree = gate_django.extract(gate_django.fetch_sdist())
    try:
        runs = run_rounds(tree, args.rounds)
    finally:
        # The extracted tree is removed so that gates run on this repository never scan it.
        shutil.rmtree(tree, ignore_errors=True)

    # The package is installed in editable mode, so an edit during the run changes the gate.
    revision_after = product_revision()
    if revision_after != revision:
        log.warning("tinysdlc_nb changed during the run (%s, then %s); rounds may have "
                    "measured different code", revision, revision_after)
        revision = f"{revision}, changed during the run to {revision_after}"

    RAW_PATH.write_text(json.dumps(runs, indent=1), encoding="utf-8")
    options = " ".join(sys.argv[1:] if argv is None else argv)
    print(results.table(runs))
    page = results_page.markdown(runs, options, started, revision)
    RESULTS_PATH.write_text(page, encoding="utf-8")
    print(f"\nWrote {RESULTS_PATH}")
    return 0


def run_rounds(tree: Path, rounds: int) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {side: [] for side in gate_django.SIDES}
    for number in range(1, rounds + 1):
        for side in gate_django.SIDES:
            log.info("round %d of %d: %s", number, rounds, side)
            measured = run_side(side, tree)
            log.info("%s: %.1f s wall, %.1f s CPU, and other processes used %.1f s CPU meanwhile",
                     side, measured["wall_s"], measured["cpu_s"], measured["other_cpu_s"])
            runs[side].append(measured)
    return runs


def run_side(side: str, tree: Path) -> dict:
    """Run one side in a child process; return its measurements and figures from its reports."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{side}-") as work:
        completed = subprocess.run(
            [sys.executable, str(HERE / "measure.py"), side, str(tree), work],
            stdout=subprocess.PIPE, text=True, check=True)
        measured = json.loads(completed.stdout)
        if side == "ours":
            measured.update(read_gate_summary(Path(work)))
        else:
            measured["bandit_files"] = bandit_file_count(Path(work) / "bandit.json")
    return measured


def read_gate_summary(work: Path) -> dict:
    """Return the verdict, each check's status, duration and summary, and bandit's file count."""
    reports = sorted((work / "home" / "reports").glob("*/summary.json"))
    if len(reports) != 1:
        raise RuntimeError(f"expected one summary.json under {work / 'home' / 'reports'}, "
                           f"found {len(reports)}")
    summary = json.loads(reports[0].read_text(encoding="utf-8"))

    checks = {item["item"]: {"status": item["status"], "duration_s": item["duration_s"],
                             "summary": item["summary"]}
              for item in summary["items"] if item["kind"] == "check"}
    bandit_report = reports[0].parent / "raw" / "sast-bandit.json"
    return {"verdict": summary["verdict"], "checks": checks,
            "bandit_files": bandit_file_count(bandit_report),
            **notebook_durations(reports[0].parent)}


def notebook_durations(report_dir: Path) -> dict:
    """Return papermill's timing of the executed notebook: the whole run and its longest cell.

    The longest cell is the one that runs the checks and writes the store and the reports.
    """
    notebooks = sorted(report_dir.glob("*.ipynb"))
    if len(notebooks) != 1:
        raise RuntimeError(f"expected one executed notebook in {report_dir}, "
                           f"found {len(notebooks)}")
    notebook = json.loads(notebooks[0].read_text(encoding="utf-8"))
    cells = [cell["metadata"].get("papermill", {}).get("duration") or 0.0
             for cell in notebook["cells"]]
    return {"notebook_s": notebook["metadata"]["papermill"]["duration"],
            "longest_cell_s": max(cells)}


def product_revision() -> str:
    """Return the checkout's commit, with a hash of any uncommitted change under tinysdlc_nb/."""
    try:
        commit = _git("rev-parse", "--short", "HEAD").strip()
        diff = _git("diff", "HEAD", "--", "tinysdlc_nb")
    except (OSError, subprocess.CalledProcessError) as error:
        log.warning("reading the git revision of %s failed: %s", HERE.parent, error)
        return "unknown (git failed)"

    if not diff:
        return f"commit {commit}"
    digest = hashlib.sha256(diff.encode("utf-8")).hexdigest()[:12]
    return f"commit {commit} with uncommitted changes under tinysdlc_nb/ (diff sha256 {digest})"


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=HERE.parent, stdout=subprocess.PIPE, text=True,
                          check=True).stdout


def bandit_file_count(report: Path) -> int | None:
    """Return how many files a bandit JSON report has metrics for, or None without a report."""
    if not report.is_file():
        return None
    metrics = json.loads(report.read_text(encoding="utf-8")).get("metrics", {})
    return len([name for name in metrics if name != "_totals"])


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    sys.exit(main())

"""Run the benchmarks of ``make bench``: the G4 gate on Django 5.2.8, incidents, team and runbooks.

The G4 benchmark compares the gate with running its tools by hand on Django 5.2.8.

Each side runs in its own child process (``bench/measure.py``), the sides alternate within
every round, and the printed table and ``bench/RESULTS.md`` give the medians over rounds.

``make bench`` also runs the incident benchmarks (``bench/incident_bench.py``). They time
the metrics over a generated history of a million timeline rows against a plain Python
loop, and the ingestion of Alertmanager payloads through ``ingest`` and ``serve``.

Last, it runs the team messaging benchmark (``bench/team_bench.py``): the queue's latency
and throughput through one worker against a folder of JSON files polled once a second,
and the hand-off parser against a regular expression.

Then the runbook benchmark (``bench/runbook_bench.py``): a 20-step runbook through
``tinysdlc-nb runbook run`` against the same commands in bash, for the cost per step and
the fixed start-up.

Last, the scheduler benchmark (``bench/scheduler_bench.py``): the start lateness of 100
jobs with second-level schedules against a heap of the same cron expressions, and the
idle scheduler's CPU share against a process that only sleeps.

``bench/run.py g4``, ``bench/run.py incidents``, ``bench/run.py team``,
``bench/run.py runbooks`` and ``bench/run.py scheduler`` run one benchmark each. Each
rewrites its own section of ``bench/RESULTS.md`` and keeps the others.
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
import incident_bench
import incident_page
import results
import results_page
import runbook_bench
import runbook_page
import scheduler_bench
import scheduler_page
import team_bench
import team_page

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
RESULTS_PATH = HERE / "RESULTS.md"
RAW_PATH = gate_django.CACHE / "last-run.json"
INCIDENTS_RAW_PATH = gate_django.CACHE / "incidents-last-run.json"
TEAM_RAW_PATH = gate_django.CACHE / "team-last-run.json"
RUNBOOKS_RAW_PATH = gate_django.CACHE / "runbooks-last-run.json"
SCHEDULER_RAW_PATH = gate_django.CACHE / "scheduler-last-run.json"
BENCHMARKS = ("g4", "incidents", "team", "runbooks", "scheduler")
DEFAULT_ROUNDS = 3
# One team round takes about three minutes, so the team benchmark runs one by default.
DEFAULT_TEAM_ROUNDS = 1
# A runbook round takes 20 to 40 s on an idle two-core machine, so five rounds fit.
DEFAULT_RUNBOOK_ROUNDS = 5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmarks", nargs="*", metavar="BENCHMARK",
                        help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--rounds", type=int,
                        help=f"rounds to run; each round runs every side once (default: "
                             f"{DEFAULT_ROUNDS}, {DEFAULT_TEAM_ROUNDS} for team and "
                             f"{DEFAULT_RUNBOOK_ROUNDS} for runbooks)")
    defaults = incident_bench.Sizes()
    parser.add_argument("--incidents", type=int, default=defaults.incidents,
                        help=f"incidents in the generated history (default: "
                             f"{defaults.incidents})")
    parser.add_argument("--rows", type=int, default=defaults.rows,
                        help=f"timeline rows in the generated history (default: "
                             f"{defaults.rows})")
    parser.add_argument("--payloads", type=int, default=defaults.payloads,
                        help=f"Alertmanager payloads per ingestion run (default: "
                             f"{defaults.payloads})")
    parser.add_argument("--stdin-payloads", type=int, default=defaults.stdin_payloads,
                        help=f"payloads ingested one process each through standard input "
                             f"(default: {defaults.stdin_payloads})")
    team_defaults = team_bench.Sizes()
    parser.add_argument("--team-messages", type=int, default=team_defaults.messages,
                        help=f"messages per throughput run of the team benchmark "
                             f"(default: {team_defaults.messages})")
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error(f"--rounds {args.rounds} is invalid; pass 1 or more")
    unknown = [name for name in args.benchmarks if name not in BENCHMARKS]
    if unknown:
        parser.error(f"benchmark {unknown[0]!r} is unknown; choose from "
                     f"{', '.join(BENCHMARKS)}")
    for name in ("incidents", "rows", "payloads", "stdin_payloads", "team_messages"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)} is invalid; "
                         f"pass 1 or more")

    selected = args.benchmarks or list(BENCHMARKS)
    options = " ".join(sys.argv[1:] if argv is None else argv)
    rounds = args.rounds or DEFAULT_ROUNDS
    if "g4" in selected:
        run_g4(rounds, options)
    if "incidents" in selected:
        sizes = incident_bench.Sizes(incidents=args.incidents, rows=args.rows,
                                     payloads=args.payloads,
                                     stdin_payloads=args.stdin_payloads)
        run_incidents(rounds, sizes)
    if "team" in selected:
        run_team(args.rounds or DEFAULT_TEAM_ROUNDS,
                 team_bench.Sizes(messages=args.team_messages))
    if "runbooks" in selected:
        run_runbooks(args.rounds or DEFAULT_RUNBOOK_ROUNDS)
    if "scheduler" in selected:
        run_scheduler()
    return 0


def run_g4(rounds: int, options: str) -> None:
    """Run the G4 benchmark and rewrite RESULTS.md, keeping its incident section."""
    started = dt.datetime.now(dt.UTC)
    revision = product_revision()
    tree = gate_django.extract(gate_django.fetch_sdist())
    try:
        runs = run_rounds(tree, rounds)
    finally:
        # The extracted tree is removed so that gates run on this repository never scan it.
        shutil.rmtree(tree, ignore_errors=True)

    revision = checked_revision(revision)
    RAW_PATH.write_text(json.dumps(runs, indent=1), encoding="utf-8")
    print(results.table(runs))
    page = results_page.markdown(runs, options, started, revision)
    previous = _read_results()
    for kept in (incident_page.kept_section(previous), team_page.kept_section(previous),
                 runbook_page.kept_section(previous), scheduler_page.kept_section(previous)):
        if kept:
            page += f"\n{kept}"
    RESULTS_PATH.write_text(page, encoding="utf-8")
    print(f"\nWrote {RESULTS_PATH}")


def run_incidents(rounds: int, sizes: incident_bench.Sizes) -> None:
    """Run the incident benchmarks and rewrite the incident section of RESULTS.md."""
    started = dt.datetime.now(dt.UTC)
    revision = product_revision()
    data = incident_bench.run(rounds, sizes)
    revision = checked_revision(revision)

    gate_django.CACHE.mkdir(parents=True, exist_ok=True)
    INCIDENTS_RAW_PATH.write_text(json.dumps(data, indent=1), encoding="utf-8")
    options = " ".join(["incidents", f"--rounds {rounds}", *(
        f"--{name.replace('_', '-')} {value}" for name, value in sizes.__dict__.items()
        if name != "clients" and value != getattr(incident_bench.Sizes(), name))])
    section = incident_page.section(data, options, started, revision)
    print(section)
    RESULTS_PATH.write_text(incident_page.replace_section(_read_results(), section),
                            encoding="utf-8")
    print(f"Wrote the incident section of {RESULTS_PATH}")


def run_team(rounds: int, sizes: team_bench.Sizes) -> None:
    """Run the team messaging benchmark and rewrite the team section of RESULTS.md."""
    started = dt.datetime.now(dt.UTC)
    revision = product_revision()
    data = team_bench.run(rounds, sizes)
    revision = checked_revision(revision)

    gate_django.CACHE.mkdir(parents=True, exist_ok=True)
    TEAM_RAW_PATH.write_text(json.dumps(data, indent=1), encoding="utf-8")
    options = " ".join(["team", *([f"--rounds {rounds}"] if rounds != DEFAULT_TEAM_ROUNDS
                                  else []),
                        *([f"--team-messages {sizes.messages}"]
                          if sizes.messages != team_bench.Sizes().messages else [])])
    section = team_page.section(data, options, started, revision)
    print(section)
    RESULTS_PATH.write_text(team_page.replace_section(_read_results(), section),
                            encoding="utf-8")
    print(f"Wrote the team section of {RESULTS_PATH}")


def run_runbooks(rounds: int) -> None:
    """Run the runbook benchmark and rewrite the runbook section of RESULTS.md."""
    started = dt.datetime.now(dt.UTC)
    revision = product_revision()
    data = runbook_bench.run(rounds)
    revision = checked_revision(revision)

    gate_django.CACHE.mkdir(parents=True, exist_ok=True)
    RUNBOOKS_RAW_PATH.write_text(json.dumps(data, indent=1), encoding="utf-8")
    options = "runbooks" + (f" --rounds {rounds}" if rounds != DEFAULT_RUNBOOK_ROUNDS else "")
    section = runbook_page.section(data, options, started, revision)
    print(section)
    RESULTS_PATH.write_text(runbook_page.replace_section(_read_results(), section),
                            encoding="utf-8")
    print(f"Wrote the runbook section of {RESULTS_PATH}")


def run_scheduler() -> None:
    """Run the scheduler benchmark and rewrite the scheduler section of RESULTS.md."""
    started = dt.datetime.now(dt.UTC)
    revision = product_revision()
    data = scheduler_bench.run()
    revision = checked_revision(revision)

    gate_django.CACHE.mkdir(parents=True, exist_ok=True)
    SCHEDULER_RAW_PATH.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    section = scheduler_page.section(data, "scheduler", started, revision)
    print(section)
    RESULTS_PATH.write_text(scheduler_page.replace_section(_read_results(), section),
                            encoding="utf-8")
    print(f"Wrote the scheduler section of {RESULTS_PATH}")


def checked_revision(revision: str) -> str:
    """Return ``revision``, noting a change of tinysdlc_nb since it was read."""
    # The package is installed in editable mode, so an edit during the run changes the
    # measured code.
    revision_after = product_revision()
    if revision_after != revision:
        log.warning("tinysdlc_nb changed during the run (%s, then %s); rounds may have "
                    "measured different code", revision, revision_after)
        revision = f"{revision}, changed during the run to {revision_after}"
    return revision


def _read_results() -> str:
    return RESULTS_PATH.read_text(encoding="utf-8") if RESULTS_PATH.is_file() else ""


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

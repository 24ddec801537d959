"""Write ``bench/RESULTS.md``: the figures, the machine, the tool versions and the method."""

from __future__ import annotations

import datetime as dt
import logging
import os
import platform
from importlib import metadata
from pathlib import Path

import gate_django
import results
from results import SIDE_TITLES, markdown_table

log = logging.getLogger(__name__)

DISTRIBUTIONS = ("tinysdlc-nb", "ruff", "bandit", "detect-secrets", "pip-audit", "pip-licenses",
                 "cyclonedx-bom", "papermill", "nbclient", "ipykernel", "jupyter_client",
                 "psutil")

# Past this many arguments a command is shown shortened (the scoped bandit run lists files).
_SHOWN_ARGUMENTS = 12

METHOD = """\
- Each side runs in its own child process (`bench/measure.py`), which starts the side's
  commands one after another and waits for each. The sides alternate within every round,
  in the order: by hand, gate, by hand with the gate's scope.
- Before each side starts, that child process waits up to 120 s for a 2 s window in which
  other processes used less than 10% of one core. The wait is not part of any figure.
- Wall time: `time.perf_counter()` around the side's commands, in that child process.
- CPU time: user plus system time of `resource.getrusage(RUSAGE_CHILDREN)` read in that
  child process at the end. It covers every process of the side that was waited for: the
  tools, detect-secrets' worker processes, and for the gate the Jupyter kernel and the
  tools it starts.
- Max RSS of the largest process: `ru_maxrss` of the same `RUSAGE_CHILDREN` reading. It
  is the peak of the largest single process, not a sum over processes that run at once.
- Peak RSS summed over the process tree: the RSS of the command and all its descendants,
  added up every 0.2 s with psutil. A page shared by several processes counts once per
  process, so this can exceed the memory really in use, and a peak shorter than 0.2 s
  can be missed.
- Gate check durations are the `duration_s` that the gate writes for each item of
  `summary.json`: the time from the start of a check to its result, measured in the kernel
  while the other checks run.
- CPU time of other processes: the machine's busy CPU time from `/proc/stat` over the
  side's run, minus the side's own CPU time. It includes the small share of the RSS
  sampler. A large value means that something else ran on the machine and slowed the side.
- Medians are over rounds. With two rounds the median is the mean of the two.
- Every measurement of the last run, per round, is kept in `bench/.cache/last-run.json`,
  which git ignores.
- The Django tree is extracted afresh from the cached sdist before the first round and
  deleted after the last. No side writes into it: ruff runs with `--no-cache`, and the
  gate's store and reports go to `TINYSDLC_NB_HOME` in a temporary folder. Each side's
  output goes to its own temporary folder, deleted after the side's run."""

NOTES = """\
- `dependencies` is UNAVAILABLE on this machine: the vulnerability service pip-audit
  queries returns HTTP 404 for every package, and the check reports UNAVAILABLE rather
  than PASS when no vulnerability data came back. Its time is the time of those requests.
- `dependencies` audits every distribution installed in the virtualenv that runs the gate
  (the benchmark's own `.venv`, with `scope = "environment"`), not Django's requirements.
  The licenses check keeps its default scope, Django's declared requirements, and reports
  asgiref and sqlparse as not installed in that virtualenv.
- `sbom` is SKIPPED at the lite tier (the default), so cyclonedx-py does not run.
- The gate runs ruff twice (the second run with `--ignore-noqa` lists the findings that
  `# noqa` silences) and bandit twice (the second run, without `--ignore-nosec`, covers
  only the files with `# nosec` results). It also runs checks the baseline has no
  counterpart for: `zero_mock`, `dependencies`, `licenses` and `migrations`."""

ONE_OFF = """\
These were measured on 2026-12-04 on the same machine, with the tree extracted to a
temporary folder, and are not rerun by `make bench`.

- `python -X importtime -c "import tinysdlc_nb.gatecmd"`: 1.8 s of imports before the
  gate command starts the notebook (2.1 s wall with the interpreter's start). 0.7 s of
  that is `rfc3987_syntax`, which jsonschema's format checkers import when nbformat
  loads jsonschema.
- `python -m cProfile .venv/bin/tinysdlc-nb gate g4 --project .` (57.3 s in all): 53.0 s
  in papermill's `execute_notebook`, 2.9 s importing `tinysdlc_nb.gatecmd`, 0.5 s in the
  HTML export.
- The secrets check's own pattern scan (`_scan_with_patterns`, which reads every file a
  second time in a thread of the kernel) alone: 0.9 s of CPU time for 5,500 files. The
  secrets check takes longer in the gate than detect-secrets by hand because the other
  checks use the same two cores, not because of that scan."""


def markdown(runs: dict[str, list[dict]], options: str, started: dt.datetime,
             revision: str) -> str:
    """Return the whole RESULTS.md page for the measured ``runs``."""
    rounds = len(runs["ours"])
    medians = {side: results.side_medians(side_runs) for side, side_runs in runs.items()}
    wall_ratio = results.ratio(medians["ours"]["wall_s"], medians["baseline"]["wall_s"])
    verdict = "met" if wall_ratio <= 1.0 else "not met"
    command = f".venv/bin/python bench/run.py {options}".rstrip()
    if not options:
        command = f"make bench  # runs {command}"

    sections = [
        "# Benchmark: the G4 gate against its tools run by hand, on Django 5.2.8",
        f"Written by `bench/run.py` on {started:%Y-%m-%d %H:%M} UTC, {rounds} rounds, on "
        f"tinysdlc-nb {revision}. Running the command again rewrites this page."
        f"\n\n```\n{command}\n```",
        f"## Result\n\nWall time, gate / by hand: **{wall_ratio:.2f}** (median of {rounds} "
        f"rounds; target at most 1.0: {verdict}).\n\n{markdown_table(results.metric_rows(runs))}",
        "## Reading the result\n\n" + "\n".join(_reading(runs)),
        "## Where the gate's time goes (medians)\n\n"
        + markdown_table(results.breakdown_rows(runs["ours"])),
        "## Each tool by hand (medians)\n\n" + markdown_table(results.step_rows(runs)),
        "## Each gate check (medians)\n\n" + _verdicts(runs["ours"]) + "\n\n"
        + markdown_table(results.check_rows(runs["ours"])),
        "## Every round\n\n" + markdown_table(results.round_rows(runs)),
        "## What each side ran\n\n" + _sides(runs),
        "## Notes on the gate's items\n\n" + NOTES,
        "## How it is measured\n\n" + METHOD,
        "## Measured once by hand\n\n" + ONE_OFF,
        "## Machine\n\n" + markdown_table([["what", "value"], *_machine()]),
        "## Tool versions\n\n" + markdown_table([["distribution", "version"], *_versions()]),
    ]
    return "\n\n".join(sections) + "\n"


def _reading(runs: dict[str, list[dict]]) -> list[str]:
    """Return sentences that put the medians side by side, with the numbers filled in."""
    by_hand = {side: results.step_medians(runs[side]) for side in ("baseline", "scoped")}
    medians = {side: results.side_medians(side_runs) for side, side_runs in runs.items()}
    totals = {side: values["wall_s"] for side, values in medians.items()}
    cpu = {side: values["cpu_s"] for side, values in medians.items()}
    rss = {side: values["tree_rss_peak_kib"] for side, values in medians.items()}
    max_rss = {side: values["max_rss_kib"] for side, values in medians.items()}
    checks = results.check_medians(runs["ours"])
    durations = {name: values["duration_s"] for name, values in checks.items()}
    slowest = max(durations, key=durations.get)
    cores = len(os.sched_getaffinity(0))

    return [
        f"- The gate's slowest check is `{slowest}` at {durations[slowest]:.1f} s, and the "
        f"whole gate command takes {totals['ours']:.1f} s. The section \"Where the gate's "
        f"time goes\" splits that time, using papermill's durations of the notebook and "
        f"of its longest cell (the one that runs the checks and writes the store and the "
        f"reports) and the slowest check's `duration_s`.",
        f"- The durations of the {len(durations)} checks add up to "
        f"{sum(durations.values()):.1f} s, against {totals['ours']:.1f} s of wall time for "
        f"the gate. Each check is slower than it would be alone, because up to 4 of them "
        f"(`[gate] max_workers`) share {cores} cores.",
        f"- On {cores} cores no side can take less wall time than its CPU time divided by "
        f"{cores}: {cpu['ours'] / cores:.1f} s for the gate, {cpu['scoped'] / cores:.1f} s "
        f"by hand with the gate's scope and {cpu['baseline'] / cores:.1f} s by hand. "
        f"detect-secrets starts one worker process per core in every side (no `--cores`), "
        f"so the checks that run beside it take CPU time from it rather than using idle "
        f"cores.",
        f"- At its peak the gate's process tree holds {rss['ours']:.0f} MiB of RSS, against "
        f"{rss['baseline']:.0f} MiB by hand: the gate command and its Jupyter kernel stay "
        f"up for the whole run, the largest process of the gate takes "
        f"{max_rss['ours']:.0f} MiB, and up to four checks run their tools at once.",
        f"- Limiting the tools to the gate's scope takes the by-hand time from "
        f"{totals['baseline']:.1f} s to {totals['scoped']:.1f} s. By hand, detect-secrets "
        f"runs every plugin in {by_hand['baseline']['detect-secrets']['wall_s']:.1f} s; "
        f"without the four the secrets check leaves off "
        f"({', '.join(gate_django.SECRETS_CHECK_OFF)}) it takes "
        f"{by_hand['scoped']['detect-secrets']['wall_s']:.1f} s. `bandit -r .` reads "
        f"{_files(runs['baseline'])} files in {by_hand['baseline']['bandit']['wall_s']:.1f} s; "
        f"over the {_files(runs['scoped'])} files the sast check selects it takes "
        f"{by_hand['scoped']['bandit']['wall_s']:.1f} s.",
        f"- Against the tools by hand with the gate's scope, the gate's wall-time ratio is "
        f"{results.ratio(totals['ours'], totals['scoped']):.2f}. That comparison leaves out "
        f"the four checks the gate runs on top (see the notes below).",
    ]


def _verdicts(side_runs: list[dict]) -> str:
    verdicts = ", ".join(f"{run['verdict']} (exit {run['steps'][0]['exit_code']})"
                         for run in side_runs)
    return f"Gate verdict in each round: {verdicts}."


def _files(side_runs: list[dict]) -> str:
    counts = {run["bandit_files"] for run in side_runs}
    return "/".join(str(count) for count in sorted(counts, key=str))


def _sides(runs: dict[str, list[dict]]) -> str:
    tree = str(gate_django.CACHE / gate_django.TREE_NAME)
    parts = [
        f"Every command runs in the extracted sdist (`bench/.cache/{gate_django.TREE_NAME}`, "
        f"about 490,000 lines of Python), with the tools of the same `.venv`. `$WORK` is a "
        f"new temporary folder for each run of a side.",
        f"**{SIDE_TITLES['baseline']}**: the three tools one after another.\n\n"
        f"```\n{_commands(runs['baseline'], tree)}\n```",
        f"**{SIDE_TITLES['ours']}**: one gate command, with `TINYSDLC_NB_HOME` set to a new "
        f"temporary folder with this `config.toml`, so that every G4 check runs except "
        f"`tests`:\n\n```toml\n{gate_django.GATE_CONFIG}```\n\nThe dependencies check "
        f"audits the whole environment because with its default scope it stops at once "
        f"with ERROR on Django, whose requirements are not installed in the `.venv`, and "
        f"pip-audit would not run. Everything else is the default: tier lite, `max_workers` "
        f"4, and a SQLite store in that folder. The command executes the notebook with "
        f"papermill and writes the executed notebook, the HTML report, SARIF, JUnit and "
        f"summary.json.\n\n```\n{_commands(runs['ours'], tree)}\n```",
        f"**{SIDE_TITLES['scoped']}**: the baseline's tools limited to what the checks scan "
        f"by default. bandit gets the files the sast check selects (tests, `test_*.py`, "
        f"`conftest.py` and docs left out) with `--ignore-nosec`, as in the check's first "
        f"run. detect-secrets runs without the four plugins the secrets check leaves off. "
        f"It runs none of the gate's other checks.\n\n"
        f"```\n{_commands(runs['scoped'], tree)}\n```",
    ]
    return "\n\n".join(parts)


def _commands(side_runs: list[dict], tree: str) -> str:
    """Return the side's commands as shell lines, with ``$WORK`` for its temporary folder."""
    lines = []
    work = side_runs[0]["work"]
    for step in side_runs[0]["steps"]:
        env = [f"{name}={value.replace(work, '$WORK')}" for name, value in step["env"].items()]
        argv = [Path(step["argv"][0]).name,
                *(arg.replace(tree, "bench/.cache/" + gate_django.TREE_NAME)
                  for arg in step["argv"][1:])]
        if len(argv) > _SHOWN_ARGUMENTS:
            hidden = len(argv) - _SHOWN_ARGUMENTS
            argv = [*argv[:_SHOWN_ARGUMENTS], f"... ({hidden} more file arguments)"]
        lines.append(f"{' '.join([*env, *argv])} > $WORK/{step['stdout']}")
    return "\n".join(lines)


def _machine() -> list[list[str]]:
    return [
        ["cores (nproc)", str(len(os.sched_getaffinity(0)))],
        ["CPU model (/proc/cpuinfo)", _proc_value("/proc/cpuinfo", "model name")],
        ["memory (MemTotal)", _memory()],
        ["Python", platform.python_version()],
        ["Linux kernel", platform.release()],
    ]


def _memory() -> str:
    kib = int(_proc_value("/proc/meminfo", "MemTotal").split()[0])
    return f"{kib / 1024 ** 2:.1f} GiB"


def _proc_value(path: str, key: str) -> str:
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        name, _, value = line.partition(":")
        if name.strip() == key:
            return value.strip()
    return "unknown"


def _versions() -> list[list[str]]:
    rows = []
    for name in DISTRIBUTIONS:
        try:
            rows.append([name, metadata.version(name)])
        except metadata.PackageNotFoundError:
            rows.append([name, "not installed"])
    return rows


def replace_section(page: str, new_section: str, begin: str, end: str) -> str:
    """Return ``page`` with the section between ``begin`` and ``end`` replaced, or appended."""
    if begin in page and end in page:
        before, rest = page.split(begin, 1)
        after = rest.split(end, 1)[1]
        return before + new_section.rstrip("\n") + after
    return page.rstrip("\n") + "\n\n" + new_section


def kept_section(page: str, begin: str, end: str) -> str:
    """Return the section of ``page`` between ``begin`` and ``end`` with its markers, or ""."""
    if begin not in page or end not in page:
        return ""
    return begin + page.split(begin, 1)[1].split(end, 1)[0] + end + "\n"

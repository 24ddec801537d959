"""The runbook section of ``bench/RESULTS.md``: a runbook's cost per step and at start-up."""

from __future__ import annotations

import datetime as dt
from importlib import metadata

import results_page
from results import markdown_table, median

BEGIN = "<!-- runbook benchmarks: begin; bench/run.py runbooks rewrites this section -->"
END = "<!-- runbook benchmarks: end -->"
TARGET_STEP_OVERHEAD_S = 0.050
TARGET_STARTUP_MARGIN_S = 1.0
# A recorded step duration this far above the command's own time counts as one where the
# runner waited a poll interval (50 ms in tinysdlc_nb/runbooks/shell.py) after the output.
WAIT_THRESHOLD_S = 0.025
MIN_SHOWN_IMPORT_S = 0.001
# A difference in save time below this is noise, not growth with the notebook.
SAVE_GROWTH_SHOWN_S = 0.002
# A markdown cell shorter than this cannot include a save: one save of the 1-step notebook,
# the smallest here, took about 6 ms with papermill 2.7.0 on a two-core AMD EPYC.
MIN_SAVE_S = 0.002
# Import time of rfc3987-syntax below this means its grammars were not built.
MIN_BUILD_S = 0.1
DISTRIBUTIONS = ("tinysdlc-nb", "papermill", "nbclient", "nbformat", "ipykernel",
                 "jupyter_client", "jsonschema", "rfc3987-syntax", "SQLAlchemy")

SIDE_TITLES = {
    "script": "A: `bash script.sh`, 20 commands in one bash",
    "per_process_20": "A2: 20 commands, one `bash -c` each",
    "per_process_1": "A2: 1 command in its own `bash -c`",
    "papermill": "C: `run_notebook` on an empty notebook",
    "papermill_no_iri": "C2: the same with rfc3987-syntax marked absent, as the CLI does",
    "runbook_1": "B1: `tinysdlc-nb runbook run`, 1 step",
    "runbook_20": "B20: `tinysdlc-nb runbook run`, 20 steps",
}

SHORT_TITLES = {"script": "A", "per_process_20": "A2, 20", "per_process_1": "A2, 1",
                "papermill": "C", "papermill_no_iri": "C2", "runbook_1": "B1",
                "runbook_20": "B20"}

METHOD = """\
- Each side runs in a child process of `bench/runbook_bench.py`, timed from its start to
  its exit, in the order of the table above within each round. One untimed run of every
  side comes first, so the store exists and the imports are in the page cache.
- Every step is `echo step N; date +%s%N >/dev/null`. Both runbooks also have one
  Prerequisites check (`command bash`), one Verification step and one Rollback step
  (`true`, not run), so `tinysdlc-nb runbook lint` reports no problem. Those cells count
  as start-up.
- Cost per step of B = (B20 - B1) / 19, and of A2 = (A2 with 20 - A2 with 1) / 19; the
  overhead per step is their difference. Start-up of B = B1 minus one step's cost. Each
  figure is computed per round, then the median over rounds is shown.
- C runs `tinysdlc_nb.execute.run_notebook` (papermill with the kernel `runbook run`
  uses) on a notebook with a tagged parameters cell and one empty code cell, in a new
  Python process that imports it first. C2 does the same after setting
  `sys.modules["rfc3987_syntax"] = None`, which makes jsonschema skip that package.
- The step breakdown reads each step's `started_at` and `duration_s` (the time
  `run_command` measured) from `tinysdlc-nb runbook history --json`, and papermill's
  timing of each cell from the executed notebook, for steps 2 to 19 of the B20 runs.
- The start-up timeline compares the clock at the child's start with the run's
  `started_at` in the store, papermill's start and end times and the cells' times.
- The profiles run once after the rounds: `python -X importtime` for the imports (the
  kernel-side one imports `ipykernel.kernelapp` first and counts only what follows),
  and cProfile for the CLI process of one 20-step run, whose figures are shares rather
  than speeds because cProfile slows Python code down.
- "Other processes' CPU" is the machine's busy CPU time from `/proc/stat` over the
  side, minus the side's own (its waited-for children, kernel included)."""

CLI_PROFILE_NOTE = """\
The import of tinysdlc_nb.cli happens before the profile starts. A `<module>` row
includes every import that module is the first to make, such as nbformat and jsonschema,
which the papermill side pays as well. The grammars rfc3987-syntax builds when jsonschema
is imported are pure Python, which cProfile slows down most."""


def section(data: dict, options: str, started: dt.datetime, revision: str) -> str:
    """Return the whole runbook section, between its BEGIN and END markers."""
    command = f".venv/bin/python bench/run.py {options}".rstrip()
    summary = derived(data)
    parts = [
        BEGIN,
        "# Benchmark: runbook steps against the same commands in bash",
        f"Written by `bench/run.py` on {started:%Y-%m-%d %H:%M} UTC, {data['rounds']} "
        f"round(s), on tinysdlc-nb {revision}. Load average (1, 5, 15 min) "
        f"{_load(data['load_before'])} before the rounds and {_load(data['load_after'])} "
        f"after them. `make bench` runs it last; running the command below rewrites only "
        f"this section.\n\n```\n{command}\n```",
        "## Targets\n\n" + markdown_table(_target_rows(summary)),
        "## Reading the result\n\n" + "\n".join(_reading(data, summary)),
        "## Each side (medians)\n\n" + markdown_table(_side_rows(data)),
        "## Where a step's time goes (means over steps 2 to 19 of B20, median of rounds)\n\n"
        + markdown_table(_step_rows(summary)),
        "## Where the start-up goes (medians)\n\n" + markdown_table(_startup_rows(data)),
        "## Imports\n\n" + _imports(data["profile"]),
        "## The CLI process under cProfile (one 20-step run)\n\n"
        + markdown_table(_cli_rows(data["profile"]["cli"])) + "\n\n" + CLI_PROFILE_NOTE,
        "## Every round\n\n" + markdown_table(_round_rows(data, summary)),
        "## How the runbook benchmark is measured\n\n" + METHOD,
        "## Machine and versions\n\n" + markdown_table([["what", "value"], *_machine()]),
        END,
    ]
    return "\n\n".join(parts) + "\n"


def replace_section(page: str, new_section: str) -> str:
    """Return ``page`` with its runbook section replaced by ``new_section``, or appended."""
    return results_page.replace_section(page, new_section, BEGIN, END)


def kept_section(page: str) -> str:
    """Return the runbook section of ``page`` with its markers, or "" if there is none."""
    return results_page.kept_section(page, BEGIN, END)


def derived(data: dict) -> dict:
    """Return the per-round figures and their medians: step cost, start-up, breakdown."""
    runs, steps = data["runs"], data["steps"]
    rounds = []
    for index in range(data["rounds"]):
        wall = {side: runs[side][index]["wall_s"] for side in runs}
        per_step_b = (wall["runbook_20"] - wall["runbook_1"]) / (steps - 1)
        per_step_a2 = (wall["per_process_20"] - wall["per_process_1"]) / (steps - 1)
        rounds.append({"per_step_b": per_step_b, "per_step_a2": per_step_a2,
                       "overhead": per_step_b - per_step_a2,
                       "startup_b": wall["runbook_1"] - per_step_b,
                       "papermill": wall["papermill"],
                       "papermill_no_iri": wall["papermill_no_iri"],
                       "save_1": _save_s(runs["runbook_1"][index]),
                       **_breakdown(runs["runbook_20"][index], per_step_a2)})
    medians = {key: median([entry[key] for entry in rounds]) for key in rounds[0]}
    return {"rounds": rounds, "median": medians}


def _breakdown(run: dict, command_s: float) -> dict:
    """Split the B20 steps 2 to 19 into the command, the runner's wait and the notebook.

    Each figure is the mean over those steps, since (B20 - B1) / 19 is a mean as well and
    the recorded durations come in two clusters (see ``waited``).
    """
    steps = [step for step in run["steps"] if step["phase"] == "step"]
    cells = {int(cell["first_line"].split()[1]): cell for cell in run["cells"]
             if cell["first_line"].startswith("%%step ")}
    middle = range(1, len(steps) - 1)
    started = [_utc(step["started_at"]) for step in steps]
    intervals = [(started[index + 1] - started[index]).total_seconds() for index in middle]
    recorded = [steps[index]["duration_s"] for index in middle]
    in_cell = [cells[index + 1]["duration_s"] - steps[index]["duration_s"] for index in middle]
    between = [(_utc(cells[index + 2]["start_time"]) - _utc(cells[index + 1]["end_time"]))
               .total_seconds() for index in middle]
    waited = [duration > command_s + WAIT_THRESHOLD_S for duration in recorded]
    return {"interval": _mean(intervals), "recorded": _mean(recorded),
            "recorded_median": median(recorded),
            "runner_wait": _mean(recorded) - command_s,
            "waited": sum(waited) / len(waited),
            "started_gap": _mean(intervals) - _mean(recorded),
            "in_cell": _mean(in_cell), "between_cells": _mean(between),
            "save": _save_s(run), "interval_overhead": _mean(intervals) - command_s}


def _save_s(run: dict) -> float:
    """Return the median papermill duration of the markdown cells, which execute nothing."""
    return median([cell["duration_s"] for cell in run["cells"] if cell["type"] == "markdown"])


def _target_rows(summary: dict) -> list[list[str]]:
    values = summary["median"]
    limit = values["papermill"] + TARGET_STARTUP_MARGIN_S
    limit_no_iri = values["papermill_no_iri"] + TARGET_STARTUP_MARGIN_S
    step_target = f"{TARGET_STEP_OVERHEAD_S * 1000:g} ms"
    return [
        ["target", "measured (median of rounds)", "met"],
        [f"overhead per step at most {step_target} beyond the command: (B20 - B1) / 19 "
         f"minus (A2 with 20 - A2 with 1) / 19",
         f"{values['overhead'] * 1000:.0f} ms ({values['per_step_b'] * 1000:.0f} ms per "
         f"runbook step, {values['per_step_a2'] * 1000:.1f} ms per `bash -c`)",
         _met(values["overhead"] <= TARGET_STEP_OVERHEAD_S)],
        ["cross-check of the same target: interval between consecutive steps' "
         "`started_at` minus the `bash -c` cost per step",
         f"{values['interval_overhead'] * 1000:.0f} ms ({values['interval'] * 1000:.0f} ms "
         f"between steps)", _met(values["interval_overhead"] <= TARGET_STEP_OVERHEAD_S)],
        [f"start-up at most papermill's on an empty notebook + {TARGET_STARTUP_MARGIN_S:g} s: "
         f"B1 minus one step's cost, against C",
         f"{values['startup_b']:.2f} s, against {values['papermill']:.2f} s + "
         f"{TARGET_STARTUP_MARGIN_S:g} s = {limit:.2f} s",
         _met(values["startup_b"] <= limit)],
        ["the same target on equal terms: against C2, which skips the rfc3987-syntax "
         "import as the `tinysdlc-nb` command does",
         f"{values['startup_b']:.2f} s, against {values['papermill_no_iri']:.2f} s + "
         f"{TARGET_STARTUP_MARGIN_S:g} s = {limit_no_iri:.2f} s",
         _met(values["startup_b"] <= limit_no_iri)],
    ]


def _reading(data: dict, summary: dict) -> list[str]:
    values = summary["median"]
    imports = data["profile"]["cli_imports"]
    kernel = data["profile"]["kernel_import"]
    timeline = {name: median(column) for name, column in _timelines(data).items()}
    return [
        f"- A runbook step costs {values['per_step_b'] * 1000:.0f} ms by the wall times and "
        f"{values['interval'] * 1000:.0f} ms by the store's `started_at`, where `bash -c` "
        f"costs {values['per_step_a2'] * 1000:.1f} ms. Of the gap of "
        f"{values['started_gap'] * 1000:.0f} ms between a step's end and the next step's "
        f"start, {values['between_cells'] * 1000:.0f} ms pass between the two step cells "
        f"and {values['in_cell'] * 1000:.0f} ms inside a step cell outside the command "
        f"(papermill's bookkeeping, the magic, the store's commit of the step, the output).",
        _save_line(values),
        _wait_line(values),
        f"- Start-up: B1 takes {timeline['b_total']:.2f} s and C {timeline['c_total']:.2f} s. "
        f"Before the run's record exists, B1 has spent {timeline['b_before_run']:.2f} s. C "
        f"reaches papermill's start after {timeline['c_before_papermill']:.2f} s. The CLI "
        f"imports {imports['extra_modules']} modules that C does not, "
        f"{imports['extra_s']:.2f} s in one profiled run "
        f"({_packages(imports['extra_by_package'], 4)}). In the kernel the session cell "
        f"takes {timeline['b_session']:.2f} s, of which the import of "
        f"tinysdlc_nb.runbooks.session is about {kernel['total_s']:.2f} s "
        f"({_packages(kernel['by_package'], 3)}).",
        f"- C imports jsonschema through nbformat, and with rfc3987-syntax installed "
        f"jsonschema imports that package, which builds its grammars at import: "
        f"{_package_s(imports['papermill_by_package'], 'rfc3987_syntax'):.2f} s of C's "
        f"{imports['papermill_s']:.2f} s of imports. The runbook run's CLI "
        + ("imports it as well." if imports["runbook_rfc3987_syntax_s"] > MIN_BUILD_S else
           f"does not import it, so C2, which skips it too, is the baseline on equal terms: "
           f"{timeline['c2_total']:.2f} s."),
        *_busy_lines(data),
    ]


def _save_line(values: dict) -> str:
    """Describe what a markdown cell costs, which is papermill's bookkeeping of one cell."""
    line = (f"- A markdown cell executes nothing and takes {values['save'] * 1000:.1f} ms in "
            f"papermill with the 20-step notebook, {values['save_1'] * 1000:.1f} ms with the "
            f"1-step one.")
    if values["save"] < MIN_SAVE_S:
        return line + " That is too short for a save of the whole notebook, so papermill "\
                      "does not save it at each cell here."
    line += (" papermill 2.7's engine saves the whole notebook when a cell starts and when "
             "it ends, so that is about one save, and a step (a markdown cell and a code "
             "cell) pays four.")
    if values["save"] - values["save_1"] > SAVE_GROWTH_SHOWN_S:
        line += (" A save grows with the notebook, so the cells every runbook has cost more "
                 "in B20 than in B1, and the cost per step from the wall times exceeds the "
                 "interval between steps.")
    return line


def _wait_line(values: dict) -> str:
    line = (f"- The step runner records {values['recorded'] * 1000:.1f} ms per command on "
            f"average (median {values['recorded_median'] * 1000:.1f} ms), against "
            f"{values['per_step_a2'] * 1000:.1f} ms for `bash -c`.")
    if values["waited"] > 0:
        line += (f" In {values['waited']:.0%} of the steps the recorded duration exceeds the "
                 f"command's by more than {WAIT_THRESHOLD_S * 1000:g} ms, the sign of a wait "
                 f"of one poll interval after the output ended.")
    return line


def _busy_lines(data: dict) -> list[str]:
    """Return a warning line when other processes used over half a core during a side."""
    busy = []
    for side in ("papermill", "papermill_no_iri", "runbook_1", "runbook_20"):
        runs = data["runs"][side]
        other = median([run["other_cpu_s"] for run in runs])
        wall = median([run["wall_s"] for run in runs])
        if other > 0.5 * wall:
            busy.append(f"{SHORT_TITLES[side]} ({other:.1f} s of CPU in {wall:.1f} s)")
    if not busy:
        return []
    return ["- Other processes used the CPU during " + ", ".join(busy) + " (medians), so "
            "those wall times are likely longer than on an idle machine. \"Every round\" "
            "shows how much each round was slowed."]


def _side_rows(data: dict) -> list[list[str]]:
    rows = [["side", "wall (s)", "CPU, user + system (s)", "other processes' CPU (s)"]]
    for side, runs in data["runs"].items():
        rows.append([SIDE_TITLES[side], f"{median([run['wall_s'] for run in runs]):.3f}",
                     f"{median([run['cpu_s'] for run in runs]):.2f}",
                     f"{median([run['other_cpu_s'] for run in runs]):.2f}"])
    return rows


def _step_rows(summary: dict) -> list[list[str]]:
    values = summary["median"]
    rows = [["part of a runbook step", "ms"],
            ["interval between consecutive steps' `started_at` (store)", values["interval"]],
            ["step duration the store recorded (`duration_s`)", values["recorded"]],
            ["- of which the command in `bash -c` (A2 per step)", values["per_step_a2"]],
            ["- of which the runner's wait after the command", values["runner_wait"]],
            ["gap: interval minus `duration_s` (per-cell overhead)", values["started_gap"]],
            ["- step cell's papermill duration minus `duration_s`", values["in_cell"]],
            ["- from a step cell's end to the next step cell's start", values["between_cells"]],
            ["a markdown cell's papermill duration (one save, when papermill saves per "
             "cell)", values["save"]]]
    table = [rows[0], *([label, f"{value * 1000:.1f}"] for label, value in rows[1:])]
    table.append(["steps where the runner waited a poll interval (share)",
                  f"{values['waited']:.0%}"])
    return table


def _timelines(data: dict) -> dict[str, list[float]]:
    columns: dict[str, list[float]] = {}
    for run in data["runs"]["runbook_1"]:
        for name, value in _timeline(run, with_run=True).items():
            columns.setdefault(f"b_{name}", []).append(value)
    for side, prefix in (("papermill", "c"), ("papermill_no_iri", "c2")):
        for run in data["runs"][side]:
            for name, value in _timeline(run, with_run=False).items():
                columns.setdefault(f"{prefix}_{name}", []).append(value)
    return columns


def _timeline(run: dict, with_run: bool) -> dict[str, float]:
    """Split one run's wall time at the clock readings the process and its files left."""
    start = dt.datetime.fromtimestamp(run["started_unix"], dt.UTC)
    notebook_start = _utc(run["notebook_start"])
    first_cell = _utc(run["cells"][0]["start_time"])
    last_cell = _utc(run["cells"][-1]["end_time"])
    notebook_end = notebook_start + dt.timedelta(seconds=run["notebook_s"])
    session = [cell for cell in run["cells"] if "runbooks.session import" in cell["first_line"]]
    parts = {"total": run["wall_s"]}
    if with_run:
        parts["before_run"] = (_utc(run["run_started_at"]) - start).total_seconds()
        parts["run_to_papermill"] = (notebook_start - _utc(run["run_started_at"])).total_seconds()
    else:
        parts["before_papermill"] = (notebook_start - start).total_seconds()
    parts["kernel_start"] = (first_cell - notebook_start).total_seconds()
    parts["session"] = session[0]["duration_s"] if session else 0.0
    parts["cells"] = (last_cell - first_cell).total_seconds() - parts["session"]
    parts["kernel_stop"] = (notebook_end - last_cell).total_seconds()
    parts["after_papermill"] = run["wall_s"] - (notebook_end - start).total_seconds()
    return parts


def _startup_rows(data: dict) -> list[list[str]]:
    columns = {name: median(values) for name, values in _timelines(data).items()}
    labels = [
        ("before_run", "process start to the run's record (Python, imports, config, store)"),
        ("run_to_papermill", "run's record to papermill's start (compile, papermill setup)"),
        ("before_papermill", "process start to papermill's start (Python, imports)"),
        ("kernel_start", "papermill's start to the first cell (kernel start)"),
        ("session", "session cell (imports tinysdlc_nb.runbooks.session, opens the store)"),
        ("cells", "every other cell"),
        ("kernel_stop", "last cell's end to papermill's end (kernel shutdown)"),
        ("after_papermill", "papermill's end to the process exit (redaction, write, "
                            "evidence, exit)"),
        ("total", "wall time"),
    ]
    rows = [["part (s)", "B1", "C", "C2"]]
    for name, label in labels:
        cells = [columns.get(f"{prefix}_{name}") for prefix in ("b", "c", "c2")]
        rows.append([label, *("" if value is None else f"{value:.3f}" for value in cells)])
    return rows


def _imports(profile: dict) -> str:
    kernel, cli = profile["kernel_import"], profile["cli_imports"]
    extra = [["package", "own import time (s)"],
             *([row["package"], f"{row['own_s']:.3f}"] for row in cli["extra_by_package"])]
    session = [["package", "own import time (s)"],
               *([row["package"], f"{row['own_s']:.3f}"] for row in kernel["by_package"]
                 if row["own_s"] >= MIN_SHOWN_IMPORT_S)]
    return "\n\n".join([
        f"CLI process: a 1-step `runbook run` imports {cli['runbook_modules']} modules in "
        f"{cli['runbook_s']:.2f} s and the papermill side {cli['papermill_modules']} modules "
        f"in {cli['papermill_s']:.2f} s. The {cli['extra_modules']} modules only the runbook "
        f"run imports take {cli['extra_s']:.2f} s, by top-level package:",
        markdown_table(extra),
        f"Kernel: `import tinysdlc_nb.runbooks.session` after `ipykernel.kernelapp` imports "
        f"{kernel['modules']} more modules in {kernel['total_s']:.3f} s:",
        markdown_table(session)])


def _cli_rows(profile: dict) -> list[list[str]]:
    # A watched function the run never called has no row.
    rows = [["function", "calls", "cumulative (s)", "share of the run"]]
    rows += [[f"`{name}`", f"{row['calls']:,}", f"{row['cumulative_s']:.3f}",
              f"{row['cumulative_s'] / profile['total_s']:.0%}"]
             for name, row in profile["watched"].items() if row is not None]
    return rows


def _round_rows(data: dict, summary: dict) -> list[list[str]]:
    sides = list(data["runs"])
    rows = [["round", *(f"{SHORT_TITLES[side]} (s)" for side in sides),
             "overhead per step (ms)", "start-up of B (s)",
             "other processes' CPU during C, C2, B1, B20 (s)"]]
    for index, figures in enumerate(summary["rounds"]):
        other = ", ".join(f"{data['runs'][side][index]['other_cpu_s']:.1f}"
                          for side in ("papermill", "papermill_no_iri", "runbook_1",
                                       "runbook_20"))
        rows.append([str(index + 1),
                     *(f"{data['runs'][side][index]['wall_s']:.3f}" for side in sides),
                     f"{figures['overhead'] * 1000:.0f}", f"{figures['startup_b']:.2f}", other])
    return rows


def _machine() -> list[list[str]]:
    rows = results_page._machine()
    for name in DISTRIBUTIONS:
        try:
            rows.append([name, metadata.version(name)])
        except metadata.PackageNotFoundError:
            rows.append([name, "not installed"])
    return rows


def _utc(text: str) -> dt.datetime:
    """Parse an ISO time. The store's times carry no offset but are UTC."""
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _packages(rows: list[dict], count: int) -> str:
    return ", ".join(f"{row['package']} {row['own_s']:.2f} s" for row in rows[:count])


def _package_s(rows: list[dict], package: str) -> float:
    return next((row["own_s"] for row in rows if row["package"] == package), 0.0)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _load(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


def _met(condition: bool) -> str:
    return "met" if condition else "**not met**"

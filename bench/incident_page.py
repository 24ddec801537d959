"""The incident section of ``bench/RESULTS.md``: figures, reading, method and machine."""

from __future__ import annotations

import datetime as dt
import sqlite3
from importlib import metadata

import incident_measure
import results_page
from results import markdown_table, median

BEGIN = "<!-- incident benchmarks: begin; bench/run.py incidents rewrites this section -->"
END = "<!-- incident benchmarks: end -->"
TARGET_RATIO = 0.05
DISTRIBUTIONS = ("tinysdlc-nb", "pandas", "numpy", "SQLAlchemy", "psutil")

WAY_TITLES = {
    "cli_files": "`ingest`, every file in one invocation",
    "cli_stdin": "`ingest -`, one invocation per payload",
    "serve_sequential": "`serve`, one client, one keep-alive connection",
    "serve_concurrent": "`serve`, {clients} concurrent clients",
}

METHOD = """\
- Metrics: each side runs in its own child process (`bench/incident_measure.py`), the
  sides alternate within every round, and each child opens the store before the clock
  starts. The pandas side calls `metrics.incident_table(store, policy, now=...)` and
  `metrics.severity_metrics(table)`; the plain side (`bench/incident_plain.py`) fetches
  the same rows with the standard `sqlite3` module and loops over them. Both read the same
  SQLite file, whose pages are in the OS page cache after the first round.
- Wall time: `time.perf_counter()` around the computation; CPU time:
  `time.process_time()` of the child over the same span.
- Peak RSS: just before the computation the child resets its peak (writing 5 to
  `/proc/self/clear_refs`) and reads its RSS; afterwards it reads the peak (VmHWM in
  `/proc/self/status`). The peak includes the interpreter and imports already loaded,
  and the growth is the peak minus the RSS before. `ru_maxrss` is not used, because in a
  child that `subprocess` starts it reported the parent's larger peak instead.
- The results are compared value by value after every round, before any ratio is
  reported: integers, strings and times (in microseconds) must be identical, and floats
  may differ by a relative 1e-9. The run stops with an error at the first difference.
- The step times come from one extra child that calls the product's public functions one
  by one, then runs the whole path once under `cProfile` (which slows it down, so those
  figures are only shares).
- Ingestion: the commands run as child processes with `TINYSDLC_NB_HOME` set to a new
  folder, so each way starts on an empty SQLite store. Wall time covers the whole
  command, interpreter start and imports included; for `serve` it covers the POSTs only,
  from a server that already answers `GET /healthz`. After each way the store must hold
  exactly one incident per payload.
- Before each measured part the benchmark waits up to 120 s for a 2 s window in which
  other processes used less than 10% of one core (`measure.wait_for_quiet_machine`).
  "Other processes' CPU" is the machine's busy time from `/proc/stat` over the part,
  minus the part's own CPU time; a large value means other work slowed the part.
- Medians are over rounds."""


ONE_OFF = """\
These were measured on 2026-12-04 on the same machine, on a history generated with the
default sizes, with scratch code that is not in the repository. `bench/run.py` does not
rerun them.

- Before commit e93716f the pandas side took 4.55 s (median of three calls), against
  2.15 s for the plain loop. Two prototype changes gave the same table and metrics in
  2.23 s: the highest severity as the minimum of an ordered categorical instead of the
  string column, where `groupby(...).min()` called Python once per incident; and
  `sla.evaluate` walking the about 6,000 incidents with severity changes over plain lists
  and assigning their deadlines at once, instead of about 24,000 `.loc` reads and as
  many writes. That commit made both changes in its own way (integer ranks, plain lists).
- `metrics.incident_table` also finds the estimated detections with a `LIKE` on
  `details`, which scans the whole timeline: 0.26 s, and the plain side runs the same
  query. With an index on `timeline (kind)` SQLite reads only the detected rows and the
  query takes 0.07 s; building that index over the 1,000,000 rows took 1.2 s and grew
  the file by 6%. The lifecycle query (`kind IN (...) OR supersedes IS NOT NULL`) still
  scanned the whole table with that index and one on `supersedes`.
- `serve` with Nagle's algorithm on (the `http.server` default), one payload at a time
  on one keep-alive connection: 48.6 ms per request; with `disable_nagle_algorithm`, as
  `serve.py` sets it: 4.5 ms. The handler writes the headers and the body separately,
  and the body waited for the client's delayed ACK of the headers.
- One `tinysdlc-nb ingest alertmanager -` of one payload takes 0.9 s, and
  `tinysdlc-nb --version` 0.75 s. `python -X importtime` puts 0.62 s of that in importing
  `tinysdlc_nb.cli`, which loads pandas (0.26 s), SQLAlchemy (0.14 s) and the migration
  code (0.11 s) through `tinysdlc_nb.approvals` and `tinysdlc_nb.store`."""


def section(data: dict, options: str, started: dt.datetime, revision: str) -> str:
    """Return the whole incident section, between its BEGIN and END markers."""
    metrics_data, ingestion = data["metrics"], data["ingestion"]
    rounds = len(metrics_data["runs"]["pandas"])
    command = f".venv/bin/python bench/run.py {options}".rstrip()
    parts = [
        BEGIN,
        "# Benchmark: incident metrics and ingestion",
        f"Written by `bench/run.py` on {started:%Y-%m-%d %H:%M} UTC, {_rounds(rounds)}, on "
        f"tinysdlc-nb {revision}. `make bench` runs it after the G4 benchmark; running "
        f"the command below rewrites only this section.\n\n```\n{command}\n```",
        _metrics(metrics_data, data["sizes"]),
        _ingestion(ingestion, data["sizes"]),
        "## How the incident benchmarks are measured\n\n" + METHOD,
        "## Incidents: measured once by hand\n\n" + ONE_OFF,
        "## Machine and versions\n\n" + markdown_table([["what", "value"], *_machine()]),
        END,
    ]
    return "\n\n".join(parts) + "\n"


def replace_section(page: str, new_section: str) -> str:
    """Return ``page`` with its incident section replaced by ``new_section``, or appended."""
    return results_page.replace_section(page, new_section, BEGIN, END)


def kept_section(page: str) -> str:
    """Return the incident section of ``page`` with its markers, or "" if there is none."""
    return results_page.kept_section(page, BEGIN, END)


def _metrics(data: dict, sizes: dict) -> str:
    runs = data["runs"]
    pandas_wall = median([run["wall_s"] for run in runs["pandas"]])
    plain_wall = median([run["wall_s"] for run in runs["plain"]])
    ratio = pandas_wall / plain_wall
    verdict = "met" if ratio <= TARGET_RATIO else "not met"
    comparison = data["comparison"]
    return "\n\n".join([
        f"## Metrics over {sizes['rows']:,} timeline rows of {sizes['incidents']:,} incidents",
        f"Wall time, pandas (the product) / plain Python: **{ratio:.2f}** (median of "
        f"{_rounds(len(runs['pandas']))}; target at most {TARGET_RATIO}: {verdict}).",
        markdown_table(_metric_rows(runs)),
        f"Both sides computed the same table of {comparison['incidents']:,} incidents "
        f"(status, severities, six milestones, whether the detection time is estimated, and "
        f"two SLA deadlines and statuses) and the same "
        f"{comparison['metric_rows']} rows of per-severity metrics, in every round: "
        f"{comparison['values_compared']:,} values compared, the largest relative "
        f"difference between two floats being {comparison['largest_relative_difference']:.1e}. "
        f"The faster fetch below gave the same values too: "
        f"{'yes' if comparison['fast_fetch_equal'] else 'no'}.",
        "### Where the pandas side's time goes (one run)\n\n" + _breakdown(data["breakdown"]),
        "### Reading the result\n\n" + "\n".join(_reading(data)),
        "### The generated history\n\n" + _history(data),
        "### Every round\n\n" + markdown_table(_round_rows(runs)),
    ])


def _metric_rows(runs: dict) -> list[list[str]]:
    rows = [["metric (median)", "pandas: incident_table + severity_metrics",
             "plain Python loop", "pandas / plain"]]
    for label, values in (
            ("wall time (s)", lambda run: run["wall_s"]),
            ("CPU time (s)", lambda run: run["cpu_s"]),
            ("peak RSS during the computation (MiB)", lambda run: run["peak_rss_kib"] / 1024),
            ("RSS growth during the computation (MiB)",
             lambda run: (run["peak_rss_kib"] - run["rss_before_kib"]) / 1024)):
        pandas_value = median([values(run) for run in runs["pandas"]])
        plain_value = median([values(run) for run in runs["plain"]])
        rows.append([label, f"{pandas_value:,.2f}", f"{plain_value:,.2f}",
                     f"{pandas_value / plain_value:.2f}" if plain_value else "n/a"])
    return rows


def _breakdown(breakdown: dict) -> str:
    steps = [["step of the pandas side, called one at a time", "s"]]
    steps += [[name, f"{seconds:.2f}"] for name, seconds in breakdown["steps"].items()]
    profile = breakdown["profile"]
    shares = [["function (cumulative, under cProfile)", "s", "share of the profiled run"]]
    for name in incident_measure.PROFILED:
        if name in profile:
            shares.append([f"`{name}`", f"{profile[name]:.2f}",
                           f"{profile[name] / profile['total']:.0%}"])
    shares.append(["whole profiled run", f"{profile['total']:.2f}", "100%"])
    fetch = [["reading the same rows another way", "s"]]
    fetch += [[name, f"{seconds:.2f}"] for name, seconds in breakdown["fast_fetch"].items()]
    return "\n\n".join([
        f"The lifecycle rows that `metrics.lifecycle_frame` loads are "
        f"{breakdown['rows_loaded']:,} of the timeline's rows (status kinds, severity "
        f"changes, retractions and rows that supersede another); alert rows, notes and "
        f"postmortem rows stay in the database.",
        markdown_table(steps), markdown_table(shares), markdown_table(fetch)])


def _reading(data: dict) -> list[str]:
    runs, breakdown = data["runs"], data["breakdown"]
    pandas_wall = median([run["wall_s"] for run in runs["pandas"]])
    plain_wall = median([run["wall_s"] for run in runs["plain"]])
    fetch = breakdown["fast_fetch"]
    scan = fetch["SQLite's scan alone (SELECT count(*) with the same WHERE)"]
    tuples = fetch["the same rows as Python tuples (sqlite3 fetchall)"]
    steps = {name: seconds for name, seconds in breakdown["steps"].items()
             if not name.startswith("incident_table")}
    slowest = max(steps, key=steps.get)
    profile = {name: seconds for name, seconds in breakdown["profile"].items()
               if name in ("read_sql", "summarize", "evaluate", "severity_metrics")}
    heaviest = max(profile, key=profile.get)
    budget = TARGET_RATIO * plain_wall
    lifecycle = steps[incident_measure.LIFECYCLE_STEP]
    fast_fetch = fetch[incident_measure.FAST_FETCH_STEP]
    reachable = "cannot" if scan >= budget else "could only just"
    return [
        f"- The pandas side takes {pandas_wall:.2f} s and the plain loop {plain_wall:.2f} s. "
        f"Meeting the target would need the pandas side to finish in {budget:.3f} s.",
        f"- Both sides read the same rows from SQLite. SQLite's scan for them alone takes "
        f"{scan:.3f} s, and handing them to Python as tuples {tuples:.3f} s "
        f"({tuples / plain_wall:.0%} of the plain side's time), so the pandas side "
        f"{reachable} reach the target on this store, whatever it computes after the fetch.",
        f"- `metrics.lifecycle_frame` reads the rows through SQLAlchemy, transposed into "
        f"columns with one `pd.to_datetime`, in {lifecycle:.2f} s. The same rows read with "
        f"the `sqlite3` module directly take {fast_fetch:.2f} s and give the same results; "
        f"the difference is SQLAlchemy's per-row result handling.",
        f"- The pandas side's largest step is `{slowest}` at {steps[slowest]:.2f} s (steps "
        f"timed one at a time above). Under cProfile the largest of the product's functions "
        f"is `{heaviest}`, with {profile[heaviest] / breakdown['profile']['total']:.0%} of "
        f"the profiled run.",
    ]


def _history(data: dict) -> str:
    history = data["history"]
    statuses = data["runs"]["pandas"][-1]["statuses"]
    kinds = [["kind", "rows"], *([kind, f"{count:,}"] for kind, count in
                                 history["kinds"].items())]
    status_text = ", ".join(f"{count:,} {status}" for status, count in
                            sorted(statuses.items(), key=lambda item: -item[1]))
    return "\n\n".join([
        f"`bench/incident_history.py` writes {history['rows']:,} rows for "
        f"{history['incidents']:,} incidents (seed {history['seed']}) in "
        f"{history['seconds']:.0f} s, with `executemany` into a store that `open_store` "
        f"created. {history['base_rows']:,} rows make up the incidents' lifecycles; the "
        f"remaining rows are fire/resolve pairs of flapping alerts, spread over the "
        f"incidents with Pareto weights so that a few incidents get most of them. Among "
        f"the rows are {history['agent_acknowledgements']:,} acknowledgements by agents, "
        f"which the metrics do not count, {history['estimated_detections']:,} detections "
        f"marked as estimated, and corrections superseding earlier rows ("
        f"{', '.join(f'{count:,} {kind}' for kind, count in history['corrections'].items())}"
        f"). Statuses at the fixed \"now\" of "
        f"{incident_measure.NOW:%Y-%m-%d}: {status_text}.",
        f"SLA targets: the defaults for acknowledging, and for resolving "
        f"{', '.join(f'{key} = {value}' for key, value in incident_measure.SLA.items())}.",
        markdown_table(kinds)])


def _round_rows(runs: dict) -> list[list[str]]:
    rows = [["round", "side", "wall (s)", "CPU (s)", "peak RSS (MiB)",
             "other processes' CPU (s)"]]
    for number in range(len(runs["pandas"])):
        for side in ("pandas", "plain"):
            run = runs[side][number]
            rows.append([str(number + 1), side, f"{run['wall_s']:.2f}", f"{run['cpu_s']:.2f}",
                         f"{run['peak_rss_kib'] / 1024:.0f}", f"{run['other_cpu_s']:.2f}"])
    return rows


def _ingestion(data: dict, sizes: dict) -> str:
    runs = data["runs"]
    header = ["way in (median)", "payloads", "wall time (s)", "payloads/s",
              "CPU time of tinysdlc-nb (s)", "CPU per payload (ms)",
              "other processes' CPU (s)"]
    rows = [header]
    for way, way_runs in runs.items():
        cpu = median([run.get("cpu_s", run.get("server_cpu_s")) for run in way_runs])
        payloads = way_runs[0]["payloads"]
        rows.append([WAY_TITLES[way].format(clients=sizes["clients"]), f"{payloads:,}",
                     f"{median([run['wall_s'] for run in way_runs]):.1f}",
                     f"{median([run['payloads_per_s'] for run in way_runs]):.1f}",
                     f"{cpu:.1f}", f"{cpu / payloads * 1000:.0f}",
                     f"{median([run['other_cpu_s'] for run in way_runs]):.1f}"])
    sizes_bytes = data["payload_bytes"]
    commands = "\n".join(way_runs[0]["command"] for way_runs in runs.values())
    every = [["round", "way in", "wall (s)", "payloads/s", "other processes' CPU (s)"]]
    for way, way_runs in runs.items():
        for number, run in enumerate(way_runs, start=1):
            every.append([str(number), way, f"{run['wall_s']:.1f}",
                          f"{run['payloads_per_s']:.1f}", f"{run['other_cpu_s']:.1f}"])
    return "\n\n".join([
        "## Ingestion of Alertmanager payloads",
        markdown_table(rows),
        f"Each payload is an Alertmanager webhook body (version 4) of its own group, with "
        f"{data['alerts'] / sizes['payloads']:.1f} firing alerts on average "
        f"({sizes_bytes['min']:,} to {sizes_bytes['max']:,} bytes, "
        f"`bench/incident_ingest.py`), so each one opens one incident; every way ends with "
        f"the store holding exactly one incident per payload. The CPU time of `serve` is "
        f"the server process's own; `serve` runs with `-v`, so it logs one line per "
        f"request. `$WORK` is a new temporary folder.",
        f"```\n{commands}\n```",
        "### Every round\n\n" + markdown_table(every),
    ])


def _rounds(count: int) -> str:
    return f"{count} round{'s' if count != 1 else ''}"


def _machine() -> list[list[str]]:
    rows = results_page._machine()
    rows.append(["SQLite (sqlite3.sqlite_version)", sqlite3.sqlite_version])
    for name in DISTRIBUTIONS:
        try:
            rows.append([name, metadata.version(name)])
        except metadata.PackageNotFoundError:
            rows.append([name, "not installed"])
    return rows

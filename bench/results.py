"""Medians over rounds of the benchmark's measurements, and the table printed at the end."""

from __future__ import annotations

import logging
import statistics

log = logging.getLogger(__name__)

SIDE_TITLES = {"baseline": "by hand", "ours": "gate", "scoped": "by hand, gate's scope"}

# Measurements of a whole side: key in measure.py's output, label, divisor to the unit.
METRICS = (
    ("wall_s", "wall time (s)", 1),
    ("cpu_s", "CPU time, user + system (s)", 1),
    ("max_rss_kib", "max RSS of the largest process (MiB)", 1024),
    ("tree_rss_peak_kib", "peak RSS summed over the process tree (MiB)", 1024),
)


def median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def side_medians(runs: list[dict]) -> dict[str, float]:
    """Return the median of each whole-side metric, in the units of METRICS."""
    return {key: median([run[key] for run in runs]) / divisor for key, _, divisor in METRICS}


def step_medians(runs: list[dict]) -> dict[str, dict[str, float]]:
    """Return, per command of a side, the median wall time, CPU time and peak tree RSS (MiB)."""
    names = [step["name"] for step in runs[0]["steps"]]
    medians = {}
    for index, name in enumerate(names):
        steps = [run["steps"][index] for run in runs]
        medians[name] = {
            "wall_s": median([step["wall_s"] for step in steps]),
            "cpu_s": median([step["cpu_s"] for step in steps]),
            "rss_mib": median([step["tree_rss_peak_kib"] for step in steps]) / 1024,
        }
    return medians


def check_medians(runs: list[dict]) -> dict[str, dict]:
    """Return, per gate check, its statuses over rounds, median duration and last summary."""
    checks = {}
    for name in runs[0]["checks"]:
        rounds = [run["checks"][name] for run in runs]
        statuses = sorted({entry["status"] for entry in rounds})
        checks[name] = {"status": "/".join(statuses),
                        "duration_s": median([entry["duration_s"] for entry in rounds]),
                        "summary": rounds[-1]["summary"]}
    return checks


def gate_breakdown(runs: list[dict]) -> dict[str, float]:
    """Split the gate's wall time into parts, each the median over rounds of its own value.

    Being medians of separate values, the parts need not add up exactly to the median wall time.
    """
    parts = []
    for run in runs:
        slowest = max(entry["duration_s"] for entry in run["checks"].values())
        parts.append({
            "outside_notebook_s": run["wall_s"] - run["notebook_s"],
            "kernel_and_other_cells_s": run["notebook_s"] - run["longest_cell_s"],
            "checks_cell_beyond_slowest_s": run["longest_cell_s"] - slowest,
            "slowest_check_s": slowest,
        })
    return {key: median([part[key] for part in parts]) for key in parts[0]}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def metric_rows(runs: dict[str, list[dict]]) -> list[list[str]]:
    """Return the rows of the main table: each metric per side and the gate's ratios."""
    medians = {side: side_medians(side_runs) for side, side_runs in runs.items()}
    header = ["metric (median)", SIDE_TITLES["baseline"], SIDE_TITLES["ours"],
              "gate / by hand", SIDE_TITLES["scoped"], "gate / gate's scope"]
    rows = [header]
    for key, label, _ in METRICS:
        baseline, ours, scoped = (medians[side][key] for side in ("baseline", "ours", "scoped"))
        rows.append([label, _number(baseline), _number(ours),
                     _number(ratio(ours, baseline), 2), _number(scoped),
                     _number(ratio(ours, scoped), 2)])
    return rows


def step_rows(runs: dict[str, list[dict]]) -> list[list[str]]:
    rows = [["side", "command", "wall (s)", "CPU (s)", "peak tree RSS (MiB)"]]
    for side in ("baseline", "scoped"):
        for name, values in step_medians(runs[side]).items():
            rows.append([SIDE_TITLES[side], name, _number(values["wall_s"]),
                         _number(values["cpu_s"]), _number(values["rss_mib"])])
    return rows


def check_rows(runs: list[dict], width: int | None = None) -> list[list[str]]:
    rows = [["check", "status", "duration (s)", "summary (last round)"]]
    for name, values in check_medians(runs).items():
        summary = values["summary"]
        if width is not None and len(summary) > width:
            summary = summary[:width - 1] + "…"
        rows.append([name, values["status"], _number(values["duration_s"]), summary])
    return rows


def breakdown_rows(runs: list[dict]) -> list[list[str]]:
    labels = {
        "outside_notebook_s": "gate command outside the notebook (start, imports, HTML export)",
        "kernel_and_other_cells_s": "kernel start and the notebook's other cells",
        "checks_cell_beyond_slowest_s": "checks cell beyond its slowest check (store, reports)",
        "slowest_check_s": "slowest check",
    }
    rows = [["part of the gate's wall time (median)", "s"]]
    rows += [[labels[key], _number(value)] for key, value in gate_breakdown(runs).items()]
    return rows


def round_rows(runs: dict[str, list[dict]]) -> list[list[str]]:
    rows = []
    for side, side_runs in runs.items():
        for number, run in enumerate(side_runs, start=1):
            rows.append([str(number), SIDE_TITLES[side],
                         *(_number(run[key] / divisor) for key, _, divisor in METRICS),
                         _number(run["other_cpu_s"])])

    # A stable sort keeps the order in which the sides ran within each round.
    rows.sort(key=lambda row: int(row[0]))
    header = ["round", "side", *(label for _, label, _ in METRICS),
              "CPU time of other processes meanwhile (s)"]
    return [header, *rows]


def table(runs: dict[str, list[dict]]) -> str:
    """Return the terminal report: whole-side medians, each tool by hand, each gate check."""
    rounds = len(runs["ours"])
    parts = [f"Medians of {rounds} round{'s' if rounds != 1 else ''} on Django 5.2.8:",
             _aligned(metric_rows(runs)), "", _aligned(step_rows(runs)), "",
             _aligned(check_rows(runs["ours"], width=60)), "",
             _aligned(breakdown_rows(runs["ours"])), "", _aligned(round_rows(runs))]
    return "\n".join(parts)


def _aligned(rows: list[list[str]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) if index == 0 or not _is_number(cell) else cell.rjust(width)
                 for index, (cell, width) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
              for row in rows[1:]]
    return "\n".join(lines)


def _number(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _is_number(cell: str) -> bool:
    return cell.replace(",", "").replace(".", "", 1).isdigit() or cell == "n/a"

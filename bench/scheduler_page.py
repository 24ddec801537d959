"""The scheduler section of ``bench/RESULTS.md``: start lateness and idle CPU share."""

from __future__ import annotations

import datetime as dt
import math

import results_page
from results import markdown_table, median

BEGIN = "<!-- scheduler benchmarks: begin; bench/run.py scheduler rewrites this section -->"
END = "<!-- scheduler benchmarks: end -->"
TARGET_P99_S = 1.0
TARGET_IDLE_SHARE = 0.01

METHOD = """\
- Both lateness sides run in one Python process, one after the other, for the same wall
  time. Each of the 100 jobs has a 6-field cron expression (seconds first): job i fires
  every 5, 10, 15, 20 or 30 seconds (by i mod 5), starting at second i mod its period.
- The scheduler side adds the 100 schedules to a new SQLite store, points each at its first
  fire after the start, and runs `Scheduler.run_forever` with the default poll interval
  (1 s) and an in-process runner that records when each run started and ends at once. A
  start's lateness is that time minus the fire time the store recorded (`scheduled_for`).
  Everything else is the real path: the due query, the claim (the `schedule_runs` row),
  the overlap check, the move to the next fire and the end of the run.
- The baseline keeps the same cron expressions in a heap and sleeps until the earliest
  fire; its lateness is the wake-up time minus the fire time. It has no store at all.
- "Not started" counts fires due up to one second before the stop that never started.
- The idle side starts `tinysdlc-nb scheduler` on a store with 100 schedules none of which
  is due (`0 0 1 1 *`), waits 5 s for start-up, then reads the process's CPU time with
  psutil before and after the measured window. The baseline is a Python process that
  sleeps for the poll interval in a loop, measured the same way."""


def section(data: dict, options: str, started: dt.datetime, revision: str) -> str:
    """Return the whole scheduler section, between its BEGIN and END markers."""
    command = f".venv/bin/python bench/run.py {options}".rstrip()
    heap, ours = data["baseline"], data["scheduler"]
    idle = data["idle"]
    p99 = percentile(ours["lateness_s"], 0.99)
    share = idle["scheduler"]["share"]
    lines = [
        BEGIN,
        "## Scheduler: start lateness and idle CPU",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC on tinysdlc-nb {revision} with `{command}`: "
        f"{data['jobs']} jobs for {data['duration_s']:g} s per lateness side and "
        f"{data['idle_s']:g} s per idle side.",
        "",
        f"- **Lateness p99: {p99 * 1000:.0f} ms** (target ≤ {TARGET_P99_S * 1000:.0f} ms: "
        f"{'met' if p99 <= TARGET_P99_S else 'not met'}); median "
        f"{median(ours['lateness_s']) * 1000:.0f} ms, over {len(ours['lateness_s'])} starts.",
        f"- **Idle CPU: {share * 100:.2f}% of one core** (target ≤ "
        f"{TARGET_IDLE_SHARE * 100:.0f}%: {'met' if share <= TARGET_IDLE_SHARE else 'not met'}"
        f"), against {idle['sleep_loop']['share'] * 100:.2f}% for a loop that only sleeps "
        f"{idle['poll_interval_s']:g} s at a time.",
        "",
        markdown_table([
            ["side", "starts", "not started", "median late (ms)", "p99 late (ms)",
             "max late (ms)", "CPU (s)", "wall (s)"],
            _lateness_row("heap of crons, no store (baseline)", heap),
            _lateness_row("`Scheduler.run_forever`, SQLite", ours),
            ["ratio (scheduler / baseline)", "", "",
             _ratio(median(ours["lateness_s"]), median(heap["lateness_s"])),
             _ratio(p99, percentile(heap["lateness_s"], 0.99)), "",
             _ratio(ours["cpu_s"], heap["cpu_s"]), ""],
        ]),
        "",
        f"Run records of the scheduler side by status: "
        f"{', '.join(f'{name} {count}' for name, count in sorted(ours['statuses'].items()))}.",
        "",
        markdown_table([
            ["idle side", "CPU (s)", "wall (s)", "share of one core", "still running"],
            _idle_row("`tinysdlc-nb scheduler`, 100 schedules, none due", idle["scheduler"]),
            _idle_row("`time.sleep` loop (baseline)", idle["sleep_loop"]),
        ]),
        "",
        "### Method",
        "",
        METHOD,
        "",
        "### Machine",
        "",
        markdown_table([["", ""], *results_page._machine()]),
        END,
        "",
    ]
    return "\n".join(lines)


def percentile(values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``values`` (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def replace_section(page: str, new_section: str) -> str:
    return results_page.replace_section(page, new_section, BEGIN, END)


def kept_section(page: str) -> str:
    return results_page.kept_section(page, BEGIN, END)


def _lateness_row(title: str, side: dict) -> list[str]:
    late = side["lateness_s"]
    return [title, str(len(late)), str(side["not_started"]),
            f"{median(late) * 1000:.1f}", f"{percentile(late, 0.99) * 1000:.1f}",
            f"{max(late) * 1000:.1f}" if late else "", f"{side['cpu_s']:.2f}",
            f"{side['wall_s']:.1f}"]


def _idle_row(title: str, side: dict) -> list[str]:
    return [title, f"{side['cpu_s']:.2f}", f"{side['wall_s']:.1f}",
            f"{side['share'] * 100:.2f}%", "yes" if side["alive"] else "no"]


def _ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or not denominator:
        return ""
    return f"{numerator / denominator:.1f}×"

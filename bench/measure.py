"""Run one side of the benchmark and print what it cost as one JSON object on stdout.

``run.py`` starts this script in a fresh process for each side and round, so the
``RUSAGE_CHILDREN`` figures read here cover that side's processes and nothing else. They
include every descendant that its parent waited for, such as the Jupyter kernel of the
gate and the worker processes of detect-secrets.

Usage: ``python bench/measure.py baseline|ours|scoped TREE WORK``
"""

from __future__ import annotations

import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import gate_django
import psutil

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 0.2

# Before a side starts, wait up to QUIET_WAIT_S for a QUIET_WINDOW_S window in which the
# rest of the machine used less than QUIET_CPU_S of CPU time (10% of one core).
QUIET_WAIT_S = 120.0
QUIET_WINDOW_S = 2.0
QUIET_CPU_S = 0.2


def main(argv: list[str]) -> int:
    side, tree, work = argv
    side_steps = gate_django.steps(side, Path(tree), Path(work))
    wait_for_quiet_machine()

    busy_before = machine_busy_s()
    started = time.perf_counter()
    results = [run_step(step) for step in side_steps]
    wall_s = time.perf_counter() - started
    busy_s = machine_busy_s() - busy_before

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = usage.ru_utime + usage.ru_stime
    print(json.dumps({
        "side": side,
        "work": work,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        # CPU time the rest of the machine used meanwhile, including this sampler's share.
        "other_cpu_s": max(busy_s - cpu_s, 0.0),
        # Linux reports ru_maxrss in KiB. For RUSAGE_CHILDREN it is the peak of the largest
        # single descendant, not a sum over processes that ran at the same time.
        "max_rss_kib": usage.ru_maxrss,
        "tree_rss_peak_kib": max(result["tree_rss_peak_kib"] for result in results),
        "steps": results,
    }))
    return 0


def run_step(step: gate_django.Step) -> dict:
    """Run one command to its end and return its wall time, CPU time and peak tree RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with step.stdout.open("wb") as out, step.stderr.open("wb") as err:
        process = subprocess.Popen(step.argv, cwd=step.cwd, env=gate_django.child_env(step),
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        peak_kib = wait_sampling_rss(process)
    wall_s = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)

    if process.returncode not in step.ok_exit_codes:
        raise RuntimeError(f"{step.name} exited with code {process.returncode}, expected one "
                           f"of {step.ok_exit_codes}; its error output is in {step.stderr}")
    log.info("%s: exit %s after %.1f s", step.name, process.returncode, wall_s)

    cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"name": step.name, "argv": step.argv, "env": step.env, "stdout": step.stdout.name,
            "exit_code": process.returncode, "wall_s": wall_s, "cpu_s": cpu_s,
            "tree_rss_peak_kib": peak_kib}


def wait_sampling_rss(process: subprocess.Popen) -> int:
    """Wait for ``process`` and return the peak RSS summed over it and its descendants, in KiB.

    The sum counts a page shared by several processes once per process, so it can exceed
    the memory really in use. A peak shorter than the sampling interval can be missed.
    """
    root = psutil.Process(process.pid)
    peak = 0
    while True:
        peak = max(peak, tree_rss(root))
        try:
            process.wait(timeout=SAMPLE_INTERVAL_S)
            return peak // 1024
        except subprocess.TimeoutExpired:
            continue


def wait_for_quiet_machine() -> None:
    """Wait until other processes leave the CPU idle, or until QUIET_WAIT_S has passed."""
    deadline = time.monotonic() + QUIET_WAIT_S
    while time.monotonic() < deadline:
        before = machine_busy_s()
        time.sleep(QUIET_WINDOW_S)
        if machine_busy_s() - before < QUIET_CPU_S:
            return
    log.warning("other processes kept the CPU busy for %.0f s; starting anyway", QUIET_WAIT_S)


def machine_busy_s() -> float:
    """Return the CPU time every process of the machine has used since boot, in seconds."""
    fields = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0].split()
    user, nice, system, _idle, _iowait, irq, softirq = (int(value) for value in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def tree_rss(root: psutil.Process) -> int:
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0

    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return total


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="  %(message)s", stream=sys.stderr)
    sys.exit(main(sys.argv[1:]))

"""Run the runbook benchmark: a 20-step runbook against the same commands in plain bash.

Every side runs in a child process and is timed from here, from its start to its exit:

- ``script``: ``bash script.sh``, the commands in sequence in one bash process.
- ``per_process_20`` and ``per_process_1``: each command in its own
  ``bash --noprofile --norc -euo pipefail -c``, as the step runner starts them.
- ``papermill``: ``tinysdlc_nb.execute.run_notebook`` on a notebook with a tagged
  parameters cell and one empty code cell, in a fresh Python process.
- ``papermill_no_iri``: the same with the rfc3987-syntax package marked as absent before
  any import, as the ``tinysdlc-nb`` command marks it, so that both start on equal terms.
- ``runbook_1`` and ``runbook_20``: ``tinysdlc-nb runbook run`` of the 1-step and the
  20-step runbook.

The sides alternate within each round. The two runbook sizes split the run's cost into a
fixed start-up and a cost per step: per step = (T20 - T1) / 19.
"""

from __future__ import annotations

import json
import logging
import os
import pstats
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import measure

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
CLI = VENV_BIN / "tinysdlc-nb"
STEPS = 20
SIDES = ("script", "per_process_20", "per_process_1", "papermill", "papermill_no_iri",
         "runbook_1", "runbook_20")
STEP_BASH = ("bash", "--noprofile", "--norc", "-euo", "pipefail", "-c")
PROFILE_TOP = 12
# Settings of the caller's shell that would point the children at another store.
ISOLATED_ENV = ("TINYSDLC_NB_HOME", "TINYSDLC_NB_DATABASE_URL", "TINYSDLC_NB_SETTINGS")

RUNBOOK_TEMPLATE = """\
---
name: {name}
description: Run {count} cheap commands, to time the step runner against plain bash.
rollback_target_s: 60
parameters: {{}}
---

# {count} cheap steps

## Prerequisites
- [ ] bash is installed: `command bash`

## Steps
{steps}
## Verification
1. The shell answers.
   ```bash
   true
   ```

## Rollback
1. Nothing to undo.
   ```bash
   true
   ```

## Monitoring
- What to watch: nothing; the steps change nothing.
- Success criteria: every step exits 0.
- Escalation: none; this runbook only exists for the benchmark.
"""

# The child of the papermill side. It imports run_notebook in its own process, so Python's
# start and the imports count as they do for the CLI.
PAPERMILL_CHILD = """\
import sys
from pathlib import Path
from tinysdlc_nb.execute import run_notebook
execution = run_notebook(Path(sys.argv[1]), {}, cwd=Path(sys.argv[2]), cell_timeout_s=60,
                         output_ipynb=Path(sys.argv[3]))
sys.exit(0 if execution.completed else 1)
"""
# jsonschema imports rfc3987-syntax when it is installed, and that package builds a grammar
# at import. An entry of None in sys.modules makes the import fail as if it were missing.
PAPERMILL_NO_IRI_CHILD = 'import sys\nsys.modules["rfc3987_syntax"] = None\n' + PAPERMILL_CHILD


def step_command(number: int) -> str:
    return f"echo step {number}; date +%s%N >/dev/null"


def write_runbook(path: Path, count: int) -> Path:
    """Write a lint-clean runbook with ``count`` steps, one Verification and one Rollback."""
    items = []
    for number in range(1, count + 1):
        # The block belongs to the item when it is indented to the item's text, past "10. ".
        indent = " " * len(f"{number}. ")
        items.append(f"{number}. Step {number}.\n{indent}```bash\n{indent}{step_command(number)}"
                     f"\n{indent}```\n")
    steps = "".join(items)
    path.write_text(RUNBOOK_TEMPLATE.format(name=path.stem, count=count, steps=steps),
                    encoding="utf-8")
    return path


def write_script(path: Path, count: int) -> Path:
    commands = "\n".join(step_command(number) for number in range(1, count + 1))
    path.write_text(f"set -euo pipefail\n{commands}\n", encoding="utf-8")
    return path


def write_empty_notebook(path: Path) -> Path:
    """Write a notebook with a tagged parameters cell and one empty code cell."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    cells = [new_code_cell("unused = 0", metadata={"tags": ["parameters"]}), new_code_cell("")]
    nbformat.write(new_notebook(cells=cells), path)
    return path


def run(rounds: int) -> dict:
    """Run every side ``rounds`` times, profile one run and return the raw measurements."""
    # alembic logs each plugin it sets up at INFO, and those lines would bury the progress.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-runbooks-") as work:
        folder = Path(work)
        files = _prepare(folder)
        env = _child_env(folder)
        lint = _lint(files, env)
        load_before = os.getloadavg()
        measure.wait_for_quiet_machine()

        # One untimed run of each side creates the store, applies its migrations and loads
        # the imports into the page cache, so every timed run starts from the same state.
        for side in SIDES:
            _run_side(side, files, env, folder / "warm-up")
        runs: dict[str, list[dict]] = {side: [] for side in SIDES}
        for number in range(1, rounds + 1):
            for side in SIDES:
                measured = _run_side(side, files, env, folder / f"round-{number}")
                log.info("runbooks round %d of %d: %s %.3f s wall, %.2f s CPU, other "
                         "processes %.2f s CPU", number, rounds, side, measured["wall_s"],
                         measured["cpu_s"], measured["other_cpu_s"])
                runs[side].append(measured)
        load_after = os.getloadavg()

        log.info("runbooks: profiling the kernel-side import and one 20-step run")
        profile = {"kernel_import": kernel_import_profile(env),
                   "cli_imports": cli_import_profile(files, env),
                   "cli": cli_profile(files["runbook_20"], files["project"], env,
                                      folder / "cli.prof")}
    return {"steps": STEPS, "rounds": rounds, "runs": runs, "lint": lint,
            "load_before": load_before, "load_after": load_after, "profile": profile,
            "commands": {"script": f"bash script.sh ({STEPS} lines: {step_command(1)} ...)",
                         "per_process": " ".join(STEP_BASH) + f" '{step_command(1)}'"}}


def _prepare(folder: Path) -> dict[str, Path]:
    project = folder / "project"
    project.mkdir()
    return {"project": project,
            "runbook_1": write_runbook(folder / "bench-1-step.md", 1),
            "runbook_20": write_runbook(folder / f"bench-{STEPS}-steps.md", STEPS),
            "script": write_script(folder / "script.sh", STEPS),
            "notebook": write_empty_notebook(folder / "empty.ipynb")}


def _child_env(folder: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if name not in ISOLATED_ENV}
    env["TINYSDLC_NB_HOME"] = str(folder / "home")
    return env


def _lint(files: dict[str, Path], env: dict[str, str]) -> list[dict]:
    """Lint both runbooks and raise unless they have no problem at all."""
    completed = subprocess.run([str(CLI), "runbook", "lint", "--json",
                                str(files["runbook_1"]), str(files["runbook_20"])],
                               env=env, stdout=subprocess.PIPE, text=True, check=False)
    reports = json.loads(completed.stdout)
    problems = [problem for report in reports for problem in report["problems"]]
    if completed.returncode != 0 or problems:
        raise RuntimeError(f"the generated runbooks are not lint-clean: {problems}")
    return reports


def _run_side(side: str, files: dict[str, Path], env: dict[str, str], folder: Path) -> dict:
    """Run one side and return its wall time, CPU time and the CPU other processes used."""
    folder.mkdir(exist_ok=True)
    busy_before = measure.machine_busy_s()
    cpu_before = _children_cpu_s() + time.process_time()
    started_unix = time.time()
    started = time.perf_counter()
    if side == "script":
        subprocess.run(["bash", str(files["script"])], env=env, cwd=files["project"],
                       stdout=subprocess.DEVNULL, check=True)
    elif side.startswith("per_process_"):
        for number in range(1, int(side.rsplit("_", 1)[1]) + 1):
            subprocess.run([*STEP_BASH, step_command(number)], env=env, cwd=files["project"],
                           stdout=subprocess.DEVNULL, check=True)
    elif side.startswith("papermill"):
        code = PAPERMILL_CHILD if side == "papermill" else PAPERMILL_NO_IRI_CHILD
        subprocess.run([sys.executable, "-c", code, str(files["notebook"]),
                        str(files["project"]), str(folder / f"{side}-executed.ipynb")],
                       env=env, cwd=files["project"], check=True)
    else:
        completed = subprocess.run([str(CLI), "runbook", "run", str(files[side]), "--json",
                                    "--project", str(files["project"])],
                                   env=env, cwd=files["project"], stdout=subprocess.PIPE,
                                   text=True, check=False)
    wall_s = time.perf_counter() - started
    cpu_s = _children_cpu_s() + time.process_time() - cpu_before
    measured = {"wall_s": wall_s, "cpu_s": cpu_s, "started_unix": started_unix,
                "ended_unix": started_unix + wall_s,
                "other_cpu_s": max(0.0, measure.machine_busy_s() - busy_before - cpu_s)}

    if side.startswith("papermill"):
        measured.update(_notebook_timing(folder / f"{side}-executed.ipynb"))
    elif side.startswith("runbook_"):
        if completed.returncode != 0:
            raise RuntimeError(f"runbook run of {files[side]} exited {completed.returncode}; "
                               f"its output: {completed.stdout[-2000:]}")
        run_id = json.loads(completed.stdout)["id"]
        history = _history(run_id, files["project"], env)
        measured.update(_notebook_timing(Path(history["notebook_path"])))
        measured["run_id"] = run_id
        measured["run_started_at"] = history["started_at"]
        measured["run_finished_at"] = history["finished_at"]
        measured["steps"] = [{"phase": step["phase"], "number": step["number"],
                              "status": step["status"], "started_at": step["started_at"],
                              "duration_s": step["duration_s"]} for step in history["steps"]]
    return measured


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _history(run_id: int, project: Path, env: dict[str, str]) -> dict:
    """Return run ``run_id`` as ``tinysdlc-nb runbook history --json`` prints it."""
    completed = subprocess.run([str(CLI), "runbook", "history", "--json", "--limit", "1",
                                "--project", str(project)], env=env, cwd=project,
                               stdout=subprocess.PIPE, text=True, check=True)
    runs = json.loads(completed.stdout)
    if not runs or runs[0]["id"] != run_id:
        raise RuntimeError(f"runbook history does not list run {run_id} first: "
                           f"{[run['id'] for run in runs]}")
    return runs[0]


def _notebook_timing(path: Path) -> dict:
    """Return papermill's timing of an executed notebook: the whole run and each cell."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    papermill = notebook["metadata"]["papermill"]
    cells = []
    for cell in notebook["cells"]:
        timing = cell["metadata"].get("papermill", {})
        source = "".join(cell["source"])
        cells.append({"type": cell["cell_type"], "first_line": source.split("\n", 1)[0][:60],
                      "start_time": timing.get("start_time"), "end_time": timing.get("end_time"),
                      "duration_s": timing.get("duration")})
    return {"notebook_s": papermill["duration"], "notebook_start": papermill["start_time"],
            "cells": cells}


def kernel_import_profile(env: dict[str, str]) -> dict:
    """Time the import of tinysdlc_nb.runbooks.session in a process that has ipykernel loaded.

    The kernel has ipykernel and IPython loaded before the session cell runs, so only the
    modules imported after ``ipykernel.kernelapp`` are counted.
    """
    code = "import ipykernel.kernelapp\nimport tinysdlc_nb.runbooks.session\n"
    entries = _import_times(["-c", code], env, Path.cwd())
    # importtime lists a module when its import ends, so ipykernel's modules come first.
    kernel_end = max(index for index, (_own, module) in enumerate(entries)
                     if module == "ipykernel.kernelapp")
    counted = entries[kernel_end + 1:]
    return {"total_s": sum(own for own, _module in counted), "modules": len(counted),
            "by_package": _by_package(counted)}


def cli_import_profile(files: dict[str, Path], env: dict[str, str]) -> dict:
    """Compare the imports of one 1-step runbook run with those of the papermill side.

    Both run as in the timed rounds, with ``-X importtime``. The kernel is not counted.
    """
    project = files["project"]
    runbook = _import_times([str(CLI), "runbook", "run", str(files["runbook_1"]), "--json",
                             "--project", str(project)], env, project)
    papermill = _import_times(["-c", PAPERMILL_CHILD, str(files["notebook"]), str(project),
                               str(project.parent / "importtime-executed.ipynb")], env, project)
    papermill_modules = {module for _own, module in papermill}
    extra = [(own, module) for own, module in runbook if module not in papermill_modules]
    return {"runbook_s": sum(own for own, _module in runbook), "runbook_modules": len(runbook),
            "papermill_s": sum(own for own, _module in papermill),
            "papermill_modules": len(papermill),
            "extra_s": sum(own for own, _module in extra), "extra_modules": len(extra),
            "extra_by_package": _by_package(extra),
            "papermill_by_package": _by_package(papermill),
            # importtime also lists a package that sys.modules marks as absent, at a few µs.
            "runbook_rfc3987_syntax_s": sum(own for own, module in runbook
                                            if module.split(".", 1)[0] == "rfc3987_syntax")}


def _import_times(arguments: list[str], env: dict[str, str], cwd: Path) -> list[tuple]:
    """Run Python with ``-X importtime`` and return (own seconds, module) per import."""
    completed = subprocess.run([sys.executable, "-X", "importtime", *arguments], env=env,
                               cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, check=True)
    entries = []
    for line in completed.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \| *(\S+)", line)
        if match:
            entries.append((int(match[1]) / 1e6, match[2]))
    return entries


def _by_package(entries: list[tuple]) -> list[dict]:
    """Return the own import time summed per top-level package, largest first."""
    totals: dict[str, float] = {}
    for own, module in entries:
        package = module.split(".", 1)[0]
        totals[package] = totals.get(package, 0.0) + own
    top = sorted(totals.items(), key=lambda item: item[1], reverse=True)[:PROFILE_TOP]
    return [{"package": name, "own_s": own} for name, own in top]


def cli_profile(runbook: Path, project: Path, env: dict[str, str], output: Path) -> dict:
    """Run ``tinysdlc-nb runbook run`` once under cProfile and return where its time went.

    cProfile profiles only the CLI process, from the call of ``main``. The import of
    tinysdlc_nb.cli comes before that call, but the imports the run command makes on its
    way are counted. The kernel's work shows up as time spent waiting for the kernel's messages.
    """
    code = ("import cProfile, sys\nfrom tinysdlc_nb.cli import main\n"
            f"cProfile.run('main(sys.argv[1:])', {str(output)!r})\n")
    subprocess.run([sys.executable, "-c", code, "runbook", "run", str(runbook), "--json",
                    "--project", str(project)], env=env, cwd=project,
                   stdout=subprocess.DEVNULL, check=True)
    stats = pstats.Stats(str(output))
    total_s = stats.total_tt
    rows = []
    for (file_name, line, function), (_calls, calls, own_s, cumulative_s, _callers) in \
            stats.stats.items():
        rows.append({"function": _function_name(file_name, line, function), "calls": calls,
                     "own_s": own_s, "cumulative_s": cumulative_s})
    watched = {name: next((row for row in rows if row["function"].endswith(name)), None)
               for name in WATCHED_FUNCTIONS}
    return {"total_s": total_s,
            "top_own": sorted(rows, key=lambda row: row["own_s"],
                              reverse=True)[:PROFILE_TOP],
            "watched": watched}


# Functions of the CLI process whose cumulative time the page shows (suffixes of the
# names ``_function_name`` builds).
WATCHED_FUNCTIONS = (
    "tinysdlc_nb/cli.py:main",
    "tinysdlc_nb/gatecmd.py:<module>",
    "runbooks/runner.py:run_runbook",
    "store/__init__.py:open_store",
    "runbooks/compile.py:write_notebook",
    "tinysdlc_nb/execute.py:run_notebook",
    "papermill/execute.py:execute_notebook",
    "papermill/engines.py:save",
    "papermill/iorw.py:write_ipynb",
    "nbformat/validator.py:validate",
    "tinysdlc_nb/execute.py:redact_notebook",
)


def _function_name(file_name: str, line: int, function: str) -> str:
    if file_name == "~":
        return function
    parts = Path(file_name).parts
    return f"{'/'.join(parts[-2:])}:{function}"

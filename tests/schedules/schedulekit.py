"""Helpers for schedule tests: projects, notebooks, runners and CLI calls."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from tinysdlc_nb.cli import main
from tinysdlc_nb.config import load_config
from tinysdlc_nb.schedules.model import ScheduleSpec


def write_config(project: Path, home: Path, scheduler: dict | None = None,
                 display_zone: str = "UTC") -> None:
    lines = ["[project]", f'display_zone = "{display_zone}"', "", "[scheduler]"]
    for key, value in (scheduler or {}).items():
        lines.append(f"{key} = {json.dumps(value)}")
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def config_of(project: Path):
    return load_config(project)


def write_notebook(path: Path, body: str, parameters: str = "schedule_run_id = None\n"
                   "project = ''") -> Path:
    """Write a notebook with a tagged parameters cell and one code cell ``body``."""
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    notebook.cells = [cell, nbformat.v4.new_code_cell(body)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def notebook_spec(name: str, project: Path, target: str, cron: str = "* * * * *",
                  **fields) -> ScheduleSpec:
    return ScheduleSpec(name=name, kind="notebook", target=target, cron=cron,
                        project=str(project), created_by="Dana Reyes", **fields)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


class HeldHandle:
    """A run that keeps going until the test releases it."""

    pid = None

    def __init__(self):
        self.exit_code = None
        self.terminated = False

    def poll(self):
        return self.exit_code

    def terminate(self) -> None:
        self.terminated = True
        self.exit_code = -15

    def kill(self) -> None:
        self.exit_code = -9


class HeldRunner:
    """A runner whose runs last until ``release`` ends them."""

    def __init__(self):
        self.handles: dict[int, HeldHandle] = {}

    def start(self, run: dict) -> HeldHandle:
        handle = HeldHandle()
        self.handles[run["id"]] = handle
        return handle

    def release(self, exit_code: int = 0) -> None:
        for handle in self.handles.values():
            if handle.exit_code is None:
                handle.exit_code = exit_code


def run_scheduler_for(project: str, seconds: float, scheduler_id: str, starts_file: str) -> None:
    """Run a Scheduler with an in-process runner for ``seconds``; write its starts as JSON.

    Runs in a child process of a test (the store comes from TINYSDLC_NB_DATABASE_URL).
    """
    import threading

    from tinysdlc_nb.schedules.inprocess import RecordingRunner
    from tinysdlc_nb.schedules.scheduler import Scheduler
    from tinysdlc_nb.store import open_store

    config = load_config(Path(project))
    store = open_store(config.database_url)
    runner = RecordingRunner()
    scheduler = Scheduler(config, store, runner=runner, scheduler_id=scheduler_id)
    threading.Timer(seconds, scheduler.stop, args=("test over",)).start()
    scheduler.run_forever()
    Path(starts_file).write_text(json.dumps([
        {"run_id": start.run_id, "schedule": start.schedule_name,
         "scheduled_for": start.scheduled_for.isoformat()} for start in runner.starts]))
    store.close()

"""Helpers for runbook tests: write a runbook file and run the CLI on it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tinysdlc_nb.cli import main
from tinysdlc_nb.config import load_config
from tinysdlc_nb.runbooks.records import list_runs
from tinysdlc_nb.store import open_store


def step_items(commands: list[str], titles: list[str] | None = None,
               extra: list[str] | None = None) -> str:
    """Return numbered Markdown items, one ```bash block each (extra lines go after it)."""
    items = []
    for index, command in enumerate(commands):
        title = titles[index] if titles else f"Step {index + 1} does its part."
        block = textwrap.indent(f"```bash\n{command}\n```", "   ")
        after = f"\n   {extra[index]}" if extra and extra[index] else ""
        items.append(f"{index + 1}. {title}\n{block}{after}")
    return "\n".join(items)


def runbook_text(steps: list[str], *, rollback: list[str] | None = ("echo rolled back",),
                 verification: list[str] | None = ("echo healthy",),
                 parameters: str = "  version: {type: str, required: true}",
                 front: str = "rollback_target_s: 30", name: str = "sample",
                 prerequisites: str = "- [ ] bash is installed: `command bash`",
                 step_extra: list[str] | None = None) -> str:
    parts = [f"---\nname: {name}\ndescription: A runbook written by a test.\n{front}\n"
             f"parameters:\n{parameters}\n---\n\n# Sample\n",
             f"## Prerequisites\n{prerequisites}\n",
             f"## Steps\n{step_items(steps, extra=step_extra)}\n"]
    if verification is not None:
        parts.append(f"## Verification\n{step_items(list(verification))}\n")
    if rollback is not None:
        parts.append(f"## Rollback\n{step_items(list(rollback))}\n")
    parts.append("## Monitoring\n- What to watch: the test output.\n")
    return "\n".join(parts)


def write_runbook(folder: Path, text: str, name: str = "sample") -> Path:
    path = folder / "runbooks" / f"{name}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys, project: Path, runbook: str, *extra: str) -> tuple[int, dict]:
    code, out, err = run_cli(capsys, "runbook", "run", runbook, "--project", str(project),
                             "--json", "--by", "Dana Reyes", *extra)
    assert out, f"no JSON printed (exit {code}); stderr: {err}"
    return code, json.loads(out)


def stored_runs(project: Path) -> list[dict]:
    """Return the project's runbook runs, newest first, each with its steps."""
    store = open_store(load_config(project).database_url)
    try:
        return list_runs(store)
    finally:
        store.close()


def steps_by_key(run: dict) -> dict[tuple[str, int], dict]:
    return {(step["phase"], step["number"]): step for step in run["steps"]}

"""Paths of a run's files: the executed notebook's folder and one log per step."""

from __future__ import annotations

from pathlib import Path


def run_folder(home: Path, run_id: int, runbook: str) -> Path:
    """Return ``<home>/runbooks/<run id>-<runbook name>``, the folder of one run."""
    return home / "runbooks" / f"{run_id:05d}-{runbook}"


def step_log_path(run_dir: Path, phase: str, number: int) -> Path:
    return run_dir / "logs" / f"{phase}-{number:02d}.log"

"""Prerequisite checks a runbook names in backticks: `gate g3`, `command NAME`, `env NAME`."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

from .. import approvals

if TYPE_CHECKING:
    from .session import RunbookSession


def evaluate_prerequisite(check: str, session: RunbookSession) -> tuple[bool, str]:
    """Return whether ``check`` holds for this run, with a sentence saying what was seen."""
    kind, _, argument = check.strip().partition(" ")
    kind, argument = kind.lower(), argument.strip()

    if kind == "gate":
        return _gate_confirmed(argument.lower(), session)
    if kind == "command":
        found = shutil.which(argument, path=session.env.get("PATH"))
        return (True, f"found at {found}") if found else (False, f"'{argument}' is not on PATH")
    if kind == "env":
        value = os.environ.get(argument, "")
        return (True, "set") if value else (False, f"${argument} is not set")
    return False, f"unknown check '{kind}'"


def _gate_confirmed(gate: str, session: RunbookSession) -> tuple[bool, str]:
    version = session.values.get("version")
    if not version:
        return False, "the run has no version to look up"

    config = session.config
    status = approvals.signoff_status(session.store, config.name, gate, str(version),
                                      config.tier)
    if status.confirmed:
        signers = ", ".join(f"{entry.signer} ({entry.requirement.name})"
                            for entry in status.requirements)
        return True, f"{gate.upper()} {version} signed by {signers}"
    waiting = ", ".join(f"{entry.requirement.name} {entry.state}"
                        for entry in status.requirements if entry.state != "approved")
    return False, (f"{gate.upper()} {version} of project '{config.name}' is not confirmed: "
                   f"{waiting}; sign with tinysdlc-nb approve {gate} --role ROLE --by NAME "
                   f"--version {version}")

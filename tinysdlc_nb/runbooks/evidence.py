"""The G4 evidence a finished runbook run records, each with the executed notebook.

- ``rollback_tested``: a passing rehearsal whose rollback reached a healthy check within
  the runbook's ``rollback_target_s``;
- ``staging_smoke``: a passing run (not a rehearsal) against the ``staging`` environment
  whose Verification section, the smoke test, ran and passed;
- ``runbook_documented``: a passing run of a lint-clean runbook (the file kept is the
  runbook itself), once per version and runbook content.

Runs without a version (no ``version`` parameter) record nothing, since G4 evidence is
per release. Neither do runs allowed with ``--no-rollback``, whose runbook fails lint.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from .. import approvals
from ..config import Config
from ..store import Store
from .model import Phase, Runbook, RunStatus

log = logging.getLogger(__name__)

STAGING = "staging"


def record_run_evidence(store: Store, config: Config, runbook: Runbook, run: dict[str, Any],
                        notebook: Path, operator: str) -> list[dict[str, Any]]:
    """Record the evidence ``run`` earned and return the stored records."""
    version = run["version"]
    if not version or run["no_rollback"] or run["status"] != RunStatus.PASSED.value:
        return []

    recorded = []
    where = f"runbook {runbook.name} run {run['id']} (notebook {notebook})"

    def record(item: str, note: str, file: Path) -> None:
        row = approvals.record_evidence(
            store, project=config.name, gate="g4", version=version, item=item,
            recorded_by=operator, note=note, file=file if file.is_file() else None,
            files_dir=config.files_dir, agent_ids=config.agent_ids(), source="runbook")
        recorded.append(row)
        log.info("evidence %s recorded for %s from run %d", item, version, run["id"])

    verified = [step for step in run["steps"] if step["phase"] == Phase.VERIFY.value]
    if run["mode"] == "rehearse":
        record("rollback_tested", f"{where}: rollback to a healthy check in "
               f"{run['rollback_healthy_s']:g} s, target {run['rollback_target_s']:g} s",
               notebook)
    smoke_passed = verified and all(step["status"] == "passed" for step in verified)
    if run["mode"] == "run" and run["environment"] == STAGING and smoke_passed:
        record("staging_smoke", f"{where}: every step and the {len(verified)} verification "
               f"step(s) passed on staging", notebook)
    if runbook.path is not None and not _documented(store, config, version, runbook.path):
        record("runbook_documented", f"runbook {runbook.name} ({runbook.path.name}, SHA-256 "
               f"{run['runbook_sha256'][:12]}) passes runbook lint and ran as run "
               f"{run['id']}", runbook.path)
    return recorded


def _documented(store: Store, config: Config, version: str, path: Path) -> bool:
    """Return True when this runbook's current content is already recorded for ``version``."""
    latest = approvals.latest_evidence(store, config.name, "g4", version)
    record = latest.get("runbook_documented")
    return record is not None and \
        record["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()

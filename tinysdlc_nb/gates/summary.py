"""``summary.json``: the machine-readable record of a gate run."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..scrub import scrub_data
from ..store import as_utc

if TYPE_CHECKING:
    from .run import GateRun

SUMMARY_NAME = "summary.json"


def build(run: GateRun) -> dict[str, Any]:
    """Return the summary of ``run`` as JSON-ready data, secrets redacted."""
    items = []
    for item in run.items:
        entry: dict[str, Any] = {"item": item.item, "kind": item.kind, "label": item.label,
                                 "required": item.required,
                                 "status": str(item.status or "PENDING"),
                                 "summary": item.summary}
        result = run.results.get(item.item)
        if result is not None:
            entry.update(tool=result.tool, tool_version=result.tool_version,
                         exit_code=result.exit_code, duration_s=round(result.duration_s, 3),
                         report=f"raw/{result.report_name}" if result.report_name else None,
                         report_sha256=result.report_sha256 or None,
                         findings=len(result.counted_findings),
                         notes=len(result.active_findings) - len(result.counted_findings),
                         suppressed=len(result.findings) - len(result.active_findings))
        items.append(entry)

    evidence = [{"item": name, "recorded_by": record["recorded_by"],
                 "recorded_at": _iso(record["recorded_at"]), "note": record["note"],
                 "file_name": record["file_name"], "file_sha256": record["file_sha256"],
                 "row_hash": record["row_hash"]}
                for name, record in sorted(run.evidence.items())]
    signoffs = [{"requirement": entry.requirement.name, "state": entry.state,
                 "signer": entry.signer, "comment": entry.comment}
                for entry in (run.signoffs.requirements if run.signoffs else [])]

    return scrub_data({
        "gate": run.gate, "project": run.project, "version": run.version,
        "tier": str(run.tier), "environment": run.environment, "run_id": run.run_id,
        "verdict": str(run.verdict), "exit_code": run.verdict.exit_code if run.verdict else None,
        "started_at": _iso(run.started_at), "finished_at": _iso(run.finished_at),
        "items": items, "evidence": evidence, "signoffs": signoffs,
    })


def write(run: GateRun) -> Path:
    path = run.output_dir / SUMMARY_NAME
    text = json.dumps(build(run), indent=2, sort_keys=False) + "\n"
    path.write_text(text, encoding="utf-8")
    run.summary_sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return path


def read(output_dir: Path) -> dict[str, Any] | None:
    """Return the summary in ``output_dir``, or None when the run never wrote one."""
    path = output_dir / SUMMARY_NAME
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _iso(value) -> str | None:
    return as_utc(value).isoformat() if value is not None else None

"""One gate run from start to verdict: checks, evidence, sign-offs, store and reports.

The gate notebooks call ``run_gate`` and display what it returns; the CLI reads the
``summary.json`` it writes. Nothing here waits for a person.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets as random_tokens
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import delete, insert, update

from .. import approvals
from ..config import Config, load_config
from ..project import resolve_version
from ..scrub import scrub
from ..store import Store, open_store, utc_now
from ..store.chain import verify as verify_chains
from ..store.schema import findings as findings_table
from ..store.schema import gate_items, gate_runs
from . import junit, sarif, summary
from .model import CheckContext, CheckResult, Status, Tier
from .policy import CHECK_LABELS, Item, Verdict, decide, gate_checks
from .runner import run_checks

log = logging.getLogger(__name__)


@dataclass
class GateRun:
    """The state of one gate run, kept so the notebook can show it and refresh sign-offs."""

    gate: str
    config: Config
    store: Store
    version: str
    tier: Tier
    environment: str
    run_id: str
    output_dir: Path
    started_at: dt.datetime
    results: dict[str, CheckResult] = field(default_factory=dict)
    items: list[Item] = field(default_factory=list)
    evidence: dict[str, dict] = field(default_factory=dict)
    signoffs: approvals.SignOffStatus | None = None
    verdict: Verdict | None = None
    finished_at: dt.datetime | None = None
    summary_sha256: str | None = None

    @property
    def project(self) -> str:
        return self.config.name

    def checklist_frame(self) -> pd.DataFrame:
        """Return the checklist: one row per item with its status and summary."""
        rows = [{"item": item.item, "check": item.label, "kind": item.kind,
                 "required": item.required, "status": str(item.status or "PENDING"),
                 "summary": item.summary} for item in self.items]
        return pd.DataFrame(rows, columns=["item", "check", "kind", "required", "status",
                                           "summary"])

    def findings_frame(self) -> pd.DataFrame:
        """Return every finding of every check, suppressed ones included and marked."""
        rows = [{"check": name, **finding.as_dict()}
                for name, result in self.results.items() for finding in result.findings]
        return pd.DataFrame(rows, columns=["check", "file", "line", "rule", "message",
                                           "severity", "suppression"])

    def signoffs_frame(self) -> pd.DataFrame:
        rows = [{"requirement": entry.requirement.label, "roles": ", ".join(
                    sorted(entry.requirement.roles)), "state": entry.state,
                 "signer": entry.signer or "", "comment": entry.comment}
                for entry in (self.signoffs.requirements if self.signoffs else [])]
        return pd.DataFrame(rows, columns=["requirement", "roles", "state", "signer",
                                           "comment"])

    def refresh(self) -> Verdict:
        """Re-read evidence and sign-offs from the store, decide again and rewrite reports."""
        self.items = [item for item in self.items if item.kind == "check"]
        self.items += _records_item(self)
        self.items += _evidence_items(self)
        self.items += _signoff_items(self)
        self.verdict = decide(self.items)
        self.finished_at = utc_now()
        summary.write(self)
        junit.write(self)
        _record_verdict(self)
        return self.verdict


def run_gate(gate: str, project: str | Path, *, version: str, tier: str | None = None,
             environment: str | None = None, run_id: str | None = None,
             output_dir: str | Path | None = None, inputs: dict[str, str] | None = None,
             checks: list[str] | None = None) -> GateRun:
    """Run ``gate`` on ``project`` and return the finished run with its verdict."""
    config = load_config(Path(project))
    version = resolve_version(config.project_dir, version)
    run = _start(gate, config, version, tier, environment, run_id, output_dir)

    names = checks or config.gate["checks"] or list(gate_checks(gate))
    input_paths = {key: Path(value).resolve() for key, value in (inputs or {}).items() if value}
    # Tools' own outputs (pytest's JUnit, coverage data) may quote secrets, so they stay in a
    # private folder that is removed. Only the redacted copies under raw/ are kept.
    with tempfile.TemporaryDirectory(prefix="tinysdlc-gate-") as work:
        run.results = run_checks(
            names, lambda name: _context(run, name, input_paths, Path(work)),
            config.gate["max_workers"])
    run.items = [_check_item(run, name, result) for name, result in run.results.items()]
    _keep_raw_reports(run)
    _record_items(run)

    run.refresh()
    sarif.write(run)
    log.info("gate %s %s on %s: %s", gate, version, run.project, run.verdict)
    return run


def new_run_id(now: dt.datetime | None = None) -> str:
    now = now or utc_now()
    return f"{now:%Y%m%dT%H%M%SZ}-{random_tokens.token_hex(3)}"


def default_output_dir(config: Config, gate: str, version: str, run_id: str) -> Path:
    return config.home / "reports" / f"{gate}-{version}-{run_id}"


def _start(gate, config, version, tier, environment, run_id, output_dir) -> GateRun:
    run_id = run_id or new_run_id()
    tier_value = Tier(tier) if tier else config.tier
    output = Path(output_dir) if output_dir else default_output_dir(config, gate, version, run_id)
    output.mkdir(parents=True, exist_ok=True)
    store = open_store(config.database_url)

    run = GateRun(gate=gate, config=config, store=store, version=version, tier=tier_value,
                  environment=environment or config.project["environment"], run_id=run_id,
                  output_dir=output, started_at=utc_now())
    with store.begin() as connection:
        connection.execute(insert(gate_runs).values(
            run_id=run_id, project=run.project, gate=gate, version=version,
            tier=str(tier_value), environment=run.environment, status="running",
            started_at=run.started_at, output_dir=str(output)))
    return run


def _context(run: GateRun, name: str, inputs: dict[str, Path], work: Path) -> CheckContext:
    return CheckContext(project=run.config.project_dir.resolve(), tier=run.tier,
                        settings=run.config.checks[name], work_dir=work / name,
                        timeout_s=run.config.gate["check_timeout_s"], inputs=inputs)


def _check_item(run: GateRun, name: str, result: CheckResult) -> Item:
    item = Item(name, "check", CHECK_LABELS.get(name, name), result.status, result.summary)
    if not result.status.counts_as_pass:
        _apply_waiver(run, item)
    return item


def _apply_waiver(run: GateRun, item: Item) -> None:
    today = utc_now().date()
    for waiver in run.config.waivers:
        if waiver.item != item.item:
            continue
        if waiver.active(today):
            item.summary = (f"waived by {waiver.owner} until {waiver.expires}: {waiver.reason} "
                            f"(was {item.status}: {item.summary})")
            item.status = Status.WAIVED
            return
        item.summary += f" (waiver by {waiver.owner} expired on {waiver.expires})"


def _records_item(run: GateRun) -> list[Item]:
    """Return a failing item when the sign-off or evidence chain does not verify.

    A gate must not count a sign-off that was edited behind the database's back, so the
    whole gate fails until ``tinysdlc-nb audit verify`` is clean again.
    """
    with run.store.begin() as connection:
        problems = verify_chains(connection)
    if not problems:
        return []
    listed = "; ".join(str(problem) for problem in problems[:5])
    return [Item("records_intact", "evidence", "Sign-off and evidence records verify",
                 Status.FAIL, f"{len(problems)} problem(s) in the append-only records: "
                 f"{listed}; run tinysdlc-nb audit verify")]


def _evidence_items(run: GateRun) -> list[Item]:
    if run.gate != "g4":
        return []
    g3 = approvals.signoff_status(run.store, run.project, "g3", run.version, run.tier)
    if g3.confirmed:
        g3_item = Item("g3_confirmed", "evidence", "G3 Ship Ready confirmed", Status.PASS,
                       "G3 signed by " + ", ".join(f"{entry.signer} ({entry.requirement.name})"
                                                   for entry in g3.requirements))
    else:
        open_items = ", ".join(f"{entry.requirement.name} {entry.state}"
                               for entry in g3.requirements if entry.state != "approved")
        g3_item = Item("g3_confirmed", "evidence", "G3 Ship Ready confirmed", Status.FAIL,
                       f"G3 not confirmed for {run.version}: {open_items}")
    items = [g3_item]

    run.evidence = approvals.latest_evidence(run.store, run.project, "g4", run.version)
    for name, label in approvals.EVIDENCE_ITEMS.items():
        record = run.evidence.get(name)
        if record is None:
            item = Item(name, "evidence", label, Status.FAIL,
                        f"no evidence recorded; add it with: tinysdlc-nb evidence add --gate g4 "
                        f"--item {name} --version {run.version} --by NAME --note TEXT")
        else:
            attached = f", file {record['file_name']}" if record["file_name"] else ""
            item = Item(name, "evidence", label, Status.PASS,
                        f"recorded by {record['recorded_by']}{attached}: {record['note']}")
        items.append(item)
    for item in items:
        if item.status is not Status.PASS:
            _apply_waiver(run, item)
    return items


def _signoff_items(run: GateRun) -> list[Item]:
    run.signoffs = approvals.signoff_status(run.store, run.project, run.gate, run.version,
                                            run.tier)
    items = []
    for entry in run.signoffs.requirements:
        if entry.state == "approved":
            status, text = Status.PASS, f"approved by {entry.signer}"
        elif entry.state == "rejected":
            status, text = Status.FAIL, f"rejected by {entry.signer}: {entry.comment}"
        else:
            roles = sorted(entry.requirement.roles)
            others = f" (or {', '.join(roles[1:])})" if len(roles) > 1 else ""
            status, text = None, (f"waiting; sign with: tinysdlc-nb approve {run.gate} --role "
                                  f"{roles[0]} --by NAME --version {run.version}{others}")
        items.append(Item(f"signoff:{entry.requirement.name}", "signoff",
                          entry.requirement.label, status, text))
    return items


def _keep_raw_reports(run: GateRun) -> None:
    """Write each tool's report under raw/, redacted; the stored hash is of what is kept."""
    raw_dir = run.output_dir / "raw"
    for name, result in run.results.items():
        if not result.report:
            continue
        text = result.report.decode("utf-8", errors="replace")
        result.report = scrub(text).encode("utf-8")
        result.report_name = f"{name}-{result.report_name or 'report.txt'}"
        raw_dir.mkdir(parents=True, exist_ok=True)
        (raw_dir / result.report_name).write_bytes(result.report)


def _record_items(run: GateRun) -> None:
    with run.store.begin() as connection:
        for item in run.items:
            result = run.results[item.item]
            connection.execute(insert(gate_items).values(
                run_id=run.run_id, item=item.item, kind="check", required=item.required,
                status=str(item.status), summary=item.summary, tool=result.tool,
                tool_version=result.tool_version, exit_code=result.exit_code,
                report_name=result.report_name or None,
                report_sha256=result.report_sha256 or None, duration_s=result.duration_s))
            rows = [{"run_id": run.run_id, "item": item.item, **finding.as_dict()}
                    for finding in result.findings]
            if rows:
                connection.execute(insert(findings_table), rows)


def _record_verdict(run: GateRun) -> None:
    later_items = [item for item in run.items if item.kind != "check"]
    with run.store.begin() as connection:
        connection.execute(delete(gate_items).where(gate_items.c.run_id == run.run_id,
                                                    gate_items.c.kind != "check"))
        for item in later_items:
            connection.execute(insert(gate_items).values(
                run_id=run.run_id, item=item.item, kind=item.kind, required=item.required,
                status=str(item.status or "PENDING"), summary=item.summary))
        connection.execute(update(gate_runs).where(gate_runs.c.run_id == run.run_id).values(
            status="finished", verdict=str(run.verdict), exit_code=run.verdict.exit_code,
            finished_at=run.finished_at, summary_sha256=run.summary_sha256))


def open_run_for_notebook(gate: str, project: str, version: str | None, **options) -> GateRun:
    """Run a gate from a notebook's parameters, filling in the version when it is empty."""
    return run_gate(gate, project, version=version, **options)

"""The deployment checklist of one release, read from the store.

Each item comes from a record that already exists: the G3 sign-offs, the newest finished
gate run and the G4 evidence. Nothing is typed twice. An item with no record behind it
names the command that would record it.
"""

from __future__ import annotations

import datetime as dt
import logging
import shlex
from dataclasses import dataclass

import pandas as pd
from pandas.io.formats.style import Styler
from sqlalchemy import select

from . import approvals
from .errors import UsageError
from .gates.model import Status, Tier
from .scrub import scrub
from .store import Store, as_utc, utc_now
from .store.schema import gate_items, gate_runs, signoffs

log = logging.getLogger(__name__)

DONE = "done"
MISSING = "missing"
FAILED = "failed"
NOT_APPLICABLE = "not applicable"
COLUMNS = ("item", "label", "status", "evidence", "recorded_at", "age")

# Background and text colour of the status cell, per status, in the styled checklist.
STATUS_STYLES = {
    DONE: "background-color: #dafbe1; color: #116329",
    MISSING: "background-color: #ffebe9; color: #a40e26",
    FAILED: "background-color: #ffebe9; color: #a40e26",
    NOT_APPLICABLE: "background-color: #eaeef2; color: #57606a",
}

SECURITY_CHECKS = ("sast", "secrets", "dependencies")


@dataclass(frozen=True)
class ChecklistItem:
    """One line of the deployment checklist.

    ``evidence`` is the record behind the status, or the command that would produce it.
    ``recorded_at`` is when that record was made (None when there is none) and ``age`` is
    the time from then to the checklist's ``now`` as short text. The texts are not redacted
    here, so ``checklist_frame`` scrubs them.
    """

    item: str
    label: str
    status: str
    evidence: str
    recorded_at: dt.datetime | None = None
    age: str = ""


@dataclass(frozen=True)
class _GateRunRecord:
    """A finished gate run and its items by name."""

    run_id: str
    gate: str
    verdict: str
    output_dir: str
    finished_at: dt.datetime
    items: dict[str, dict]


def deployment_checklist(store: Store, project: str, version: str, tier: Tier | str,
                         now: dt.datetime | None = None) -> list[ChecklistItem]:
    """Build the deployment checklist of ``version``, in a fixed order of ten items.

    Raises UsageError when ``version`` is empty or ``tier`` is not a known tier.
    """
    tier = _check_tier(tier)
    if not version or not version.strip():
        raise UsageError("version is empty; pass the release version, for example 1.4.0")
    now = as_utc(now) if now is not None else utc_now()

    run = newest_gate_run(store, project, version)
    evidence = approvals.latest_evidence(store, project, "g4", version)
    gate_command = f"tinysdlc-nb gate g4 --version {shlex.quote(version)}"

    items = [
        _g3_item(store, project, version, tier),
        _ci_gates_item(run, version, gate_command),
        _checks_item("zero_mock", "No mock code or unfinished work in production code",
                     run, ("zero_mock",), gate_command),
        _checks_item("security_scan", "Security scans clean: code, secrets, dependencies",
                     run, SECURITY_CHECKS, gate_command),
        _evidence_item("staging", "Deployed to staging and smoke-tested there",
                       evidence.get("staging_smoke"), _runbook_command("staging_smoke", version)),
        _evidence_item("rollback_tested", "Rollback rehearsed within its target time",
                       evidence.get("rollback_tested"),
                       _runbook_command("rollback_tested", version, " --rehearse-rollback")),
        _evidence_item("monitoring", "Monitoring and alerting in place",
                       evidence.get("monitoring_configured"),
                       _evidence_command("monitoring_configured", version)),
        _checks_item("no_secrets", "No secrets in code or configuration",
                     run, ("secrets",), gate_command),
        _migrations_item(run, gate_command),
        _evidence_item("smoke_test", "Smoke test planned for after the deploy",
                       evidence.get("post_deploy_plan"),
                       _evidence_command("post_deploy_plan", version)),
    ]

    return [_with_age(item, now) for item in items]


def checklist_frame(store: Store, project: str, version: str, tier: Tier | str,
                    now: dt.datetime | None = None) -> pd.DataFrame:
    """Return the deployment checklist as a DataFrame, every text redacted."""
    items = deployment_checklist(store, project, version, tier, now)

    rows = [{"item": item.item, "label": scrub(item.label), "status": item.status,
             "evidence": scrub(item.evidence), "recorded_at": item.recorded_at,
             "age": item.age} for item in items]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["recorded_at"] = pd.to_datetime(frame["recorded_at"], utc=True)
    return frame


def style_checklist(frame: pd.DataFrame) -> Styler:
    """Style a checklist frame for a notebook: status colours, HTML-escaped text, no index."""
    return (frame.style
            .map(lambda status: STATUS_STYLES.get(status, ""), subset=["status"])
            .format(escape="html", na_rep="")
            .format(lambda value: f"{value:%Y-%m-%d %H:%M} UTC", subset=["recorded_at"],
                    na_rep="")
            .hide(axis="index"))


def checklist_summary(frame: pd.DataFrame) -> str:
    """Return one line such as ``7 of 9 done (1 not applicable)``."""
    statuses = list(frame["status"])
    not_applicable = statuses.count(NOT_APPLICABLE)
    applicable = len(statuses) - not_applicable
    line = f"{statuses.count(DONE)} of {applicable} done"
    if not_applicable:
        line += f" ({not_applicable} not applicable)"
    return line


def format_age(recorded_at: dt.datetime, now: dt.datetime) -> str:
    """Return the time from ``recorded_at`` to ``now`` in its largest whole unit: ``3 h``.

    A record made after ``now`` gets a minus sign, so a clock that is behind stays visible.
    """
    seconds = int((as_utc(now) - as_utc(recorded_at)).total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)

    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{sign}{seconds // size} {unit}"
    return f"{sign}{seconds} s"


def newest_gate_run(store: Store, project: str, version: str) -> _GateRunRecord | None:
    """Return the newest finished G4 run of the release, else its newest finished G3 run."""
    for gate in ("g4", "g3"):
        query = (select(gate_runs)
                 .where(gate_runs.c.project == project, gate_runs.c.version == version,
                        gate_runs.c.gate == gate, gate_runs.c.status == "finished",
                        gate_runs.c.finished_at.is_not(None))
                 .order_by(gate_runs.c.finished_at.desc(), gate_runs.c.run_id.desc())
                 .limit(1))
        with store.begin() as connection:
            run = connection.execute(query).mappings().first()
            if run is None:
                continue
            rows = connection.execute(
                select(gate_items).where(gate_items.c.run_id == run["run_id"])).mappings()
            items = {row["item"]: dict(row) for row in rows}

        if gate == "g3":
            log.info("no finished G4 run of %s %s, so the checklist uses G3 run %s", project,
                     version, run["run_id"])
        return _GateRunRecord(run["run_id"], gate, run["verdict"] or "", run["output_dir"] or "",
                              as_utc(run["finished_at"]), items)
    return None


def _check_tier(tier: Tier | str) -> Tier:
    try:
        return Tier(str(tier).strip().lower())
    except ValueError:
        raise UsageError(f"tier '{tier}' is invalid; expected one of "
                         f"{', '.join(value.value for value in Tier)}") from None


def _with_age(item: ChecklistItem, now: dt.datetime) -> ChecklistItem:
    if item.recorded_at is None:
        return item
    recorded_at = as_utc(item.recorded_at)
    return ChecklistItem(item.item, item.label, item.status, item.evidence, recorded_at,
                         format_age(recorded_at, now))


def _g3_item(store: Store, project: str, version: str, tier: Tier) -> ChecklistItem:
    """Report the G3 sign-offs with who signed in which role."""
    label = "G3 Ship Ready signed off"
    status = approvals.signoff_status(store, project, "g3", version, tier)
    latest = _latest_signoffs(store, project, version)

    signed, waiting, times = [], [], []
    for entry in status.requirements:
        row = _signoff_row(latest, entry)
        if row is not None:
            times.append(row["recorded_at"])
        if entry.state == "missing":
            roles = sorted(entry.requirement.roles)
            others = f" (or {', '.join(roles[1:])})" if len(roles) > 1 else ""
            waiting.append(f"{entry.requirement.label}: tinysdlc-nb approve g3 --role "
                           f"{roles[0]} --by NAME --version {shlex.quote(version)}{others}")
            continue
        role = row["role"] if row is not None else entry.requirement.name
        verb = "approved" if entry.state == "approved" else "rejected"
        comment = f" ({entry.comment})" if entry.state == "rejected" and entry.comment else ""
        signed.append(f"{verb} by {entry.signer} as {role}{comment}")

    recorded_at = max((as_utc(time) for time in times), default=None)
    text = "; ".join(signed + ["missing " + line for line in waiting])
    if status.rejected:
        return ChecklistItem("g3", label, FAILED, text, recorded_at)
    if status.confirmed:
        return ChecklistItem("g3", label, DONE, text, recorded_at)
    return ChecklistItem("g3", label, MISSING, text, recorded_at)


def _latest_signoffs(store: Store, project: str, version: str) -> list[dict]:
    """Return the newest G3 decision of each (signer, role), oldest first."""
    query = (select(signoffs)
             .where(signoffs.c.project == project, signoffs.c.gate == "g3",
                    signoffs.c.version == version)
             .order_by(signoffs.c.id))
    latest: dict[tuple[str, str], dict] = {}
    with store.begin() as connection:
        for row in connection.execute(query).mappings():
            latest[(row["signer"], row["role"])] = dict(row)
    return list(latest.values())


def _signoff_row(latest: list[dict], entry: approvals.RequirementState) -> dict | None:
    """Find the sign-off row that filled ``entry``, since ``signoff_status`` keeps no role."""
    decision = {"approved": "approve", "rejected": "reject"}.get(entry.state)
    matches = [row for row in latest
               if row["signer"] == entry.signer and row["decision"] == decision
               and row["role"] in entry.requirement.roles]
    return matches[-1] if matches else None


def _ci_gates_item(run: _GateRunRecord | None, version: str,
                   gate_command: str) -> ChecklistItem:
    """Report whether every required check of the newest gate run passes."""
    label = "Release gate checks pass"
    if run is None:
        return ChecklistItem("ci_gates", label, MISSING,
                             f"no finished G4 or G3 gate run of {version}; run: {gate_command}")

    checks = [row for row in run.items.values() if row["kind"] == "check" and row["required"]]
    failing = [row for row in checks if not _passes(row["status"])]
    text = (f"run {run.run_id}: verdict {run.verdict or 'none'}, reports in "
            f"{run.output_dir or 'no folder recorded'}")
    if run.gate == "g3":
        text = f"no G4 run yet, so this is the newest G3 {text}; run: {gate_command}"

    if not checks:
        return ChecklistItem("ci_gates", label, MISSING,
                             f"{text}; the run recorded no required checks; run: {gate_command}",
                             run.finished_at)
    if failing:
        listed = ", ".join(f"{row['item']} {row['status']}" for row in failing)
        return ChecklistItem("ci_gates", label, FAILED, f"{text}; not passing: {listed}",
                             run.finished_at)
    return ChecklistItem("ci_gates", label, DONE, f"{text}; {len(checks)} required checks pass",
                         run.finished_at)


def _checks_item(key: str, label: str, run: _GateRunRecord | None, names: tuple[str, ...],
                 gate_command: str) -> ChecklistItem:
    """Report check items of the gate run, which must all pass for the item to be done."""
    if run is None:
        return ChecklistItem(key, label, MISSING, f"no finished gate run; run: {gate_command}")

    rows = [run.items.get(name) for name in names]
    present = [row for row in rows if row is not None]
    absent = [name for name, row in zip(names, rows, strict=True) if row is None]
    failing = [row for row in present if not _passes(row["status"])]
    where = f"{run.gate.upper()} run {run.run_id}"

    if failing:
        listed = "; ".join(_describe(row) for row in failing)
        return ChecklistItem(key, label, FAILED, f"{where}: {listed}", run.finished_at)
    if absent:
        return ChecklistItem(key, label, MISSING,
                             f"{where} has no {', '.join(absent)} item; run: {gate_command}",
                             run.finished_at)
    listed = "; ".join(_describe(row) for row in present)
    return ChecklistItem(key, label, DONE, f"{where}: {listed}", run.finished_at)


def _migrations_item(run: _GateRunRecord | None, gate_command: str) -> ChecklistItem:
    """Report the migrations check, which is not applicable when a G4 run found none.

    A G3 run never checks migrations, so its missing item stays missing instead.
    """
    key, label = "migrations_reversible", "Database migrations can be rolled back"
    row = run.items.get("migrations") if run is not None else None
    if run is not None and run.gate == "g4":
        where = f"G4 run {run.run_id}"
        if row is None:
            return ChecklistItem(key, label, NOT_APPLICABLE,
                                 f"{where} did not check migrations", run.finished_at)
        if row["status"] == str(Status.SKIPPED):
            return ChecklistItem(key, label, NOT_APPLICABLE, f"{where}: {_describe(row)}",
                                 run.finished_at)
    return _checks_item(key, label, run, ("migrations",), gate_command)


def _evidence_item(key: str, label: str, record: dict | None, command: str) -> ChecklistItem:
    """Report one G4 evidence record: who recorded it, its note and its file."""
    if record is None:
        return ChecklistItem(key, label, MISSING, f"nothing recorded; {command}")

    text = f"recorded by {record['recorded_by']} ({record['source']})"
    if record["note"]:
        text += f": {record['note']}"
    if record["file_name"]:
        text += f"; file {record['file_name']} (sha256 {(record['file_sha256'] or '')[:12]})"
    return ChecklistItem(key, label, DONE, text, record["recorded_at"])


def _runbook_command(item: str, version: str, extra: str = "") -> str:
    """Return the deploy runbook run that records ``item``, or the manual record instead."""
    return (f"run: tinysdlc-nb runbook run deploy-local-service -p version="
            f"{shlex.quote(version)} -p environment=staging -p artifact=PATH "
            f"-p service_root=DIR{extra}, or {_evidence_command(item, version)}")


def _evidence_command(item: str, version: str) -> str:
    return (f"record it: tinysdlc-nb evidence add --gate g4 --item {item} --version "
            f"{shlex.quote(version)} --by NAME --note TEXT")


def _passes(status: str) -> bool:
    try:
        return Status(status).counts_as_pass
    except ValueError:
        return False


def _describe(row: dict) -> str:
    summary = f": {row['summary']}" if row["summary"] else ""
    return f"{row['item']} {row['status']}{summary}"

"""Store queries the offline agent, the notebooks and the heartbeat share.

Every function returns plain dicts and lists (times as aware UTC datetimes), so a caller
can print them, turn them into a DataFrame or render them in a message. Nothing here
writes to the store.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from ... import approvals
from ...gates.model import Status, Tier
from ...incidents.metrics import incident_table
from ...incidents.model import DONE_STATUSES, SEVERITIES
from ...incidents.records import display_id
from ...incidents.sla import SlaPolicy
from ...store import Store, as_utc, utc_now
from ...store.schema import evidence, findings, gate_items, gate_runs, signoffs

# Item statuses that stop a gate: a failure, a crashed tool or an unreachable data source.
BLOCKING_STATUSES = (str(Status.FAIL), str(Status.ERROR), str(Status.UNAVAILABLE))
ESCALATED_SEVERITIES = ("P0", "P1")
ROLLBACK_ITEM = "rollback_tested"


def gate_runs_of(store: Store, project: str, *, gate: str | None = None,
                 version: str | None = None) -> list[dict[str, Any]]:
    """Return the project's gate runs, newest first, optionally of one gate and version."""
    query = select(gate_runs).where(gate_runs.c.project == project)
    if gate is not None:
        query = query.where(gate_runs.c.gate == gate)
    if version is not None:
        query = query.where(gate_runs.c.version == version)
    query = query.order_by(gate_runs.c.started_at.desc(), gate_runs.c.run_id.desc())

    with store.begin() as connection:
        rows = [dict(row) for row in connection.execute(query).mappings()]
    for row in rows:
        row["started_at"] = as_utc(row["started_at"])
        row["finished_at"] = as_utc(row["finished_at"]) if row["finished_at"] else None
    return rows


def newest_gate_runs(store: Store, project: str,
                     version: str | None = None) -> dict[str, dict[str, Any]]:
    """Return the newest run of each gate, keyed by gate (``g3``, ``g4``)."""
    newest: dict[str, dict[str, Any]] = {}
    for run in gate_runs_of(store, project, version=version):
        newest.setdefault(run["gate"], run)
    return newest


def newest_run(store: Store, project: str, gate: str, version: str) -> dict[str, Any] | None:
    runs = gate_runs_of(store, project, gate=gate, version=version)
    return runs[0] if runs else None


def failed_runs(store: Store, project: str) -> list[dict[str, Any]]:
    """Return the runs whose verdict is FAILED and that no later run of the same gate and
    version replaced, newest first.

    A G4 run of 1.4.0 that failed and was run again with a pass is not listed, while a
    failed 1.4.0 run stays listed when a 1.3.1 hotfix passes after it.
    """
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for run in gate_runs_of(store, project):
        newest.setdefault((run["gate"], run["version"]), run)
    failed = [run for run in newest.values() if run["verdict"] == "FAILED"]
    return sorted(failed, key=lambda run: (run["started_at"], run["run_id"]), reverse=True)


def failing_items(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Return the required items of a run that block it (FAIL, ERROR, UNAVAILABLE)."""
    query = (select(gate_items)
             .where(gate_items.c.run_id == run_id, gate_items.c.required.is_(True),
                    gate_items.c.status.in_(BLOCKING_STATUSES))
             .order_by(gate_items.c.id))
    with store.begin() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def failing_findings(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Return the counted findings of the run's failed check items, in stored order.

    Suppressed findings and notes are left out, because they do not fail an item.
    """
    failed_checks = (select(gate_items.c.item)
                     .where(gate_items.c.run_id == run_id, gate_items.c.kind == "check",
                            gate_items.c.status == str(Status.FAIL)))
    query = (select(findings)
             .where(findings.c.run_id == run_id, findings.c.item.in_(failed_checks),
                    findings.c.suppression.is_(None), findings.c.severity != "note")
             .order_by(findings.c.id))
    with store.begin() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def newest_version(store: Store, project: str) -> str | None:
    """Return the version with the most recent gate run, sign-off or evidence record.

    "Newest" is by activity, not by version order, so a hotfix worked on after a larger
    release counts as the current one.
    """
    latest: dict[str, dt.datetime] = {}
    sources = ((gate_runs, gate_runs.c.started_at), (signoffs, signoffs.c.recorded_at),
               (evidence, evidence.c.recorded_at))
    with store.begin() as connection:
        for table, column in sources:
            query = (select(table.c.version, func.max(column))
                     .where(table.c.project == project).group_by(table.c.version))
            for version, at in connection.execute(query):
                at = as_utc(at)
                if version not in latest or at > latest[version]:
                    latest[version] = at
    if not latest:
        return None
    return max(latest, key=lambda version: (latest[version], version))


def known_versions(store: Store, project: str) -> set[str]:
    """Return every version that has a gate run, sign-off or evidence record."""
    versions: set[str] = set()
    with store.begin() as connection:
        for table in (gate_runs, signoffs, evidence):
            query = select(table.c.version).where(table.c.project == project).distinct()
            versions.update(connection.execute(query).scalars())
    return versions


def g3_status(store: Store, project: str, version: str, tier: Tier) -> dict[str, Any]:
    """Return whether G3 is confirmed for ``version`` at ``tier``, and the state of each
    required sign-off (approved, rejected or missing)."""
    status = approvals.signoff_status(store, project, "g3", version, tier)
    requirements = [{"name": entry.requirement.name, "label": entry.requirement.label,
                     "roles": sorted(entry.requirement.roles), "state": entry.state,
                     "signer": entry.signer, "comment": entry.comment}
                    for entry in status.requirements]
    return {"version": version, "tier": str(tier), "confirmed": status.confirmed,
            "requirements": requirements,
            "open": [entry for entry in requirements if entry["state"] != "approved"]}


def signoff_records(store: Store, project: str, gate: str, version: str) -> list[dict[str, Any]]:
    """Return every recorded sign-off of a gate and version, oldest first."""
    query = (select(signoffs.c.signer, signoffs.c.role, signoffs.c.decision,
                    signoffs.c.comment, signoffs.c.recorded_at, signoffs.c.source)
             .where(signoffs.c.project == project, signoffs.c.gate == gate,
                    signoffs.c.version == version)
             .order_by(signoffs.c.id))
    with store.begin() as connection:
        rows = [dict(row) for row in connection.execute(query).mappings()]
    for row in rows:
        row["recorded_at"] = as_utc(row["recorded_at"])
    return rows


def rollback_evidence(store: Store, project: str, version: str) -> dict[str, Any]:
    """Return whether a tested rollback is recorded for the release, with the record."""
    record = approvals.latest_evidence(store, project, "g4", version).get(ROLLBACK_ITEM)
    if record is None:
        return {"tested": False, "recorded_by": None, "recorded_at": None, "note": ""}
    return {"tested": True, "recorded_by": record["recorded_by"],
            "recorded_at": as_utc(record["recorded_at"]), "note": record["note"]}


def open_incidents(store: Store, config: Any, *, severities: tuple[str, ...] = SEVERITIES,
                   now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Return incidents not yet resolved at one of ``severities``, most severe first.

    ``resolve_due`` is the SLA resolve deadline, or None when the severity has no resolve
    target in ``[sla]``.
    """
    table = incident_table(store, SlaPolicy.from_config(config.sla), now=now or utc_now())
    chosen = table[~table["status"].isin(DONE_STATUSES) & table["severity"].isin(severities)]

    result = []
    for row in chosen.to_dict("records"):
        result.append({
            "id": int(row["incident_id"]), "display_id": display_id(int(row["incident_id"])),
            "title": row["title"], "service": row["service"] or "",
            "severity": row["severity"], "status": row["status"],
            "detected_at": _timestamp(row["detected_at"]),
            "resolve_due": _timestamp(row["resolve_due"]),
        })
    return sorted(result, key=lambda incident: (SEVERITIES.index(incident["severity"]),
                                                incident["id"]))


def open_escalated_incidents(store: Store, config: Any,
                             now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Return the open P0 and P1 incidents: the ones the human owner must hear about."""
    return open_incidents(store, config, severities=ESCALATED_SEVERITIES, now=now)


def _timestamp(value: Any) -> dt.datetime | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).to_pydatetime()

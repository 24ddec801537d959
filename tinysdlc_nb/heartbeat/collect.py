"""Store collectors of the heartbeat: incidents, sign-offs, dead messages and gates.

Each collector returns findings. HTTP endpoints are checked in ``endpoints.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

from .. import approvals
from ..config import Config
from ..gates.model import Tier
from ..gates.policy import Verdict
from ..store import Store, as_utc
from ..store.schema import gate_runs, team_messages
from .endpoints import check_endpoints
from .findings import Finding

# Verdicts of a last gate run that need a person: a failed item, or a crashed or blind tool.
FAILED_VERDICTS = (str(Verdict.FAILED), str(Verdict.INCOMPLETE))
SLA_ALARMS = ("at risk", "breached")
DEAD_IDS_SHOWN = 20


def collect_findings(config: Config, store: Store, now: dt.datetime) -> list[Finding]:
    """Run every collector and return their findings, endpoints first."""
    findings = check_endpoints(config.heartbeat["endpoints"])
    findings += incident_findings(config, store, now)
    findings += signoff_findings(config, store, now)
    findings += dead_message_findings(store)
    findings += gate_findings(store)
    return findings


def incident_findings(config: Config, store: Store, now: dt.datetime) -> list[Finding]:
    """Return one finding per open incident with its SLA state, as ``incident list`` has it.

    An acknowledge or resolve target that is at risk or breached needs a person.
    """
    from ..incidents.metrics import incident_table
    from ..incidents.model import DONE_STATUSES
    from ..incidents.records import display_id
    from ..incidents.sla import SlaPolicy

    table = incident_table(store, SlaPolicy.from_config(config.sla), now=now)
    open_rows = table[~table["status"].isin(DONE_STATUSES)]

    findings = []
    for row in open_rows.to_dict("records"):
        label = display_id(int(row["incident_id"]))
        severity = row["severity"] if isinstance(row["severity"], str) else "no severity"
        slas = {name: row[f"{name}_sla"] for name in ("acknowledge", "resolve")}
        alarms = [f"{name} SLA {status}" for name, status in slas.items()
                  if status in SLA_ALARMS]
        shown = ", ".join(f"{name} {status}" for name, status in slas.items() if status)
        state = f"{severity} {row['status']}; {shown or 'no SLA target'}"
        text = (f"{label} ({severity}, {row['status']}) {row['title']}: "
                f"{', '.join(alarms) if alarms else 'SLA on track'}.")
        detail = {"service": row["service"], "title": row["title"],
                  "acknowledge_due": _iso(row["acknowledge_due"]),
                  "resolve_due": _iso(row["resolve_due"])}
        findings.append(Finding("incident", label, state, bool(alarms), text, detail))
    return findings


def signoff_findings(config: Config, store: Store, now: dt.datetime) -> list[Finding]:
    """Return the gates waiting for sign-off: an AWAITING_APPROVAL run with no later pass.

    The wait starts at the first such run after the last pass of that project, gate and
    version. A wait longer than ``[heartbeat].signoff_max_age_h`` needs a person.
    """
    max_age = dt.timedelta(hours=config.heartbeat["signoff_max_age_h"])
    query = (select(gate_runs.c.project, gate_runs.c.gate, gate_runs.c.version,
                    gate_runs.c.tier, gate_runs.c.verdict, gate_runs.c.started_at,
                    gate_runs.c.finished_at)
             .where(gate_runs.c.verdict.in_([str(Verdict.PASSED),
                                             str(Verdict.AWAITING_APPROVAL)]))
             .order_by(gate_runs.c.started_at, gate_runs.c.run_id))
    with store.begin() as connection:
        rows = [dict(row) for row in connection.execute(query).mappings()]

    waiting: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["project"], row["gate"], row["version"])
        if row["verdict"] == str(Verdict.PASSED):
            waiting.pop(key, None)
        else:
            waiting.setdefault(key, row)

    return [_signoff_finding(store, key, row, now, max_age)
            for key, row in sorted(waiting.items())]


def _signoff_finding(store: Store, key: tuple[str, str, str], run: dict[str, Any],
                     now: dt.datetime, max_age: dt.timedelta) -> Finding:
    project, gate, version = key
    since = as_utc(run["finished_at"] or run["started_at"])
    age = now - since
    status = approvals.signoff_status(store, project, gate, version, Tier(run["tier"]))
    missing = [entry.requirement.name for entry in status.missing]
    rejected = [entry.requirement.name for entry in status.rejected]

    overdue = age > max_age
    parts = ["overdue" if overdue else "waiting"]
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if rejected:
        parts.append(f"rejected {', '.join(rejected)}")
    if not missing and not rejected:
        parts.append("signed, gate not run again")
    subject = f"{project} {gate.upper()} {version}"
    hours = age.total_seconds() / 3600
    text = (f"{subject} has waited {hours:.1f} h for sign-off "
            f"({'; '.join(parts[1:])}).")
    detail = {"project": project, "gate": gate, "version": version, "since": since.isoformat(),
              "age_h": round(hours, 2), "missing": missing, "rejected": rejected,
              "missing_roles": sorted({role for entry in status.missing
                                       for role in entry.requirement.roles})}
    return Finding("signoff", subject, "; ".join(parts), overdue, text, detail)


def dead_message_findings(store: Store) -> list[Finding]:
    """Return one finding on the messages the queue gave up on (status ``dead``)."""
    count_query = (select(func.count(), func.max(team_messages.c.id))
                   .where(team_messages.c.status == "dead"))
    ids_query = (select(team_messages.c.id).where(team_messages.c.status == "dead")
                 .order_by(team_messages.c.id.desc()).limit(DEAD_IDS_SHOWN))
    with store.begin() as connection:
        count, newest = connection.execute(count_query).one()
        ids = list(connection.execute(ids_query).scalars())

    if not count:
        return [Finding("queue", "dead messages", "none", False,
                        "No dead messages in the team queue.", {"count": 0})]

    text = (f"{count} dead message(s) in the team queue, newest #{newest}; see "
            f"`tinysdlc-nb inbox` or the team_inbox notebook to retry them.")
    return [Finding("queue", "dead messages", f"{count} dead, newest #{newest}", True, text,
                    {"count": count, "ids": ids})]


def gate_findings(store: Store) -> list[Finding]:
    """Return the last verdict of each gate of each project; FAILED or INCOMPLETE needs a
    person."""
    query = (select(gate_runs.c.run_id, gate_runs.c.project, gate_runs.c.gate,
                    gate_runs.c.version, gate_runs.c.verdict, gate_runs.c.started_at)
             .where(gate_runs.c.verdict.is_not(None))
             .order_by(gate_runs.c.started_at.desc(), gate_runs.c.run_id.desc()))
    with store.begin() as connection:
        rows = [dict(row) for row in connection.execute(query).mappings()]

    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        newest.setdefault((row["project"], row["gate"]), row)

    findings = []
    for (project, gate), run in sorted(newest.items()):
        subject = f"{project} {gate.upper()}"
        failed = run["verdict"] in FAILED_VERDICTS
        text = (f"Last {gate.upper()} run of {project} {run['version']}: {run['verdict']} "
                f"(run {run['run_id']}).")
        detail = {"project": project, "gate": gate, "version": run["version"],
                  "run_id": run["run_id"], "started_at": as_utc(run["started_at"]).isoformat()}
        findings.append(Finding("gate", subject, f"{run['verdict']} {run['version']}", failed,
                                text, detail))
    return findings


def _iso(value: Any) -> str | None:
    import pandas as pd

    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).isoformat()

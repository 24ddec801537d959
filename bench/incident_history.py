"""Generate a realistic incident history in a SQLite store, for the metrics benchmark.

Each incident is detected with a severity and carries the rows the engine and people
write. These are alert_fired / alert_resolved rows of its member alerts (some flapping),
an escalation for P0 and P1, notes and assignments, and acknowledgements by people and by
agents (which the metrics must not count). Then come containment, resolution,
verification and closing, severity changes, reopenings, retracted acknowledgements,
corrected containment times and postmortem rows. Incidents of the last 30 days are often
still open. The same seed gives the same rows, and exactly the requested row count.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import random
import sqlite3
from pathlib import Path

from tinysdlc_nb.store import open_store

SEED = 20261204
FIRST_DETECTION = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
RECENT = dt.timedelta(days=30)

SEVERITY_WEIGHTS = {"P0": 0.05, "P1": 0.15, "P2": 0.45, "P3": 0.35}
# Median minutes to a human acknowledgement and to resolution, per severity.
TTA_MEDIAN_MIN = {"P0": 4, "P1": 20, "P2": 90, "P3": 1440}
TTR_MEDIAN_MIN = {"P0": 60, "P1": 240, "P2": 1440, "P3": 7 * 1440}
SERVICES = tuple(f"{name}-{part}" for name in ("checkout", "payments", "search", "auth",
                                               "catalog", "billing", "mail", "ledger")
                 for part in ("api", "worker", "db", "cache", "gateway"))
ALERTS = ("HighErrorRate", "HighLatencyP99", "DiskFull", "PodCrashLooping", "CertExpiring",
          "QueueBacklog", "ReplicationLag", "MemoryPressure", "TargetDown", "5xxSpike")
PEOPLE = ("ana", "bo", "chen", "dana", "eli", "fatima", "gus", "hana", "ivan", "jo")
AGENTS = ("triage-agent", "reviewer", "devops")
POSTMORTEM_KINDS = ("impact", "root_cause", "trigger", "resolution", "lesson", "action_item")

INSERT_TIMELINE = (
    "INSERT INTO timeline (id, incident_id, occurred_at, recorded_at, kind, source, actor, "
    "actor_kind, severity, description, details, alert_key, supersedes, dedup_key) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


@dataclasses.dataclass
class Row:
    """One timeline row before it has an id; ``supersedes`` points at another Row."""

    kind: str
    occurred_at: dt.datetime
    actor: str = "alertmanager"
    actor_kind: str = "system"
    severity: str | None = None
    description: str = ""
    details: str = "{}"
    alert_key: str | None = None
    dedup_key: str | None = None
    supersedes: Row | None = None
    recorded_at: dt.datetime | None = None


@dataclasses.dataclass
class Incident:
    number: int
    title: str
    service: str
    source: str
    opened_by: str
    group_key: str
    detected_at: dt.datetime
    end: dt.datetime
    rows: list[Row]
    alert_keys: list[str]


def generate(path: Path, incidents: int = 50_000, rows: int = 1_000_000,
             seed: int = SEED) -> dict:
    """Create a store at ``path`` with exactly ``rows`` timeline rows; return the counts."""
    rng = random.Random(seed)
    generated = [_incident(rng, number) for number in range(1, incidents + 1)]
    base = sum(len(incident.rows) for incident in generated)
    if base > rows:
        raise ValueError(f"{incidents} incidents already need {base} rows, more than the "
                         f"{rows} requested; ask for more rows or fewer incidents")
    _add_flapping(rng, generated, rows - base)

    store = open_store(f"sqlite:///{path}")
    store.close()
    with sqlite3.connect(path) as connection:
        _insert(connection, generated)
    return {"incidents": incidents, "rows": rows, "base_rows": base, "seed": seed}


def _incident(rng: random.Random, number: int) -> Incident:
    span = (NOW - RECENT * 0.1 - FIRST_DETECTION).total_seconds()
    detected = _ms(FIRST_DETECTION + dt.timedelta(seconds=rng.random() * span))
    severity = rng.choices(list(SEVERITY_WEIGHTS), weights=list(SEVERITY_WEIGHTS.values()))[0]
    alert_name = rng.choice(ALERTS)
    service = rng.choice(SERVICES)
    from_alert = rng.random() < 0.85
    source = "alertmanager" if from_alert else "cli"
    opened_by = "alertmanager" if from_alert else rng.choice(PEOPLE)
    group = f"web:{{}}:{{alertname=\"{alert_name}\", service=\"{service}\", n=\"{number}\"}}"
    keys = [f"{rng.getrandbits(64):016x}" for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 5)))]

    incident = Incident(number, f"{alert_name} on {service}", service, source, opened_by,
                        group, detected, NOW, [], keys)
    detected_row = Row("detected", detected, actor=opened_by,
                       actor_kind="system" if from_alert else "human", severity=severity,
                       description=incident.title, details=_labels(alert_name, service,
                                                                   severity, keys[0]),
                       alert_key=keys[0] if from_alert else None,
                       dedup_key=_dedup(incident, keys[0], detected, "firing")
                       if from_alert else None)
    incident.rows.append(detected_row)
    if from_alert and rng.random() < 0.01:
        _estimated_detection(rng, incident, detected_row)
    _lifecycle(rng, incident, severity, alert_name)
    return incident


def _estimated_detection(rng: random.Random, incident: Incident, detected_row: Row) -> None:
    """Mark the detection as a guess, as the engine does for an incident opened by a
    resolve without a start time. Some of them are corrected later to an earlier start."""
    detected_row.details = json.dumps({"detected_time_estimated": True,
                                       "opened_by": "resolved"}, sort_keys=True)
    if rng.random() < 0.4:
        earlier = _ms(incident.detected_at - _minutes(rng, 15))
        incident.rows.append(Row(
            "detected", earlier, severity=detected_row.severity,
            description=detected_row.description,
            details=json.dumps({"detected_time_estimated": False, "opened_by": "resolved"},
                               sort_keys=True),
            alert_key=detected_row.alert_key, supersedes=detected_row,
            recorded_at=incident.detected_at + dt.timedelta(hours=1)))


def _lifecycle(rng: random.Random, incident: Incident, severity: str, alert_name: str) -> None:
    """Append the rows after detection: response, changes, resolution and afterwards."""
    rows = incident.rows
    detected = incident.detected_at
    current = severity
    for key in incident.alert_keys[1:]:
        at = detected + _minutes(rng, 2)
        rows.append(Row("alert_fired", at, details=_labels(alert_name, incident.service,
                                                           current, key),
                        alert_key=key, dedup_key=_dedup(incident, key, at, "firing")))
    if current in ("P0", "P1"):
        rows.append(_escalated(detected, current))

    recent = NOW - detected < RECENT
    stays_open = rng.random() < (0.5 if recent else 0.03)
    ttr = _lognormal(rng, TTR_MEDIAN_MIN[current])
    resolved_at = None if stays_open else _ms(detected + dt.timedelta(minutes=ttr))
    horizon = resolved_at or NOW
    incident.end = horizon

    ack = _acknowledgements(rng, incident, current, horizon)
    if rng.random() < 0.6:
        rows.append(Row("assigned", _between(rng, detected, horizon), actor=rng.choice(PEOPLE),
                        actor_kind="human", description=f"assigned to {rng.choice(PEOPLE)}"))
    for _ in range(rng.choice((0, 0, 1, 1, 2, 3, 4, 6))):
        rows.append(Row("note", _between(rng, detected, horizon), actor=rng.choice(PEOPLE),
                        actor_kind="human", description="looking at the dashboards"))
    if rng.random() < 0.12:
        current = _change_severity(rng, incident, current, horizon)

    contained = None
    if rng.random() < 0.55:
        contained = Row("contained", _between(rng, detected, horizon), actor=rng.choice(PEOPLE),
                        actor_kind="human", description="traffic shifted away")
        rows.append(contained)
    _corrections(rng, incident, ack, contained)

    if resolved_at is not None:
        _resolution(rng, incident, resolved_at, current, alert_name)


def _acknowledgements(rng: random.Random, incident: Incident, severity: str,
                      horizon: dt.datetime) -> Row | None:
    """Append agent and human acknowledgements; return the human one, if any."""
    detected = incident.detected_at
    if rng.random() < 0.15:
        incident.rows.append(Row("acknowledged", detected + _minutes(rng, 1),
                                 actor=rng.choice(AGENTS), actor_kind="agent",
                                 description="acknowledged by the triage agent"))
    if rng.random() >= 0.75:
        return None
    at = _ms(detected + dt.timedelta(minutes=_lognormal(rng, TTA_MEDIAN_MIN[severity])))
    if at > horizon:
        return None
    ack = Row("acknowledged", at, actor=rng.choice(PEOPLE), actor_kind="human",
              description="on it")
    incident.rows.append(ack)
    return ack


def _change_severity(rng: random.Random, incident: Incident, current: str,
                     horizon: dt.datetime) -> str:
    levels = list(SEVERITY_WEIGHTS)
    index = levels.index(current)
    stricter = index > 0 and (index == 3 or rng.random() < 0.6)
    new = levels[index - 1] if stricter else levels[index + 1]
    at = _between(rng, incident.detected_at, horizon)
    incident.rows.append(Row("severity", at, actor=rng.choice(PEOPLE), actor_kind="human",
                             severity=new, description=f"severity {current} -> {new}",
                             details=json.dumps({"from": current, "to": new})))
    if stricter and new in ("P0", "P1"):
        incident.rows.append(_escalated(at, new, current))
    return new


def _corrections(rng: random.Random, incident: Incident, ack: Row | None,
                 contained: Row | None) -> None:
    """Retract some human acknowledgements and correct some containment times."""
    if ack is not None and rng.random() < 0.03:
        incident.rows.append(Row("retraction", ack.occurred_at, actor=ack.actor,
                                 actor_kind="human", description="acknowledged the wrong "
                                 "incident", supersedes=ack,
                                 recorded_at=ack.occurred_at + dt.timedelta(hours=2)))
    if contained is not None and rng.random() < 0.05:
        earlier = _ms(max(incident.detected_at, contained.occurred_at - _minutes(rng, 20)))
        incident.rows.append(Row("contained", earlier, actor=contained.actor,
                                 actor_kind="human", description="containment time corrected",
                                 supersedes=contained,
                                 recorded_at=contained.occurred_at + dt.timedelta(days=1)))


def _resolution(rng: random.Random, incident: Incident, resolved_at: dt.datetime,
                severity: str, alert_name: str) -> None:
    """Append the alerts' resolutions, the resolution, and what may follow it."""
    rows = incident.rows
    for key in incident.alert_keys:
        at = resolved_at - dt.timedelta(seconds=rng.randint(0, 120))
        rows.append(Row("alert_resolved", at, alert_key=key,
                        dedup_key=_dedup(incident, key, at, "resolved")))
    rows.append(Row("resolved", resolved_at, actor=rng.choice(("alertmanager", *PEOPLE)),
                    description="all alerts resolved"))
    end = resolved_at

    if rng.random() < 0.04:
        reopened = resolved_at + _minutes(rng, 30)
        rows.append(Row("reopened", reopened, description=f"re-fired: {alert_name}"))
        rows.append(Row("alert_fired", reopened, alert_key=incident.alert_keys[0],
                        dedup_key=_dedup(incident, incident.alert_keys[0], reopened, "firing")))
        if rng.random() < 0.8:
            end = _ms(reopened + dt.timedelta(minutes=_lognormal(rng, 60)))
            rows.append(Row("resolved", end, description="resolved again"))
        else:
            end = NOW
    incident.end = end
    if end == NOW:
        return

    if rng.random() < 0.3:
        verified = end + _minutes(rng, 600)
        rows.append(Row("verified", verified, actor=rng.choice(PEOPLE), actor_kind="human"))
        end = verified
    if rng.random() < 0.25:
        rows.append(Row("closed", end + _minutes(rng, 1440), actor=rng.choice(PEOPLE),
                        actor_kind="human"))
    if severity in ("P0", "P1"):
        for kind in rng.sample(POSTMORTEM_KINDS, rng.randint(2, len(POSTMORTEM_KINDS))):
            rows.append(Row(kind, end + _minutes(rng, 2880), actor=rng.choice(PEOPLE),
                            actor_kind="human", description=f"postmortem: {kind}"))


def _add_flapping(rng: random.Random, incidents: list[Incident], count: int) -> None:
    """Spread ``count`` alert_fired / alert_resolved rows over the incidents' alerts.

    A few incidents take most of them, as flapping alerts do.
    """
    weights = [rng.paretovariate(1.2) for _ in incidents]
    chosen = rng.choices(range(len(incidents)), weights=weights, k=math.ceil(count / 2))
    left = count
    for serial, index in enumerate(chosen):
        incident = incidents[index]
        key = rng.choice(incident.alert_keys)
        fired = _between(rng, incident.detected_at, incident.end)
        labels = _labels("Flapping", incident.service, None, key)
        # Two draws can give the same millisecond, so a serial keeps the dedup keys unique.
        occurrence = f"{key}:{serial}"
        incident.rows.append(Row("alert_fired", fired, details=labels, alert_key=key,
                                 dedup_key=_dedup(incident, occurrence, fired, "firing")))
        left -= 1
        if left == 0:
            break
        resolved = min(fired + _minutes(rng, 10), incident.end)
        incident.rows.append(Row("alert_resolved", resolved, alert_key=key,
                                 dedup_key=_dedup(incident, occurrence, fired,
                                                  "resolved")))
        left -= 1
        if left == 0:
            break


def _insert(connection: sqlite3.Connection, incidents: list[Incident]) -> None:
    """Insert incidents, keys and rows with executemany, rows in the order they were recorded."""
    connection.executemany(
        "INSERT INTO incidents (id, title, service, source, opened_at, opened_by) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(incident.number, incident.title, incident.service, incident.source,
          _text(incident.detected_at), incident.opened_by) for incident in incidents])
    connection.executemany(
        "INSERT INTO incident_keys (source, key, incident_id, created_at) VALUES (?, ?, ?, ?)",
        [(incident.source, incident.group_key, incident.number, _text(incident.detected_at))
         for incident in incidents])

    ordered = [(row.recorded_at or row.occurred_at, incident.number, position, row)
               for incident in incidents for position, row in enumerate(incident.rows)]
    ordered.sort(key=lambda entry: entry[:3])
    ids = {id(entry[3]): number for number, entry in enumerate(ordered, start=1)}
    connection.executemany(INSERT_TIMELINE, (
        (ids[id(row)], incident_id, _text(row.occurred_at),
         _text(row.recorded_at or row.occurred_at), row.kind,
         _source(row), row.actor, row.actor_kind,
         row.severity, row.description, row.details, row.alert_key,
         ids[id(row.supersedes)] if row.supersedes is not None else None, row.dedup_key)
        for _, incident_id, _, row in ordered))


def _escalated(at: dt.datetime, severity: str, old: str | None = None) -> Row:
    return Row("escalated", at, actor="tinysdlc-nb",
               description=f"{severity} incident escalated to SE4H",
               details=json.dumps({"delivered": False, "from_severity": old,
                                   "severity": severity, "to": "SE4H"}))


def _source(row: Row) -> str:
    if row.actor == "tinysdlc-nb":
        return "tinysdlc-nb"
    return "alertmanager" if row.actor_kind == "system" else "cli"


def _labels(alert_name: str, service: str, severity: str | None, key: str) -> str:
    labels = {"alertname": alert_name, "service": service, "job": service.split("-")[0],
              "severity": severity or "warning"}
    return json.dumps({"labels": labels, "fingerprint": key}, sort_keys=True)


def _dedup(incident: Incident, key: str, at: dt.datetime, status: str) -> str:
    return f"alertmanager:{incident.group_key}:{key}:{at.isoformat()}:{status}"


def _lognormal(rng: random.Random, median_minutes: float) -> float:
    return median_minutes * math.exp(rng.gauss(0, 1.0))


def _minutes(rng: random.Random, mean: float) -> dt.timedelta:
    return dt.timedelta(milliseconds=round(rng.expovariate(1 / mean) * 60_000) + 1)


def _between(rng: random.Random, start: dt.datetime, end: dt.datetime) -> dt.datetime:
    span_ms = max(int((end - start).total_seconds() * 1000), 1)
    return start + dt.timedelta(milliseconds=rng.randint(1, span_ms))


def _ms(value: dt.datetime) -> dt.datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _text(value: dt.datetime) -> str:
    """Format a UTC time as SQLAlchemy stores DateTime columns in SQLite."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

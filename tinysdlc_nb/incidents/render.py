"""Text and JSON output of the incident commands. Times show in the display zone as text
and in UTC (ISO 8601, ``Z``) as JSON."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import Counter
from typing import Any

import pandas as pd

from ..scrub import scrub, scrub_data
from .engine import Outcome
from .records import display_id
from .times import load_zone
from .view import summary_fields

# Control characters from payloads (escape sequences, carriage returns) would let a webhook
# sender rewrite the terminal; they are shown as \xNN instead.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

LIST_FIELDS = ("id", "title", "service", "severity", "status", "detected_at",
               "acknowledged_at", "contained_at", "resolved_at")


def print_outcomes(outcomes: list[Outcome], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(scrub_data([_outcome_json(outcome) for outcome in outcomes]),
                         indent=2))
        return
    for outcome in outcomes:
        signal = outcome.signal
        target = display_id(outcome.incident_id) if outcome.incident_id else "-"
        added = f": {', '.join(outcome.kinds)}" if outcome.kinds else ""
        reason = f" ({outcome.reason})" if outcome.reason else ""
        print(safe(f"{target:<8} {outcome.action:<9} {signal.source} {signal.event} "
                   f"{signal.title or signal.alert_key or signal.incident_key}{added}{reason}"))
    counts = Counter(outcome.action for outcome in outcomes)
    parts = ", ".join(f"{counts[name]} {name}" for name in
                      ("created", "updated", "reopened", "unchanged", "ignored") if counts[name])
    print(f"{len(outcomes)} signal(s): {parts or 'none in the payload'}")


def _outcome_json(outcome: Outcome) -> dict[str, Any]:
    signal = outcome.signal
    return {
        "action": outcome.action,
        "incident": display_id(outcome.incident_id) if outcome.incident_id else None,
        "rows_added": outcome.kinds,
        "reason": outcome.reason or None,
        "source": signal.source,
        "event": str(signal.event),
        "dedup_key": signal.dedup_key,
        "title": signal.title,
    }


def print_detail_line(detail: dict[str, Any], what: str, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(scrub_data(detail), indent=2))
        return
    print(safe(f"{detail['id']} {what}: {detail['title']} [{detail['severity']}, "
               f"{detail['status']}]"))


def print_detail(detail: dict[str, Any], rows: list[dict[str, Any]], zone: str) -> None:
    print(safe(f"{detail['id']}  {detail['title']}"))
    print(safe(f"  service   {detail['service'] or '-'}    source {detail['source']}"))
    print(f"  severity  {detail['severity']}    status {detail['status']}")
    for name in ("detected_at", "acknowledged_at", "contained_at", "resolved_at",
                 "verified_at", "closed_at"):
        if detail[name]:
            print(f"  {name[:-3]:<13} {_local(detail[name], zone)}")
    for name, result in detail["sla"].items():
        if result["status"]:
            print(f"  SLA {name:<11} {result['status']:<9} due {_local(result['due'], zone)}")
    print()
    print_timeline(detail["id"], rows, zone)


def print_timeline(label: str, rows: list[dict[str, Any]], zone: str) -> None:
    print(f"Timeline of {label} ({zone}):")
    for row in rows:
        severity = f" [{row['severity']}]" if row.get("severity") else ""
        count = f" x{row['details']['count']}" if row["kind"] == "flapping" else ""
        line = (f"  {row['id']:>6}  {_local(row['occurred_at'], zone)}  {row['kind']:<14}"
                f"{count}{severity} {row['actor'] or row['source']}: {row['description']}")
        print(safe(line))


def list_items(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Return the ``incident list --json`` objects of every incident in ``table``."""
    items = []
    for _, row in table.iterrows():
        fields = summary_fields(row)
        item = {"id": display_id(int(row["incident_id"])), "title": row["title"],
                "service": row["service"], **fields}
        items.append({key: item[key] for key in LIST_FIELDS})
    return items


def print_list(items: list[dict[str, Any]], table: pd.DataFrame, zone: str) -> None:
    """Print one line per incident, with the SLA result of each target that is set."""
    if not items:
        print("No incidents recorded.")
        return
    targets = table.set_index(table["incident_id"].map(display_id))
    print(f"{'id':<8} {'sev':<4} {'status':<13} {'detected (' + zone + ')':<25} "
          f"{'SLA ack':<9} {'SLA resolve':<11} title")
    for item in items:
        ack = targets.at[item["id"], "acknowledge_sla"] or "-"
        resolve = targets.at[item["id"], "resolve_sla"] or "-"
        print(safe(f"{item['id']:<8} {item['severity'] or '-':<4} {item['status']:<13} "
                   f"{_local(item['detected_at'], zone):<25} {ack:<9} {resolve:<11} "
                   f"{item['title']}"))


def metrics_items(result: pd.DataFrame) -> list[dict[str, Any]]:
    """Return the per-severity metrics as JSON objects; a statistic without data is null."""
    items = []
    for record in result.to_dict("records"):
        items.append({key: _json_number(value) for key, value in record.items()})
    return items


def print_metrics(result: pd.DataFrame, since: dt.datetime | None) -> None:
    scope = f" since {since.isoformat()}" if since else ""
    print(f"Incident metrics{scope} (times in minutes; open incidents are not measured)")
    print(f"{'sev':<4} {'count':>5} {'open':>5} {'TTA med':>8} {'TTA p90':>8} {'TTC med':>8} "
          f"{'TTR med':>8} {'TTR p90':>8} {'SLA breaches':>13}")
    for record in result.to_dict("records"):
        minutes = [_minutes(record[key]) for key in ("tta_median_s", "tta_p90_s",
                                                     "ttc_median_s", "ttr_median_s",
                                                     "ttr_p90_s")]
        print(f"{record['severity']:<4} {record['count']:>5} {record['open']:>5} "
              + " ".join(f"{value:>8}" for value in minutes)
              + f" {record['sla_breaches']:>13}")


def safe(text: str) -> str:
    """Return ``text`` redacted, on one line, with control characters made visible."""
    lines = [line for line in str(text).splitlines() if line.strip()]
    flat = " / ".join([line.rstrip() for line in lines[:1]]
                      + [line.strip() for line in lines[1:]])
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", scrub(flat))


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _minutes(seconds: float) -> str:
    return "-" if seconds is None or math.isnan(seconds) else f"{seconds / 60:.1f}"


def _local(value: str | dt.datetime | None, zone: str) -> str:
    if value is None:
        return "-"
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(load_zone(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")

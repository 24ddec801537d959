"""Declared settings of ``[incidents]`` and ``[sla]`` in config.toml, and their checks."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from ..errors import ConfigError
from ..settings import Section, Setting
from .model import DEFAULT_SEVERITY_MAP, SEVERITIES

INCIDENTS_SECTION = Section("incidents", (
    Setting("owner", str, "SE4H", "The human owner a P0 or P1 incident is escalated to."),
    Setting("reopen_window_s", float, 3600.0, "A re-fire this soon after a resolve reopens "
            "the incident instead of opening a new one.", unit="seconds", minimum=0),
    Setting("flap_window_s", float, 1800.0, "Window in which fire/resolve changes of one "
            "alert count as flapping.", unit="seconds", minimum=1),
    Setting("flap_changes", int, 4, "Changes within the flap window shown as one flapping "
            "row with a count.", minimum=2),
    Setting("severity_labels", list, ["severity", "priority"], "Alert labels read for the "
            "severity, first present wins."),
    Setting("default_severity", str, "P2", "Severity of an alert whose labels map to none.",
            choices=SEVERITIES),
    Setting("severity_map", dict, {}, "Label values mapped to P0-P3, merged over the "
            "built-in map; a key 'source:value' applies to one adapter only."),
    Setting("max_body_bytes", int, 1_048_576, "Largest webhook body `serve` accepts.",
            unit="bytes", minimum=1024),
))

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
NEXT_SPRINT = "next-sprint"
MAX_TARGET_S = 10 * 366 * 86400

SLA_SECTION = Section("sla", (
    Setting("p0_acknowledge", str, "5m", "Time to acknowledge a P0 ('immediate').",
            unit="duration such as 5m, 1h, 2d, or next-sprint"),
    Setting("p1_acknowledge", str, "1h", "Time to acknowledge a P1.", unit="duration"),
    Setting("p2_acknowledge", str, "4h", "Time to acknowledge a P2.", unit="duration"),
    Setting("p3_acknowledge", str, NEXT_SPRINT, "Time to acknowledge a P3.", unit="duration"),
    Setting("p0_resolve", str, "", "Time to resolve a P0; empty means no target.",
            unit="duration"),
    Setting("p1_resolve", str, "", "Time to resolve a P1; empty means no target.",
            unit="duration"),
    Setting("p2_resolve", str, "", "Time to resolve a P2; empty means no target.",
            unit="duration"),
    Setting("p3_resolve", str, "", "Time to resolve a P3; empty means no target.",
            unit="duration"),
    Setting("sprint_days", int, 14, "Sprint length, for the next-sprint target.", unit="days",
            minimum=1),
    Setting("sprint_start", str, "2026-01-05", "The first day of any sprint (ISO date); "
            "sprints repeat from it.", unit="date"),
    Setting("at_risk_fraction", float, 0.75, "Share of a target's time after which an "
            "unmet target shows as at risk.", minimum=0),
))


def parse_duration(text: str, where: str) -> float | None:
    """Return seconds for '5m', '1h', '2d'; None for '' (no target) or 'next-sprint'."""
    if text.strip() in ("", NEXT_SPRINT):
        return None
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(f"{where}: duration '{text}' is invalid; write a number with s, m, "
                          f"h, d or w (such as 30m or 4h), or next-sprint")
    seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    if not 0 < seconds <= MAX_TARGET_S:
        raise ConfigError(f"{where}: duration '{text}' is out of range; a target is more than "
                          f"0 and at most 10 years")
    return seconds


def validate_incidents(values: dict[str, Any], where: str) -> dict[str, Any]:
    """Check the severity map and return the settings with the built-in map merged in."""
    merged = dict(DEFAULT_SEVERITY_MAP)
    for key, severity in values["severity_map"].items():
        if severity not in SEVERITIES:
            raise ConfigError(f"{where}: incidents.severity_map.{key} = {severity!r} is "
                              f"invalid; expected one of {', '.join(SEVERITIES)}")
        merged[str(key).strip().lower()] = severity
    return {**values, "severity_map": merged}


def validate_sla(values: dict[str, Any], where: str) -> dict[str, Any]:
    for key, value in values.items():
        if key.endswith(("_acknowledge", "_resolve")):
            parse_duration(value, f"{where}: sla.{key}")
    try:
        dt.date.fromisoformat(values["sprint_start"])
    except ValueError:
        raise ConfigError(f"{where}: sla.sprint_start '{values['sprint_start']}' is not an "
                          f"ISO date; write it like 2026-01-05") from None
    if not 0 < values["at_risk_fraction"] < 1:
        raise ConfigError(f"{where}: sla.at_risk_fraction = {values['at_risk_fraction']} is "
                          f"invalid; it must be between 0 and 1")
    return values

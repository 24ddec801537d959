"""The ``[heartbeat]`` section of config.toml: endpoints to probe, ages, where results go."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..settings import Section, Setting

HEARTBEAT_SECTION = Section("heartbeat", (
    Setting("cron", str, "*/15 * * * *", "Schedule `tinysdlc-nb init` gives the heartbeat."),
    Setting("endpoints", list, [], "Health checks: tables with name, url, and optionally "
            "expect_status (200), timeout_s (5), max_latency_ms and contains."),
    Setting("signoff_max_age_h", float, 24.0, "A gate waiting for sign-off longer than this "
            "needs a person.", unit="hours", minimum=0),
    Setting("recipient", str, "", "Person the heartbeat's findings are addressed to; "
            "default: incidents.owner."),
    Setting("summarize", bool, True, "Ask the DevOps agent for a short summary when "
            "something changed since the last beat."),
    Setting("agent", str, "devops", "Agent of the team settings that writes the summary."),
    Setting("instructions_file", str, "", "The DevOps agent's instructions file whose status "
            "block the heartbeat rewrites, e.g. AGENTS.md; empty: none."),
    Setting("stage", str, "", "Stage written in the status block; empty: derived from the "
            "gate records."),
))

_ENDPOINT_KEYS = {"name", "url", "expect_status", "timeout_s", "max_latency_ms", "contains"}


def validate_heartbeat(values: dict[str, Any], where: str) -> dict[str, Any]:
    """Check each endpoint table and fill in its defaults."""
    endpoints = []
    names: set[str] = set()
    for index, raw in enumerate(values["endpoints"], start=1):
        endpoint = _endpoint(raw, f"{where}: heartbeat.endpoints entry {index}")
        if endpoint["name"] in names:
            raise ConfigError(f"{where}: heartbeat endpoint name '{endpoint['name']}' is used "
                              f"twice; give each endpoint its own name")
        names.add(endpoint["name"])
        endpoints.append(endpoint)
    values["endpoints"] = endpoints
    values["agent"] = values["agent"].strip().lower()
    return values


def _endpoint(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table with name and url")
    unknown = sorted(set(raw) - _ENDPOINT_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}'; known keys: "
                          f"{', '.join(sorted(_ENDPOINT_KEYS))}")
    url = raw.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: url = {url!r} is invalid; write an http:// or https:// "
                          f"address")
    name = raw.get("name") or url
    expect = raw.get("expect_status", 200)
    timeout = raw.get("timeout_s", 5.0)
    latency = raw.get("max_latency_ms", 0)
    if not isinstance(expect, int) or isinstance(expect, bool) or not 100 <= expect <= 599:
        raise ConfigError(f"{where}: expect_status = {expect!r} is invalid; write an HTTP "
                          f"status between 100 and 599")
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 300:
        raise ConfigError(f"{where}: timeout_s = {timeout!r} is invalid; write a number of "
                          f"seconds above 0 and at most 300")
    if not isinstance(latency, int | float) or isinstance(latency, bool) or latency < 0:
        raise ConfigError(f"{where}: max_latency_ms = {latency!r} is invalid; write 0 (no "
                          f"limit) or a number of milliseconds")
    contains = raw.get("contains")
    if contains is not None and not isinstance(contains, str):
        raise ConfigError(f"{where}: contains = {contains!r} is invalid; write a string")
    return {"name": str(name), "url": url, "expect_status": expect, "timeout_s": float(timeout),
            "max_latency_ms": float(latency), "contains": contains}

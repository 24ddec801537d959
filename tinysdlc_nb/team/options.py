"""The ``[team]`` section of config.toml: queue retries, leases and the worker's pace."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..settings import Section, Setting
from .model import DEFAULT_MAX_MESSAGES

TEAM_SECTION = Section("team", (
    Setting("default_agent", str, "devops", "Agent that receives a person's message written "
            "without @agent or @team."),
    Setting("max_conversation_messages", int, DEFAULT_MAX_MESSAGES, "Messages one "
            "conversation may carry; further hand-offs are reported back, not sent.",
            minimum=1),
    Setting("max_attempts", int, 5, "Attempts per message before it is marked dead.",
            minimum=1),
    Setting("backoff_base_s", float, 2.0, "Wait before the first retry; it doubles on each "
            "further retry.", unit="seconds", minimum=0),
    Setting("backoff_max_s", float, 300.0, "Longest wait between two retries.",
            unit="seconds", minimum=0),
    Setting("lease_s", float, 60.0, "How long a crashed worker's message waits before another "
            "worker takes it again; a live worker renews the lease every third of it.",
            unit="seconds", minimum=0.1),
    Setting("poll_interval_s", float, 0.005, "Pause of an idle worker between two looks "
            "at the queue.", unit="seconds", minimum=0.001),
    Setting("concurrency", int, 4, "Messages one worker process handles at once (each "
            "agent still gets its messages one at a time, in order).", minimum=1),
    Setting("files_dir", str, "", "File exchange folder for [send_file: PATH]; default: "
            "files/ under the home folder."),
))


def validate_team(values: dict[str, Any], where: str) -> dict[str, Any]:
    """Reject combinations the declarations alone cannot catch."""
    if values["backoff_max_s"] < values["backoff_base_s"]:
        raise ConfigError(f"{where}: team.backoff_max_s = {values['backoff_max_s']:g} is "
                          f"below team.backoff_base_s = {values['backoff_base_s']:g}; raise "
                          f"backoff_max_s")
    values["default_agent"] = values["default_agent"].strip().lower()
    return values

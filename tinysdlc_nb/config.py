"""Project configuration: ``.tinysdlc/config.toml`` validated against declared settings.

Secrets never live here: a key whose name looks secret is rejected, and the store URL,
API keys and tokens come only from environment variables.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .channels.settings import resolve_channels
from .errors import ConfigError
from .gates.model import Tier
from .heartbeat.settings import HEARTBEAT_SECTION, validate_heartbeat
from .incidents.settings import INCIDENTS_SECTION, SLA_SECTION, validate_incidents, validate_sla
from .schedules.settings import SCHEDULER_SECTION, validate_scheduler
from .settings import Section, Setting
from .team.options import TEAM_SECTION, validate_team

HOME_ENV = "TINYSDLC_NB_HOME"
DATABASE_URL_ENV = "TINYSDLC_NB_DATABASE_URL"
CONFIG_NAME = "config.toml"

# The SE4A agent ids of the TinySDLC role set plus its router. Agents never sign off, so a
# sign-off whose signer matches one of these (or an id configured in [gate].agents) is rejected.
DEFAULT_AGENT_IDS = ("researcher", "pm", "pjm", "architect", "coder", "reviewer", "tester",
                     "devops", "assistant")

PROJECT_SECTION = Section("project", (
    Setting("name", str, "", "Project name recorded with every run; default: the folder name."),
    Setting("tier", str, "lite", "TinySDLC tier that sets thresholds and required sign-offs.",
            choices=[tier.value for tier in Tier]),
    Setting("environment", str, "production", "Target environment named in gate reports."),
    Setting("display_zone", str, "UTC", "Time zone used when times are shown to people."),
))

GATE_SECTION = Section("gate", (
    Setting("check_timeout_s", float, 900.0, "Time limit of each check's tool.", unit="seconds",
            minimum=1),
    Setting("cell_timeout_s", float, 1800.0, "Time limit of each notebook cell.", unit="seconds",
            minimum=1),
    Setting("max_workers", int, 4, "Checks run at the same time.", minimum=1),
    Setting("agents", list, [], "Extra agent ids that may never sign off (besides the "
            "TinySDLC role ids and the agents of the team settings)."),
    Setting("checks", list, [], "Checks to run; empty means every check the gate lists."),
))

_SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_?key|private_?key|credential)",
                         re.IGNORECASE)


@dataclass(frozen=True)
class Waiver:
    """A human's acceptance of a failing item, with reason, owner and expiry date."""

    item: str
    reason: str
    owner: str
    expires: dt.date

    def active(self, today: dt.date) -> bool:
        return today <= self.expires


def _default_incidents() -> dict[str, Any]:
    return validate_incidents(INCIDENTS_SECTION.defaults(), "defaults")


def _default_sla() -> dict[str, Any]:
    return SLA_SECTION.defaults()


def _default_team() -> dict[str, Any]:
    return TEAM_SECTION.defaults()


def _default_scheduler() -> dict[str, Any]:
    return SCHEDULER_SECTION.defaults()


def _default_heartbeat() -> dict[str, Any]:
    return validate_heartbeat(HEARTBEAT_SECTION.defaults(), "defaults")


def _default_channels() -> dict[str, Any]:
    return resolve_channels({}, "defaults")


@dataclass
class Config:
    """The validated configuration of one project."""

    project_dir: Path
    home: Path
    project: dict[str, Any]
    gate: dict[str, Any]
    checks: dict[str, dict[str, Any]]
    waivers: list[Waiver] = field(default_factory=list)
    source: Path | None = None
    incidents: dict[str, Any] = field(default_factory=_default_incidents)
    sla: dict[str, Any] = field(default_factory=_default_sla)
    team: dict[str, Any] = field(default_factory=_default_team)
    scheduler: dict[str, Any] = field(default_factory=_default_scheduler)
    heartbeat: dict[str, Any] = field(default_factory=_default_heartbeat)
    channels: dict[str, Any] = field(default_factory=_default_channels)

    @property
    def name(self) -> str:
        from .project import project_name

        return (self.project["name"] or project_name(self.project_dir)
                or self.project_dir.resolve().name)

    @property
    def tier(self) -> Tier:
        return Tier(self.project["tier"])

    @property
    def database_url(self) -> str:
        return os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{self.home / 'state.db'}"

    @property
    def files_dir(self) -> Path:
        """The file exchange folder of ``[send_file: PATH]`` and evidence files."""
        configured = self.team["files_dir"]
        if not configured:
            return self.home / "files"
        path = Path(configured).expanduser()
        return path if path.is_absolute() else self.project_dir / path

    def agent_ids(self) -> set[str]:
        return {agent.lower() for agent in (*DEFAULT_AGENT_IDS, *self.gate["agents"])}


def home_dir(project_dir: Path) -> Path:
    """Return the folder for state, reports and files: ``$TINYSDLC_NB_HOME`` or ``.tinysdlc``."""
    override = os.environ.get(HOME_ENV)
    return Path(override).expanduser() if override else project_dir / ".tinysdlc"


def load_config(project_dir: Path | str) -> Config:
    """Read and validate the project's config.toml; a missing file means all defaults."""
    project_dir = Path(project_dir)
    if not project_dir.is_dir():
        problem = "is not a folder" if project_dir.exists() else "does not exist"
        raise ConfigError(f"project folder '{project_dir}' {problem}; pass the project's "
                          f"folder")

    home = home_dir(project_dir)
    path = home / CONFIG_NAME
    raw = _read_toml(path) if path.is_file() else {}
    where = str(path)
    _reject_secret_keys(raw, where)

    known = {"project", "gate", "checks", "waivers", "incidents", "sla", "team", "scheduler",
             "heartbeat", "channels"}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{where}: unknown section '{key}'; known sections: "
                              f"{', '.join(sorted(known))}")

    config = Config(
        project_dir=project_dir,
        home=home,
        project=PROJECT_SECTION.resolve(raw.get("project"), where),
        gate=GATE_SECTION.resolve(raw.get("gate"), where),
        checks=_resolve_checks(raw.get("checks", {}), where),
        waivers=[_parse_waiver(entry, where) for entry in raw.get("waivers", [])],
        source=path if path.is_file() else None,
        incidents=validate_incidents(INCIDENTS_SECTION.resolve(raw.get("incidents"), where),
                                     where),
        sla=validate_sla(SLA_SECTION.resolve(raw.get("sla"), where), where),
        team=validate_team(TEAM_SECTION.resolve(raw.get("team"), where), where),
        scheduler=validate_scheduler(SCHEDULER_SECTION.resolve(raw.get("scheduler"), where),
                                     where),
        heartbeat=validate_heartbeat(HEARTBEAT_SECTION.resolve(raw.get("heartbeat"), where),
                                     where),
        channels=resolve_channels(raw.get("channels"), where),
    )
    _check_waivers(config, where)
    _check_incident_owner(config, where)
    return config


def _check_incident_owner(config: Config, where: str) -> None:
    from .approvals import is_agent_name

    owner = config.incidents["owner"].strip()
    if not owner:
        raise ConfigError(f"{where}: incidents.owner is empty; name the person (or role) "
                          f"P0 and P1 incidents escalate to")
    if is_agent_name(owner, config.agent_ids()):
        raise ConfigError(f"{where}: incidents.owner '{owner}' is an agent; escalations go "
                          f"to a person")


def _resolve_checks(raw: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    from .gates.checks import CHECKS

    unknown = sorted(set(raw) - set(CHECKS))
    if unknown:
        raise ConfigError(f"{where}: unknown check '{unknown[0]}' under [checks]; known checks: "
                          f"{', '.join(CHECKS)}")
    resolved = {}
    for name, module in CHECKS.items():
        resolved[name] = Section(f"checks.{name}", module.SETTINGS).resolve(raw.get(name), where)
        validate = getattr(module, "validate", None)
        if validate is not None:
            try:
                validate(resolved[name])
            except ConfigError as error:
                raise ConfigError(f"{where}: {error}") from error
    return resolved


def _check_waivers(config: Config, where: str) -> None:
    """Reject waivers that name no waivable item or are owned by an agent.

    Sign-offs and "G3 confirmed" are people's decisions, so no config line can stand in
    for them; checks and evidence items can be waived.
    """
    from .approvals import EVIDENCE_ITEMS, is_agent_name
    from .gates.checks import CHECKS

    waivable = [*CHECKS, *EVIDENCE_ITEMS]
    for waiver in config.waivers:
        if waiver.item not in waivable:
            raise ConfigError(f"{where}: waiver item '{waiver.item}' is invalid; sign-offs and "
                              f"g3_confirmed cannot be waived; waivable items: "
                              f"{', '.join(waivable)}")
        if is_agent_name(waiver.owner, config.agent_ids()):
            raise ConfigError(f"{where}: waiver for '{waiver.item}' is owned by "
                              f"'{waiver.owner}', an agent; a waiver's owner must be a person")


def _parse_waiver(entry: Any, where: str) -> Waiver:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: each [[waivers]] entry must be a table with item, reason, "
                          f"owner and expires")
    missing = [key for key in ("item", "reason", "owner", "expires") if not entry.get(key)]
    if missing:
        raise ConfigError(f"{where}: waiver for '{entry.get('item', '?')}' is missing "
                          f"{', '.join(missing)}; a waiver needs item, reason, owner and expires")
    expires = entry["expires"]
    if isinstance(expires, dt.datetime):
        expires = expires.date()
    if not isinstance(expires, dt.date):
        raise ConfigError(f"{where}: waiver for '{entry['item']}' has expires = {expires!r}; "
                          f"write a TOML date such as 2027-01-31")
    return Waiver(str(entry["item"]), str(entry["reason"]), str(entry["owner"]), expires)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: invalid TOML ({error}); fix the file or remove it to use "
                          f"the defaults") from error


def _reject_secret_keys(raw: Any, where: str, prefix: str = "") -> None:
    if not isinstance(raw, dict):
        return
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key in ("allow", "waivers", "severity_map"):
            continue  # package names and waiver reasons, not settings
        if key.endswith("_env"):
            continue  # the name of the variable that contains a secret, not the secret
        if _SECRET_KEY.search(key) and isinstance(value, str) and value:
            raise ConfigError(f"{where}: '{dotted}' looks like a secret; secrets are read only "
                              f"from environment variables, remove it from the file")
        _reject_secret_keys(value, where, f"{dotted}.")

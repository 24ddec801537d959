"""Team settings in TinySDLC's ``settings.json`` schema: ``agents`` and ``teams``.

The file is found through ``--settings``, then ``TINYSDLC_NB_SETTINGS``, then
``<home>/settings.json`` (``.tinysdlc/settings.json``). Keys this tool does not use
(``workspace``, ``channels``, ``models``, ``working_directory``...) are accepted and
ignored, so an existing TinySDLC file can be pointed at directly.

Every error names the JSON path of the bad key, such as ``teams.dev.leader_agent``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

SETTINGS_ENV = "TINYSDLC_NB_SETTINGS"
SETTINGS_NAME = "settings.json"

# Providers this tool ships, and providers TinySDLC knows that it does not run. An agent of
# the second kind loads, so a mixed file still works, but its messages go dead with the
# reason. A program may register more providers (see ``team.agents.register_provider``).
RUNNABLE_PROVIDERS = ("anthropic", "protocol")
FOREIGN_PROVIDERS = ("openai", "ollama")

# Model aliases TinySDLC writes in settings.json, mapped to Anthropic model ids.
CLAUDE_MODEL_ALIASES = {"sonnet": "claude-sonnet-4-5", "opus": "claude-opus-4-6",
                        "haiku": "claude-haiku-4-5"}

# TinySDLC's default: an agent answering a person may hand off once.
DEFAULT_DELEGATION_DEPTH = 1
MAX_DELEGATION_DEPTH = 20
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
# Sender names the queue uses for people and for the tool itself.
RESERVED_IDS = ("user", "tinysdlc-nb")


@dataclass(frozen=True)
class AgentSpec:
    """One agent of ``agents.<id>``."""

    id: str
    name: str
    provider: str
    model: str = ""
    sdlc_role: str | None = None
    system_prompt: str | None = None
    prompt_file: Path | None = None
    max_delegation_depth: int = DEFAULT_DELEGATION_DEPTH

    @property
    def role(self) -> str:
        """The SDLC role whose prompt and patterns apply: ``sdlc_role``, else the id."""
        return self.sdlc_role or self.id

    def model_id(self) -> str:
        return CLAUDE_MODEL_ALIASES.get(self.model, self.model)


@dataclass(frozen=True)
class TeamSpec:
    """One team of ``teams.<id>``: its members and the leader that receives ``@team``."""

    id: str
    name: str
    agents: tuple[str, ...]
    leader_agent: str
    description: str = ""


@dataclass(frozen=True)
class TeamSettings:
    """The validated agents and teams of one settings file."""

    agents: dict[str, AgentSpec]
    teams: dict[str, TeamSpec]
    source: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def team_of(self, agent_id: str) -> TeamSpec | None:
        """Return the first team that lists ``agent_id``, in file order, as TinySDLC does."""
        for team in self.teams.values():
            if agent_id in team.agents:
                return team
        return None

    def known_ids(self) -> list[str]:
        return sorted([*self.agents, *self.teams])


def settings_path(home: Path, explicit: str | Path | None = None) -> Path:
    """Return the settings file to read: ``explicit``, ``$TINYSDLC_NB_SETTINGS`` or the home's."""
    if explicit:
        return Path(explicit).expanduser()
    from_env = os.environ.get(SETTINGS_ENV)
    if from_env:
        return Path(from_env).expanduser()
    return home / SETTINGS_NAME


def load_team_settings(home: Path, explicit: str | Path | None = None) -> TeamSettings:
    """Read and validate the team settings; a missing file is an error that names the fix."""
    path = settings_path(home, explicit)
    if not path.is_file():
        how = "pass --settings FILE, set TINYSDLC_NB_SETTINGS, or run `tinysdlc-nb init`"
        raise ConfigError(f"team settings file {path} not found; {how}")

    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: invalid JSON ({error}); fix the file") from error
    return parse_team_settings(raw, path)


def parse_team_settings(raw: Any, source: Path | None = None) -> TeamSettings:
    """Validate a decoded settings document; raise ConfigError naming the bad key's path."""
    where = str(source) if source else "settings"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the top level must be a JSON object with 'agents' and "
                          f"'teams'")

    agents_raw = _table(raw.get("agents", {}), "agents", where)
    teams_raw = _table(raw.get("teams", {}), "teams", where)
    if not agents_raw:
        raise ConfigError(f"{where}: agents is empty; define at least one agent under "
                          f"\"agents\"")

    base = source.parent if source else Path.cwd()
    _reject_case_duplicates(agents_raw, "agents", where)
    _reject_case_duplicates(teams_raw, "teams", where)
    agents = {}
    for agent_id, value in agents_raw.items():
        agents[agent_id.lower()] = _agent(agent_id, value, base, where)
    teams = {}
    for team_id, value in teams_raw.items():
        teams[team_id.lower()] = _team(team_id, value, agents, where)

    for shared in sorted(set(agents) & set(teams)):
        raise ConfigError(f"{where}: teams.{shared}: id '{shared}' is also an agent id; agent "
                          f"and team ids share the @ namespace, so rename one of them")
    return TeamSettings(agents=agents, teams=teams, source=source, raw=raw)


def _reject_case_duplicates(table: dict[str, Any], key: str, where: str) -> None:
    """Reject two ids that differ only in case, since mentions ignore case."""
    seen: dict[str, str] = {}
    for name in table:
        if name.lower() in seen:
            raise ConfigError(f"{where}: {key}.{name} and {key}.{seen[name.lower()]} are the "
                              f"same id, because ids ignore case; rename one of them")
        seen[name.lower()] = name


def _table(value: Any, key: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key} must be an object keyed by id, not "
                          f"{type(value).__name__}")
    return value


def _check_id(raw_id: str, path: str, where: str) -> None:
    if not _ID.fullmatch(raw_id.lower()):
        raise ConfigError(f"{where}: {path}: id '{raw_id}' is invalid; use letters, digits, "
                          f"'-', '_' or '.', starting with a letter or digit (at most 64)")
    if raw_id.lower() in RESERVED_IDS:
        raise ConfigError(f"{where}: {path}: id '{raw_id}' is reserved for "
                          f"{'people' if raw_id.lower() == 'user' else 'the tool itself'}; "
                          f"choose another id")


def _agent(agent_id: str, value: Any, base: Path, where: str) -> AgentSpec:
    path = f"agents.{agent_id}"
    _check_id(agent_id, path, where)
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {path} must be an object with name and provider")

    from .agents import provider_names

    provider = _string(value, "provider", path, where, required=True).lower()
    if provider not in (*provider_names(), *FOREIGN_PROVIDERS):
        raise ConfigError(f"{where}: {path}.provider '{provider}' is unknown; use one of "
                          f"{', '.join(provider_names())}")
    model = _string(value, "model", path, where)
    if provider == "anthropic" and not model:
        raise ConfigError(f"{where}: {path}.model is missing; an anthropic agent needs a "
                          f"model such as \"sonnet\" or \"claude-sonnet-4-5\"")

    depth = value.get("max_delegation_depth", DEFAULT_DELEGATION_DEPTH)
    if isinstance(depth, bool) or not isinstance(depth, int) \
            or not 0 <= depth <= MAX_DELEGATION_DEPTH:
        raise ConfigError(f"{where}: {path}.max_delegation_depth = {depth!r} is invalid; "
                          f"expected an integer from 0 to {MAX_DELEGATION_DEPTH}")

    prompt_file = _string(value, "prompt_file", path, where)
    resolved_prompt = None
    if prompt_file:
        resolved_prompt = Path(prompt_file).expanduser()
        if not resolved_prompt.is_absolute():
            resolved_prompt = base / resolved_prompt
        if not resolved_prompt.is_file():
            raise ConfigError(f"{where}: {path}.prompt_file '{prompt_file}' not found "
                              f"(looked at {resolved_prompt}); fix the path or remove the key")

    return AgentSpec(
        id=agent_id.lower(),
        name=_string(value, "name", path, where) or agent_id,
        provider=provider,
        model=model,
        sdlc_role=(_string(value, "sdlc_role", path, where) or None),
        system_prompt=_string(value, "system_prompt", path, where) or None,
        prompt_file=resolved_prompt,
        max_delegation_depth=depth,
    )


def _team(team_id: str, value: Any, agents: dict[str, AgentSpec], where: str) -> TeamSpec:
    path = f"teams.{team_id}"
    _check_id(team_id, path, where)
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {path} must be an object with name, agents and "
                          f"leader_agent")

    members = value.get("agents")
    if not isinstance(members, list) or not members \
            or not all(isinstance(member, str) for member in members):
        raise ConfigError(f"{where}: {path}.agents must be a non-empty list of agent ids")
    members = [member.lower() for member in members]
    for index, member in enumerate(members):
        if member not in agents:
            raise ConfigError(f"{where}: {path}.agents[{index}] '{member}' is not an agent; "
                              f"define agents.{member} or remove it from the team")

    if not value.get("leader_agent"):
        raise ConfigError(f"{where}: {path}.leader_agent is missing; name the member that "
                          f"receives @{team_id} messages, one of {', '.join(members)}")
    leader = _string(value, "leader_agent", path, where, required=True).lower()
    if leader not in members:
        raise ConfigError(f"{where}: {path}.leader_agent '{leader}' is not in the team; add "
                          f"it to {path}.agents or pick one of {', '.join(members)}")

    return TeamSpec(id=team_id.lower(), name=_string(value, "name", path, where) or team_id,
                    agents=tuple(dict.fromkeys(members)), leader_agent=leader,
                    description=_string(value, "description", path, where))


def _string(value: dict[str, Any], key: str, path: str, where: str,
            required: bool = False) -> str:
    item = value.get(key)
    if item is None or item == "":
        if required:
            raise ConfigError(f"{where}: {path}.{key} is missing")
        return ""
    if not isinstance(item, str):
        raise ConfigError(f"{where}: {path}.{key} = {item!r} is invalid; expected a string")
    return item

"""System prompts of model-backed agents: the agent's own prompt plus the team's hand-off rules.

The agent's prompt is, in order of precedence, ``system_prompt`` from settings.json, the
text of ``prompt_file``, or the role prompt shipped with the package as
``tinysdlc_nb/team/roles/<role>.md``. A fixed block follows it that lists the teammates and
explains ``[@id: message]`` hand-offs, so every agent of the team follows the same rules.
"""

from __future__ import annotations

import logging
import re
from importlib import resources
from importlib.resources.abc import Traversable

from ..errors import ConfigError
from .settings import AgentSpec, TeamSettings

log = logging.getLogger(__name__)

# The folder of the shipped role prompts, one ``<role>.md`` per SDLC role.
ROLE_PROMPTS: Traversable = resources.files(__package__).joinpath("roles")
_ROLE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def system_prompt(spec: AgentSpec, settings: TeamSettings | None = None) -> str:
    """Return the system prompt of ``spec``: its own prompt, then the team's hand-off rules.

    ``settings`` provides the teammates listed in the rules; without it the list is empty.
    Raise ConfigError naming the settings key to fix when no prompt can be read.
    """
    own = own_prompt(spec).strip()

    rules = team_rules(spec, settings)
    return f"{own}\n\n{rules}"


def own_prompt(spec: AgentSpec) -> str:
    """Return the agent's prompt: ``system_prompt``, else ``prompt_file``, else its role's."""
    if spec.system_prompt:
        return spec.system_prompt

    if spec.prompt_file is not None:
        try:
            return spec.prompt_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"agents.{spec.id}.prompt_file '{spec.prompt_file}' could not be "
                              f"read ({type(error).__name__}: {error}); fix the file or remove "
                              f"the key") from error

    return role_prompt(spec)


def role_prompt(spec: AgentSpec) -> str:
    """Return the shipped prompt of ``spec.role``; raise ConfigError when none is shipped."""
    role = spec.role.strip().lower()
    source = ROLE_PROMPTS.joinpath(f"{role}.md") if _ROLE.match(role) else None
    if source is None or not source.is_file():
        shipped = ", ".join(shipped_roles()) or "none"
        raise ConfigError(f"agents.{spec.id}: no prompt is shipped for role '{spec.role}' "
                          f"(shipped roles: {shipped}); set agents.{spec.id}.system_prompt or "
                          f"prompt_file, or set agents.{spec.id}.sdlc_role to a shipped role")

    log.debug("agent %s uses the shipped prompt of role %s", spec.id, role)
    return source.read_text(encoding="utf-8")


def shipped_roles() -> list[str]:
    """Return the roles that have a shipped prompt, sorted."""
    if not ROLE_PROMPTS.is_dir():
        return []

    return sorted(item.name.removesuffix(".md") for item in ROLE_PROMPTS.iterdir()
                  if item.name.endswith(".md") and item.is_file())


def team_rules(spec: AgentSpec, settings: TeamSettings | None) -> str:
    """Return the fixed block that names the teammates and the hand-off format."""
    lines = ["## Working in this team", "",
             f"You are @{spec.id} ({spec.name}, role {spec.role}).", ""]

    teammates = [agent for agent in (settings.agents.values() if settings else ())
                 if agent.id != spec.id]
    lines.append("Teammates you can mention:")
    if not teammates:
        lines.append("- none")
    for agent in teammates:
        lines.append(f"- @{agent.id}: {agent.name}, role {agent.role}")

    teams = list(settings.teams.values()) if settings else []
    if teams:
        lines += ["", "Teams (a mention of a team reaches its leader):"]
        for team in teams:
            lines.append(f"- @{team.id}: {team.name}, leader @{team.leader_agent}")

    lines += [
        "",
        "How to hand off:",
        "- Write [@id: message] to give a teammate work, or [@id1,id2: message] to give "
        "several the same work.",
        "- Every teammate you mention also receives the text you write outside the brackets.",
        "- Mention a teammate only when you need something from them. A reply without "
        "mentions ends your branch, and the conversation's answer collects it.",
        "- To share a file, put it in the team's file exchange folder and write "
        "[send_file: path], with the path relative to that folder.",
        "- You never approve a gate. People sign off on G3 and G4 themselves, and a message "
        "that says APPROVED changes nothing.",
    ]
    return "\n".join(lines)

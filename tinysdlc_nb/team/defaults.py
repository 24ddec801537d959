"""The team settings ``tinysdlc-nb init`` writes: every SDLC agent role and four teams.

devops leads a release team with the roles it works with most, and since any agent id
can be mentioned across teams, it reaches every role.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .settings import SETTINGS_NAME, parse_team_settings

ROLES = {
    "researcher": "Researcher",
    "pm": "Product Manager",
    "pjm": "Project Manager",
    "architect": "Solution Architect",
    "coder": "Developer",
    "reviewer": "Code Reviewer",
    "tester": "QA Tester",
    "devops": "DevOps Engineer",
}

TEAMS = {
    "release": ("Release Team", ["devops", "reviewer", "tester", "coder", "pjm"], "devops",
                "Deploy and operate: G3 hand-over, G4, incidents"),
    "planning": ("Planning Team", ["researcher", "pm", "pjm", "architect"], "pm",
                 "Foundation and planning"),
    "dev": ("Development Team", ["coder", "reviewer"], "coder", "Build and review"),
    "qa": ("QA Team", ["tester", "reviewer"], "tester", "Quality assurance up to G3"),
}


def default_settings(provider: str = "protocol", model: str = "sonnet") -> dict[str, Any]:
    """Return the default settings document for ``provider`` (protocol needs no API key)."""
    agents = {}
    for role, name in ROLES.items():
        agent: dict[str, Any] = {"name": name, "provider": provider, "sdlc_role": role}
        if provider == "anthropic":
            agent["model"] = model
        # devops hands off, and its teammates may answer it with one more hand-off.
        agent["max_delegation_depth"] = 2 if role == "devops" else 1
        agents[role] = agent

    teams = {team_id: {"name": name, "agents": members, "leader_agent": leader,
                       "description": description}
             for team_id, (name, members, leader, description) in TEAMS.items()}
    return {"agents": agents, "teams": teams}


def write_default_settings(home: Path, *, provider: str = "protocol", force: bool = False) -> Path:
    """Write ``<home>/settings.json``; an existing file is kept unless ``force`` is set."""
    path = home / SETTINGS_NAME
    if path.exists() and not force:
        raise UsageError(f"{path} already exists; keep it, or pass --force to replace it "
                         f"with the default team")

    document = default_settings(provider)
    parse_team_settings(document, path)
    home.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
    return path

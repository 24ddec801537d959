"""Shared pieces of the team messaging tests: a scripted agent and a team document."""

from __future__ import annotations

import threading
from collections.abc import Callable

from tinysdlc_nb.team.agents import register_provider
from tinysdlc_nb.team.model import AgentContext, AgentReply, AgentRequest
from tinysdlc_nb.team.settings import AgentSpec


class ScriptedAgent:
    """An agent whose reply each test chooses: a function of the request, recorded in order."""

    batch_size = 4
    script: Callable[[AgentRequest], AgentReply | str] | None = None
    calls: list[AgentRequest] = []
    lock = threading.Lock()

    def __init__(self, _context: AgentContext):
        pass

    def reply(self, request: AgentRequest, spec: AgentSpec) -> AgentReply:
        with ScriptedAgent.lock:
            ScriptedAgent.calls.append(request)
        result = ScriptedAgent.script(request) if ScriptedAgent.script else f"ok from {spec.id}"
        return result if isinstance(result, AgentReply) else AgentReply(text=result)


register_provider("scripted", ScriptedAgent)



def team_document(provider: str = "scripted", depth: int = 3) -> dict:
    agents = {name: {"name": name.title(), "provider": provider, "sdlc_role": name,
                     "max_delegation_depth": depth}
              for name in ("devops", "reviewer", "tester", "coder", "pjm")}
    return {"agents": agents, "teams": {
        "release": {"name": "Release", "agents": ["devops", "reviewer", "tester", "coder", "pjm"],
                    "leader_agent": "devops"},
        "dev": {"name": "Dev", "agents": ["coder", "reviewer"], "leader_agent": "coder"},
    }}

"""Agent providers, registered by the name a settings file gives in ``provider``.

A provider is a factory that takes the ``AgentContext`` and returns an object with
``reply(request, spec) -> AgentReply``. The worker builds one agent per provider and
reuses it, so an agent must be safe to call from several threads at once.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Protocol

from ..model import AgentContext, AgentRejected, AgentReply, AgentRequest
from ..settings import AgentSpec


class Agent(Protocol):
    def reply(self, request: AgentRequest, spec: AgentSpec) -> AgentReply: ...


ProviderFactory = Callable[[AgentContext], Agent]
# The shipped providers, imported on first use so that reading settings needs no SDK.
_BUILTIN = {"anthropic": ("anthropic_agent", "AnthropicAgent"),
            "protocol": ("protocol", "ProtocolAgent")}
_PROVIDERS: dict[str, ProviderFactory] = {}
_LOCK = threading.Lock()


def register_provider(name: str, factory: ProviderFactory) -> None:
    """Make ``provider: name`` in settings.json build its agents with ``factory``."""
    with _LOCK:
        _PROVIDERS[name] = factory


def provider_names() -> list[str]:
    """Return every provider a settings file may name and this process can run."""
    return sorted({*_BUILTIN, *_PROVIDERS})


class AgentPool:
    """One agent per provider for a worker, built on first use."""

    def __init__(self, context: AgentContext):
        self.context = context
        self._agents: dict[str, Agent] = {}
        self._lock = threading.Lock()

    def agent_for(self, spec: AgentSpec) -> Agent:
        with self._lock:
            if spec.provider not in self._agents:
                self._agents[spec.provider] = _factory(spec)(self.context)
            return self._agents[spec.provider]


def _factory(spec: AgentSpec) -> ProviderFactory:
    with _LOCK:
        if spec.provider in _PROVIDERS:
            return _PROVIDERS[spec.provider]
    if spec.provider not in _BUILTIN:
        raise AgentRejected(
            f"agent '{spec.id}' uses provider '{spec.provider}', which tinysdlc-nb does not "
            f"run; set agents.{spec.id}.provider to one of {', '.join(provider_names())}")

    module_name, class_name = _BUILTIN[spec.provider]
    module = importlib.import_module(f"{__name__}.{module_name}")
    factory = getattr(module, class_name)
    with _LOCK:
        return _PROVIDERS.setdefault(spec.provider, factory)

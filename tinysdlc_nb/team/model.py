"""The values team messaging passes around: routing decisions, agent requests and replies."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..errors import TinySDLCError

# The sender name of messages a person writes (CLI, notebook form).
HUMAN = "user"
# TinySDLC's loop guard: a conversation carries at most this many messages.
DEFAULT_MAX_MESSAGES = 50


class DropReason(StrEnum):
    """The reason a mention was not delivered; the detail sentence explains it."""

    UNKNOWN = "unknown_id"
    SELF = "self"
    CIRCULAR = "circular"
    DEPTH = "over_depth"
    CAP = "over_message_cap"
    UNTERMINATED = "unterminated"
    EMPTY = "empty"
    FILE_REFUSED = "file_refused"


@dataclass(frozen=True)
class Delivery:
    """One message to send: the target agent, the part directed to it, and the full text."""

    to: str
    directed: str
    message: str
    mentions: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"to": self.to, "directed": self.directed, "message": self.message}


@dataclass(frozen=True)
class Dropped:
    """A mention that was not delivered, with the reason reported back to its sender."""

    mention: str
    reason: DropReason
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"mention": self.mention, "reason": str(self.reason), "detail": self.detail}


@dataclass(frozen=True)
class RouteDecision:
    """The routing of one text: deliveries, dropped mentions and the shared context."""

    deliveries: tuple[Delivery, ...]
    dropped: tuple[Dropped, ...]
    shared_context: str

    def as_json(self) -> dict[str, Any]:
        return {"deliveries": [delivery.as_json() for delivery in self.deliveries],
                "dropped": [dropped.as_json() for dropped in self.dropped],
                "shared_context": self.shared_context}


@dataclass(frozen=True)
class RouteContext:
    """Where in a conversation the text being routed was written.

    ``depth`` is the depth of the message its sender is answering (0 for a person's
    message); a hand-off gets ``depth + 1``. ``hops`` are the (from, to) hand-offs on the
    branch so far, and ``messages_used`` counts the conversation's messages.
    """

    depth: int = 0
    hops: tuple[tuple[str, str], ...] = ()
    messages_used: int = 0
    max_messages: int = DEFAULT_MAX_MESSAGES


@dataclass(frozen=True)
class AgentRequest:
    """One delivery handed to an agent."""

    agent_id: str
    sender: str
    message: str
    conversation_id: int
    message_id: int
    attempt: int
    depth: int = 0
    kind: str = "task"


@dataclass(frozen=True)
class AgentReply:
    """An agent's answer: free text that may contain ``[@id: ...]`` and ``[send_file: ...]``."""

    text: str
    notifications: tuple[tuple[str, str], ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentContext:
    """The data an agent may read besides its request: store, config and team settings."""

    store: Any
    config: Any
    settings: Any
    files_dir: Path


class AgentError(TinySDLCError, RuntimeError):
    """An agent failed on one message; the queue retries it after a backoff."""

    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class AgentUnusable(TinySDLCError, RuntimeError):
    """An agent cannot work at all (no key, key rejected): the worker stops and logs why.

    The message in hand goes back to the queue without spending an attempt.
    """


class AgentRejected(TinySDLCError, ValueError):
    """The message itself can never succeed (for example, its provider is not run here).

    The queue marks it dead at once with this reason instead of retrying.
    """

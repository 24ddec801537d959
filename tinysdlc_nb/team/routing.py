"""Routing of hand-off tags to agents: who gets which message, and which mentions are dropped.

Each tag id resolves to an agent of the sender's team, then to any agent, then to a team,
which means the team's leader. A target then gets one delivery however often it is
mentioned. Its message is the shared context followed by the parts directed to it.
A mention that cannot be delivered becomes a ``Dropped`` entry with its reason, so the
sender hears about every one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..errors import UsageError
from .model import (
    DEFAULT_MAX_MESSAGES,
    HUMAN,
    Delivery,
    Dropped,
    DropReason,
    RouteContext,
    RouteDecision,
)
from .settings import DEFAULT_DELEGATION_DEPTH, TeamSettings
from .tags import Tag, parse_tags, parse_user_address

logger = logging.getLogger(__name__)

# Error details list at most this many known ids, so a large team keeps messages short.
MAX_LISTED_IDS = 20
# The context of a person's message: depth 0, no hops, no messages used yet.
START_CONTEXT = RouteContext()


@dataclass
class _Target:
    """The mentions of one resolved agent collected while reading the tags."""

    agent: str
    offset: int
    bodies: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    last_tag: int = -1


def route(sender: str, text: str, settings: TeamSettings,
          context: RouteContext = START_CONTEXT) -> RouteDecision:
    """Decide the deliveries and dropped mentions of ``text`` written by ``sender``.

    ``sender`` is an agent id, or ``HUMAN`` for a person, whose hand-offs have no depth
    limit. ``context`` gives the place in the conversation where ``text`` was written.
    """
    parsed = parse_tags(text)
    dropped: list[tuple[int, Dropped]] = []
    for item in parsed.malformed:
        dropped.append((item.offset, Dropped(item.mention, item.reason, item.detail)))

    targets = _collect_targets(sender, parsed.tags, settings, dropped)

    deliveries = []
    depth = context.depth + 1
    for target in targets.values():
        limit_drop = _limit_drop(sender, target, depth, len(deliveries), settings, context)
        if limit_drop is not None:
            dropped.append((target.offset, limit_drop))
            continue
        directed = "\n\n".join(target.bodies)
        deliveries.append(Delivery(
            to=target.agent, directed=directed,
            message=compose_message(parsed.shared_context, sender, target.agent, directed),
            mentions=tuple(dict.fromkeys(target.mentions))))

    dropped.sort(key=lambda pair: pair[0])
    for _, item in dropped:
        logger.debug("hand-off from %s to '%s' dropped: %s", sender, item.mention, item.reason)
    return RouteDecision(deliveries=tuple(deliveries),
                         dropped=tuple(item for _, item in dropped),
                         shared_context=parsed.shared_context)


def route_user_message(text: str, settings: TeamSettings, default_agent: str | None,
                       max_messages: int = DEFAULT_MAX_MESSAGES) -> RouteDecision:
    """Decide where a person's message goes: its ``@id`` address, its tags or ``default_agent``.

    A leading ``@agent`` or ``@team`` wins, and the rest of the message goes to it verbatim,
    tags included. Otherwise any hand-off tags are routed as written by ``HUMAN``.
    Otherwise the whole message goes to ``default_agent``. Raise UsageError for an unknown
    id, an empty message, tags that deliver nothing, or no address and no default agent.
    """
    address = parse_user_address(text)
    stripped = text.lstrip()
    if address.target is None and stripped.startswith("@") and len(stripped) > 1 \
            and not stripped[1].isspace():
        token = stripped[1:].split(None, 1)[0].rstrip(":,")
        if token.lower() in settings.agents or token.lower() in settings.teams:
            raise UsageError(f"the address '{stripped.split(None, 1)[0]}' is not one @agent "
                             f"or @team; start with one, such as '@{token} deploy 1.4', or "
                             f"reach several with a tag such as '[@{token}, other: ...]'")
        raise UsageError(f"'@{token}' is not an agent or team id; use one of "
                         f"{known_ids_text(settings)}")
    if address.target is not None:
        agent = _resolve_for_person(address.target, settings)
        if not address.body:
            raise UsageError(f"the message to @{address.target} is empty; write the request "
                             f"after the address, such as '@{address.target} deploy 1.4'")
        return _direct(agent, address.body, address.target)

    parsed = parse_tags(text)
    if parsed.tags or parsed.malformed:
        decision = route(HUMAN, text, settings, RouteContext(max_messages=max_messages))
        if not decision.deliveries:
            reasons = "; ".join(item.detail for item in decision.dropped)
            raise UsageError(f"no hand-off in the message can be delivered: {reasons}")
        return decision

    if not address.body:
        raise UsageError("the message is empty; write a request, such as '@devops deploy 1.4'")
    if default_agent is None:
        raise UsageError("the message names no agent; start the message with @agent or @team")
    default = default_agent.lower()
    if default not in settings.agents and default not in settings.teams:
        raise UsageError(f"default agent '{default_agent}' is not an agent or team id; start the "
                         f"message with @agent or @team, or set the default to one of "
                         f"{known_ids_text(settings)}")
    return _direct(_resolve_for_person(default, settings), address.body, default)


def compose_message(shared_context: str, sender: str, target: str, directed: str) -> str:
    """Return the text ``target`` receives: the shared context, a rule, then its own part."""
    header = f"For @{target} from @{sender}:\n{directed}"
    if not shared_context:
        return header
    return f"{shared_context}\n\n---\n{header}"


def resolve(identifier: str, sender: str, settings: TeamSettings) -> str | None:
    """Return the agent that ``identifier`` names for ``sender``, or None when it is unknown.

    The order is an agent of the sender's team, any agent, then a team's leader.
    """
    team = settings.team_of(sender)
    if team is not None and identifier in team.agents:
        return identifier
    if identifier in settings.agents:
        return identifier
    if identifier in settings.teams:
        return settings.teams[identifier].leader_agent
    return None


def known_ids_text(settings: TeamSettings) -> str:
    """Return the known agent and team ids for an error message, cut to ``MAX_LISTED_IDS``."""
    known = settings.known_ids()
    listed = ", ".join(known[:MAX_LISTED_IDS])
    if len(known) > MAX_LISTED_IDS:
        listed += f" and {len(known) - MAX_LISTED_IDS} more"
    return listed


def _collect_targets(sender: str, tags: tuple[Tag, ...], settings: TeamSettings,
                     dropped: list[tuple[int, Dropped]]) -> dict[str, _Target]:
    """Resolve every id of every tag, merge mentions per agent and drop unknown and self ids."""
    targets: dict[str, _Target] = {}
    reported: set[tuple[str, DropReason]] = set()
    for tag in tags:
        for identifier, written in zip(tag.ids, tag.written or tag.ids, strict=True):
            agent = resolve(identifier, sender, settings)
            problem = None
            if agent is None:
                problem = (DropReason.UNKNOWN,
                           f"'@{written}' is not an agent or team id; known ids: "
                           f"{known_ids_text(settings)}")
            elif agent == sender:
                via = "" if agent == identifier else f" (the leader of team '{identifier}')"
                problem = (DropReason.SELF,
                           f"'@{written}' is the sender {sender}{via}; a hand-off must name "
                           f"another agent")
            if problem is not None:
                if (identifier, problem[0]) not in reported:
                    reported.add((identifier, problem[0]))
                    dropped.append((tag.start, Dropped(written, problem[0], problem[1])))
                continue

            target = targets.setdefault(agent, _Target(agent=agent, offset=tag.start))
            if target.last_tag != tag.start:
                target.bodies.append(tag.body)
                target.last_tag = tag.start
            target.mentions.append(written)
    return targets


def _limit_drop(sender: str, target: _Target, depth: int, delivered: int,
             settings: TeamSettings, context: RouteContext) -> Dropped | None:
    """Return the Dropped entry when the depth, loop or message-cap rules stop a delivery."""
    mention = target.mentions[0]
    if sender != HUMAN:
        spec = settings.agents.get(sender)
        # NOTE: a sender missing from the settings (removed while its conversation ran)
        # gets TinySDLC's default depth, so its earlier hand-offs can still finish.
        limit = spec.max_delegation_depth if spec else DEFAULT_DELEGATION_DEPTH
        if depth > limit:
            return Dropped(mention, DropReason.DEPTH,
                           f"hand-off from {sender} to {target.agent} would be at depth {depth}, "
                           f"over max_delegation_depth {limit} of agent '{sender}'; raise "
                           f"agents.{sender}.max_delegation_depth or answer without handing off")

    if (sender, target.agent) in context.hops:
        return Dropped(mention, DropReason.CIRCULAR,
                       f"hand-off from {sender} to {target.agent} already happened in this "
                       f"conversation; answer {target.agent} without handing off again")

    if context.messages_used + delivered + 1 > context.max_messages:
        return Dropped(mention, DropReason.CAP,
                       f"hand-off from {sender} to {target.agent} would exceed the "
                       f"conversation's limit of {context.max_messages} messages "
                       f"({context.messages_used} used); start a new conversation")
    return None


def _resolve_for_person(identifier: str, settings: TeamSettings) -> str:
    if identifier in settings.agents:
        return identifier
    if identifier in settings.teams:
        return settings.teams[identifier].leader_agent
    raise UsageError(f"'@{identifier}' is not an agent or team id; use one of "
                     f"{known_ids_text(settings)}")


def _direct(agent: str, body: str, mention: str) -> RouteDecision:
    delivery = Delivery(to=agent, directed=body, message=body, mentions=(mention,))
    return RouteDecision(deliveries=(delivery,), dropped=(), shared_context="")

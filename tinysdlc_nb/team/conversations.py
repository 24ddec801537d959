"""Conversations: the first message, the end once every branch answered, and the answer."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from ..errors import UsageError
from ..scrub import scrub
from ..store import Store, utc_now
from ..store.schema import team_conversations, team_events, team_messages
from .model import Dropped, DropReason, RouteDecision
from .queue import DEAD, DONE, NewMessage, insert_message, record_event

OPEN, ANSWERED = "open", "answered"
SEPARATOR = "\n\n------\n\n"

# Statements of the path that ends a conversation, built once (see queue.py).
_ANSWER = (update(team_conversations)
           .where(team_conversations.c.id == bindparam("conversation"))
           .values(status=bindparam("status"), finished_at=bindparam("finished_at"),
                   answer=bindparam("answer"))
           .returning(team_conversations.c.started_by))
_MESSAGES_DONE_ORDER = (select(team_messages.c.recipient, team_messages.c.status,
                               team_messages.c.reply, team_messages.c.files,
                               team_messages.c.attempts, team_messages.c.last_error)
                        .where(team_messages.c.conversation_id == bindparam("conversation"))
                        .order_by(team_messages.c.finished_at, team_messages.c.id))
_OPEN_CONVERSATIONS = (select(team_messages.c.conversation_id).distinct()
                       .where(team_messages.c.conversation_id.in_(
                           bindparam("ids", expanding=True)),
                           team_messages.c.status.in_(("pending", "processing"))))
_DROPS = (select(team_events.c.actor, team_events.c.detail)
          .where(team_events.c.conversation_id == bindparam("conversation"),
                 team_events.c.kind == "dropped")
          .order_by(team_events.c.id))


@dataclass(frozen=True)
class Started:
    """A new conversation and the ids of its first messages."""

    conversation_id: int
    message_ids: tuple[int, ...]


def start_conversation(store: Store, decision: RouteDecision, *, text: str, started_by: str,
                       sender: str, origin: str = "cli", team: str | None = None,
                       max_messages: int, max_attempts: int) -> Started:
    """Store a person's (or the tool's) message as a new conversation and enqueue it.

    Raise UsageError when the decision delivers nothing, so nothing is stored for a
    message that would reach no one.
    """
    with store.begin() as connection:
        return insert_conversation(connection, decision, text=text, started_by=started_by,
                                   sender=sender, origin=origin, team=team,
                                   max_messages=max_messages, max_attempts=max_attempts)


def insert_conversation(connection: Connection, decision: RouteDecision, *, text: str,
                        started_by: str, sender: str, origin: str, team: str | None,
                        max_messages: int, max_attempts: int) -> Started:
    """Insert a conversation and its first messages in the caller's transaction."""
    if not decision.deliveries:
        reasons = "; ".join(f"@{item.mention}: {item.detail}" for item in decision.dropped)
        raise UsageError(f"the message reaches no agent ({reasons or 'no target'}); address "
                         f"it with @agent or @team")

    if len(decision.deliveries) > max_messages:
        kept, over = decision.deliveries[:max_messages], decision.deliveries[max_messages:]
        capped = tuple(Dropped(delivery.to, DropReason.CAP,
                               f"the conversation may carry {max_messages} message(s); "
                               f"@{delivery.to} was not sent") for delivery in over)
        decision = RouteDecision(kept, (*decision.dropped, *capped), decision.shared_context)

    now = utc_now()
    conversation_id = connection.execute(insert(team_conversations).values(
        started_by=scrub(started_by), origin=origin, entry_agent=decision.deliveries[0].to,
        team=team, text=scrub(text), status=OPEN, max_messages=max_messages, created_at=now,
    )).inserted_primary_key[0]
    record_event(connection, conversation_id, "started", started_by,
                 detail={"origin": origin, "text": text}, at=now)

    ids = []
    for delivery in decision.deliveries:
        message_id = insert_message(connection, conversation_id, NewMessage(
            sender=sender, recipient=delivery.to, directed=delivery.directed,
            shared_context=decision.shared_context, body=delivery.message,
        ), max_attempts, now)
        ids.append(message_id)
        record_event(connection, conversation_id, "sent", started_by, message_id=message_id,
                     target=delivery.to, at=now)
    for dropped in decision.dropped:
        record_event(connection, conversation_id, "dropped", started_by,
                     target=dropped.mention, detail=dropped.as_json(), at=now)
    return Started(conversation_id, tuple(ids))


def finish_completed(connection: Connection, conversation_ids: list[int],
                     now: dt.datetime) -> dict[int, str]:
    """Write the answer of each conversation with no open message left; return the answers.

    The caller holds the conversations' locks (``lock_conversations``) in this transaction.
    """
    if not conversation_ids:
        return {}
    still_open = set(connection.execute(_OPEN_CONVERSATIONS,
                                        {"ids": list(conversation_ids)}).scalars())
    answers = {}
    for conversation_id in sorted(set(conversation_ids) - still_open):
        answer = aggregate_answer(connection, conversation_id)
        started_by = connection.execute(_ANSWER, {
            "conversation": conversation_id, "status": ANSWERED, "finished_at": now,
            "answer": answer}).scalar_one()
        record_event(connection, conversation_id, "answered", "tinysdlc-nb", target=started_by,
                     detail={"chars": len(answer)}, at=now)
        answers[conversation_id] = answer
    return answers


def aggregate_answer(connection: Connection, conversation_id: int) -> str:
    """Join every reply of a conversation into one text, with what was not delivered.

    A single reply with nothing else to report is the answer as it is; several replies
    become ``@agent: reply`` sections in the order they were finished.
    """
    messages = connection.execute(_MESSAGES_DONE_ORDER,
                                  {"conversation": conversation_id}).mappings().all()
    drops = connection.execute(_DROPS, {"conversation": conversation_id}).all()

    replies = [row for row in messages if row["status"] == DONE and row["reply"]]
    dead = [row for row in messages if row["status"] == DEAD]
    files = [item for row in replies for item in json.loads(row["files"] or "[]")]
    if len(replies) == 1 and not dead and not drops and not files:
        return replies[0]["reply"]

    sections = [f"@{row['recipient']}: {row['reply']}" for row in replies]
    for row in dead:
        sections.append(f"@{row['recipient']}: no reply; the message is dead after "
                        f"{row['attempts']} attempt(s): {row['last_error'] or 'no reason kept'}")
    if drops:
        lines = []
        for actor, detail in drops:
            item = json.loads(detail)
            lines.append(f"- from @{actor} to @{item['mention']}: {item['detail']}")
        sections.append("Not delivered:\n" + "\n".join(lines))
    if files:
        sections.append("Files:\n" + "\n".join(f"- {item['path']} ({item['size']} bytes, "
                                                f"sha256 {item['sha256'][:12]})"
                                                for item in files))
    return scrub(SEPARATOR.join(sections))


def parse_conversation_id(text: str | int) -> int:
    """Accept ``12`` or ``C-12``; raise UsageError naming the value otherwise."""
    value = str(text).strip()
    digits = value[2:] if value.upper().startswith("C-") else value
    if not digits.isdigit() or int(digits) < 1:
        raise UsageError(f"conversation id '{value}' is invalid; write a number such as 12 "
                         f"or C-12")
    return int(digits)


def list_conversations(store: Store, *, limit: int = 50,
                       status: str | None = None) -> list[dict[str, Any]]:
    """Return the newest conversations first, each with its message counts."""
    query = select(team_conversations).order_by(team_conversations.c.id.desc()).limit(limit)
    if status:
        query = query.where(team_conversations.c.status == status)
    with store.engine.connect() as connection:
        conversations = [dict(row) for row in connection.execute(query).mappings()]
        for conversation in conversations:
            statuses = connection.execute(select(team_messages.c.status).where(
                team_messages.c.conversation_id == conversation["id"])).scalars().all()
            conversation["messages"] = len(statuses)
            conversation["dead"] = statuses.count(DEAD)
            conversation["open_messages"] = sum(status in ("pending", "processing")
                                                for status in statuses)
    return conversations


def conversation_detail(store: Store, conversation_id: int) -> dict[str, Any]:
    """Return one conversation with its messages and events, oldest first."""
    with store.engine.connect() as connection:
        row = connection.execute(select(team_conversations).where(
            team_conversations.c.id == conversation_id)).mappings().first()
        if row is None:
            raise UsageError(f"conversation {conversation_id} not found; list them with "
                             f"`tinysdlc-nb conversation list`")
        messages = connection.execute(
            select(team_messages).where(team_messages.c.conversation_id == conversation_id)
            .order_by(team_messages.c.id)).mappings().all()
        events = connection.execute(
            select(team_events).where(team_events.c.conversation_id == conversation_id)
            .order_by(team_events.c.id)).mappings().all()
    detail = dict(row)
    detail["messages"] = [dict(message) for message in messages]
    detail["events"] = [{**dict(event), "detail": json.loads(event["detail"])}
                        for event in events]
    return detail

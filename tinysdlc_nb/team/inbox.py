"""Views of team messaging for people: DataFrames for the notebook, text for the CLI.

Every frame is a query over the store (``Store.frame``), never a copy kept elsewhere.
"""

from __future__ import annotations

import html
import json
import logging
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Integer, func, select

from ..config import Config, load_config
from ..errors import ConfigError, UsageError
from ..scrub import scrub
from ..store import Store, open_store
from ..store.schema import team_conversations, team_events, team_messages, team_notifications
from .conversations import conversation_detail
from .model import HUMAN
from .queue import DEAD, DONE, OPEN_STATUSES, PENDING, PROCESSING
from .settings import TeamSettings, load_team_settings

log = logging.getLogger(__name__)

_MESSAGE_COLUMNS = (team_messages.c.id, team_messages.c.conversation_id,
                    team_messages.c.parent_id, team_messages.c.sender,
                    team_messages.c.recipient, team_messages.c.kind, team_messages.c.depth,
                    team_messages.c.status, team_messages.c.attempts,
                    team_messages.c.created_at, team_messages.c.started_at,
                    team_messages.c.finished_at, team_messages.c.directed,
                    team_messages.c.reply, team_messages.c.last_error)


@dataclass
class Inbox:
    """What the team_inbox notebook reads: the project's config, its store and team settings.

    ``settings`` is None when the settings file is missing or invalid, and
    ``settings_error`` then contains the error with its fix.
    """

    config: Config
    store: Store
    settings: TeamSettings | None
    settings_error: str | None = None


def open_inbox(project_dir: str | Path, settings_path: str = "") -> Inbox:
    """Open the project's store and read its team settings, keeping a settings error as text.

    The queue and the conversations can be shown without team settings, so only the
    config and the store raise here.
    """
    config = load_config(project_dir)
    store = open_store(config.database_url)

    try:
        settings = load_team_settings(config.home, settings_path or None)
    except ConfigError as error:
        log.info("team inbox without team settings: %s", error)
        return Inbox(config, store, None, scrub(str(error)))
    return Inbox(config, store, settings)


def conversations_frame(store: Store, limit: int = 200) -> pd.DataFrame:
    """Return the newest conversations with message counts by status."""
    if limit < 1:
        raise UsageError(f"limit {limit} is invalid; give the number of conversations to "
                         f"show, 1 or more")
    counts = (select(team_messages.c.conversation_id,
                     func.count().label("messages"),
                     func.sum((team_messages.c.status == DEAD).cast(Integer)).label("dead"),
                     func.sum(team_messages.c.status.in_(OPEN_STATUSES).cast(Integer))
                     .label("open_messages"))
              .group_by(team_messages.c.conversation_id).subquery())
    query = (select(team_conversations.c.id, team_conversations.c.status,
                    team_conversations.c.started_by, team_conversations.c.entry_agent,
                    team_conversations.c.team, team_conversations.c.text,
                    team_conversations.c.created_at, team_conversations.c.finished_at,
                    counts.c.messages, counts.c.dead, counts.c.open_messages,
                    team_conversations.c.answer)
             .select_from(team_conversations.outerjoin(
                 counts, counts.c.conversation_id == team_conversations.c.id))
             .order_by(team_conversations.c.id.desc()).limit(limit))
    frame = store.frame(query)
    for column in ("messages", "dead", "open_messages"):
        frame[column] = frame[column].fillna(0).astype(int)
    return frame


def messages_frame(store: Store, conversation_id: int | None = None) -> pd.DataFrame:
    """Return messages oldest first, with the seconds each waited and took."""
    query = select(*_MESSAGE_COLUMNS).order_by(team_messages.c.id)
    if conversation_id is not None:
        query = query.where(team_messages.c.conversation_id == conversation_id)
    frame = store.frame(query)
    frame["wait_s"] = (frame["started_at"] - frame["created_at"]).dt.total_seconds()
    frame["duration_s"] = (frame["finished_at"] - frame["started_at"]).dt.total_seconds()
    return frame


def handoffs_frame(store: Store, conversation_id: int | None = None) -> pd.DataFrame:
    """Return hand-offs, drops and notices: who sent what to whom, and what was not sent."""
    query = (select(team_events.c.id, team_events.c.conversation_id, team_events.c.message_id,
                    team_events.c.at, team_events.c.kind, team_events.c.actor,
                    team_events.c.target, team_events.c.detail)
             .where(team_events.c.kind.in_(("sent", "handoff", "dropped", "notice",
                                             "notified")))
             .order_by(team_events.c.id))
    if conversation_id is not None:
        query = query.where(team_events.c.conversation_id == conversation_id)
    frame = store.frame(query)
    frame["detail"] = frame["detail"].map(_summarize_detail)
    return frame


def queue_frame(store: Store) -> pd.DataFrame:
    """Return one row per agent with its message count in each status."""
    frame = store.frame(select(team_messages.c.recipient.label("agent"),
                               team_messages.c.status, func.count().label("messages"))
                        .group_by(team_messages.c.recipient, team_messages.c.status))
    table = frame.pivot_table(index="agent", columns="status", values="messages",
                              fill_value=0, aggfunc="sum")
    return table.reindex(columns=[PENDING, PROCESSING, DONE, DEAD], fill_value=0) \
        .astype(int).reset_index()


def dead_messages(store: Store) -> pd.DataFrame:
    """Return dead messages with the reason, newest first."""
    return store.frame(select(team_messages.c.id, team_messages.c.conversation_id,
                              team_messages.c.recipient, team_messages.c.attempts,
                              team_messages.c.finished_at, team_messages.c.last_error)
                       .where(team_messages.c.status == DEAD)
                       .order_by(team_messages.c.id.desc()))


def dead_messages_to_retry(store: Store, project_dir: str | Path = ".") -> pd.DataFrame:
    """Return ``dead_messages`` with the command that puts each one back in the queue."""
    frame = dead_messages(store)
    where = "" if str(project_dir) == "." else f" --project {shlex.quote(str(project_dir))}"
    frame["retry_command"] = [f"tinysdlc-nb queue retry {message_id}{where}"
                              for message_id in frame["id"]]
    return frame


def pending_notifications(store: Store) -> pd.DataFrame:
    """Return texts for people that no channel has delivered yet, oldest first."""
    return store.frame(select(team_notifications.c.id, team_notifications.c.recipient,
                              team_notifications.c.text, team_notifications.c.created_at,
                              team_notifications.c.conversation_id)
                       .where(team_notifications.c.delivered_at.is_(None))
                       .order_by(team_notifications.c.id))


def chosen_conversation(store: Store, conversation_id: int) -> dict[str, Any] | None:
    """Return the detail of conversation ``conversation_id``, or of the newest one for 0.

    Return None for 0 when the store has no conversation yet. Raise UsageError for a
    negative id or an id that is not in the store.
    """
    if conversation_id < 0:
        raise UsageError(f"conversation_id {conversation_id} is invalid; give a conversation "
                         f"id, or 0 for the newest")
    if conversation_id == 0:
        with store.engine.connect() as connection:
            newest = connection.execute(select(func.max(team_conversations.c.id))).scalar()
        if newest is None:
            return None
        conversation_id = newest
    return conversation_detail(store, conversation_id)


def conversation_html(detail: dict[str, Any]) -> str:
    """Return a conversation's header, message and answer as redacted, escaped HTML."""
    def text(value: Any) -> str:
        return html.escape(scrub(str(value)))

    parts = [f"<h3>Conversation C-{detail['id']} ({text(detail['status'])})</h3>",
             f"<p>Started by {text(detail['started_by'])} at "
             f"{text(str(detail['created_at'])[:19])} UTC, from {text(detail['origin'])}, "
             f"to @{text(detail['entry_agent'])}.</p>",
             f"<p>Message:</p><pre>{text(detail['text'])}</pre>"]
    if detail["answer"] is None:
        parts.append("<p>No answer yet: some branches are still open.</p>")
    else:
        parts.append(f"<p>Answer:</p><pre>{text(detail['answer'])}</pre>")
    return "\n".join(parts)


def render_conversation(detail: dict[str, Any]) -> str:
    """Return a conversation as text: header, each message with its reply, then the answer."""
    lines = [f"Conversation C-{detail['id']} ({detail['status']}), started by "
             f"{detail['started_by']} at {str(detail['created_at'])[:19]}",
             f"Message: {detail['text']}", ""]
    for message in detail["messages"]:
        sender = detail["started_by"] if message["sender"] == HUMAN else f"@{message['sender']}"
        lines.append(f"#{message['id']} {sender} → @{message['recipient']} "
                     f"[{message['status']}, attempt {message['attempts']}, depth "
                     f"{message['depth']}{', notice' if message['kind'] == 'notice' else ''}]")
        lines.append(_indent(message["directed"]))
        if message["reply"]:
            lines.append(f"  reply from @{message['recipient']}:")
            lines.append(_indent(message["reply"], 4))
        if message["status"] == DEAD:
            lines.append(f"  dead: {message['last_error']}")
        lines.append("")

    dropped = [event for event in detail["events"] if event["kind"] == "dropped"]
    if dropped:
        lines.append("Not delivered:")
        for event in dropped:
            item = event["detail"]
            lines.append(f"  from @{event['actor']} to @{item['mention']}: {item['reason']} "
                         f"({item['detail']})")
        lines.append("")
    if detail["answer"] is not None:
        lines += ["Answer:", _indent(detail["answer"])]
    else:
        lines.append("No answer yet: some branches are still open.")
    return scrub("\n".join(lines))


def _indent(text: str, width: int = 2) -> str:
    pad = " " * width
    return "\n".join(pad + line for line in (text or "").splitlines()) or pad


def _summarize_detail(raw: str) -> str:
    value = json.loads(raw)
    if isinstance(value, dict):
        if "directed" in value:
            return value["directed"]
        if "reason" in value:
            return f"{value['reason']}: {value.get('detail', '')}"
        return ", ".join(f"{key}={item}" for key, item in value.items())
    return str(value)

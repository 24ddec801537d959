"""Messages from Telegram chats to the team, and the team's answers back to those chats.

One ``getUpdates`` round reads the updates after the stored offset. A text from an allowed
chat becomes a conversation (origin ``telegram``) in the same transaction that records it
in ``channel_inbound`` and moves the offset, so a crash repeats an update at most, and the
unique (channel, update id) pair makes a repeat a no-op. When the conversation is
answered, the answer is queued as a notification to that chat; ``answered_at`` is set
once it is delivered.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..config import Config
from ..errors import UsageError
from ..scrub import scrub
from ..store import Store, utc_now
from ..store.schema import channel_cursors, channel_inbound, team_conversations
from ..team.conversations import ANSWERED, insert_conversation
from ..team.model import HUMAN
from ..team.routing import route_user_message
from ..team.settings import TeamSettings, load_team_settings
from ..team.tags import parse_user_address
from .claims import INBOUND_KEY
from .outbox import queue_notification
from .telegram import CHAT_RECIPIENT, TelegramChannel

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

CHANNEL = "telegram"
OFFSET_KEY = "offset"


@dataclass
class Received:
    """The counts of one getUpdates round."""

    updates: int = 0
    queued: int = 0
    rejected: int = 0
    duplicates: int = 0
    ignored: int = 0
    conversations: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def receive_once(store: Store, config: Config, client: httpx.Client, *,
                 timeout_s: int | None = None, team: TeamSettings | None = None,
                 stop: threading.Event | None = None) -> Received:
    """Run one getUpdates round and queue each accepted message for the team.

    Raise UpdatesError when the call fails and ConfigError when the token or the team
    settings are missing. When ``stop`` is set while the long poll waits, the updates are
    left unconfirmed (Telegram sends them again) and nothing is written.
    """
    channel = TelegramChannel(config.channels["configured"][CHANNEL], config.channels)
    channel.prepare()
    team = team or load_team_settings(config.home)
    wait_s = config.channels["configured"][CHANNEL]["poll_timeout_s"] \
        if timeout_s is None else timeout_s

    updates = channel.get_updates(client, read_offset(store), wait_s)
    if stop is not None and stop.is_set():
        return Received()
    received = Received(updates=len(updates))
    for update_item in sorted(updates, key=lambda item: _update_id(item) or 0):
        with store.begin() as connection:
            outcome = _accept(connection, config, team, update_item, received)
        setattr(received, outcome, getattr(received, outcome) + 1)
    return received


def read_offset(store: Store) -> int | None:
    with store.engine.connect() as connection:
        value = connection.execute(select(channel_cursors.c.value).where(
            channel_cursors.c.channel == CHANNEL,
            channel_cursors.c.key == OFFSET_KEY)).scalar()
    return int(value) if value is not None else None


def queue_chat_answers(store: Store) -> int:
    """Queue the answer of every finished conversation that came from a chat; return how many.

    The notification's dedup key names the inbound row, so a later pass queues nothing
    twice, and delivering it sets the row's ``answered_at``.
    """
    query = (select(channel_inbound.c.id, channel_inbound.c.chat_id,
                    channel_inbound.c.conversation_id, team_conversations.c.answer)
             .join(team_conversations,
                   team_conversations.c.id == channel_inbound.c.conversation_id)
             .where(channel_inbound.c.channel == CHANNEL,
                    channel_inbound.c.answered_at.is_(None),
                    team_conversations.c.status == ANSWERED))
    queued = 0
    with store.begin() as connection:
        for inbound_id, chat_id, conversation_id, answer in connection.execute(query).all():
            text = answer or "The team finished without an answer."
            queued += queue_notification(connection, CHAT_RECIPIENT + chat_id, text,
                                         dedup_key=f"{INBOUND_KEY}{inbound_id}",
                                         conversation_id=conversation_id) is not None
    return queued


def _accept(connection: Connection, config: Config, team: TeamSettings,
            update_item: dict[str, Any], received: Received) -> str:
    """Record one update and return the name of its count in Received."""
    update_id = _update_id(update_item)
    if update_id is None:
        return "ignored"
    _save_offset(connection, update_id + 1)

    message = update_item.get("message")
    chat = message.get("chat") if isinstance(message, dict) else None
    text = message.get("text") if isinstance(message, dict) else None
    if not isinstance(chat, dict) or not isinstance(text, str) or not text.strip():
        return "ignored"
    chat_id = str(chat.get("id"))
    if chat_id not in config.channels["configured"][CHANNEL]["allowed_chat_ids"]:
        log.warning("telegram: ignored update %d from chat %s, which is not in "
                    "allowed_chat_ids", update_id, chat_id)
        return "ignored"

    sender = f"telegram:{_sender_name(message)}"
    inbound_id = _insert_inbound(connection, update_id, chat_id, sender, text)
    if inbound_id is None:
        return "duplicates"

    team_config = config.team
    try:
        decision = route_user_message(text, team, team_config["default_agent"] or None,
                                      team_config["max_conversation_messages"])
        started = insert_conversation(
            connection, decision, text=text, started_by=sender, sender=HUMAN,
            origin=CHANNEL, team=_team_addressed(text, team),
            max_messages=team_config["max_conversation_messages"],
            max_attempts=team_config["max_attempts"])
    except UsageError as error:
        queue_notification(connection, CHAT_RECIPIENT + chat_id,
                           f"Not delivered to the team: {error}",
                           dedup_key=f"{INBOUND_KEY}{inbound_id}")
        log.info("telegram: update %d from %s was not routed (%s)", update_id, sender, error)
        return "rejected"

    connection.execute(update(channel_inbound).where(channel_inbound.c.id == inbound_id)
                       .values(conversation_id=started.conversation_id))
    received.conversations.append(started.conversation_id)
    log.info("telegram: update %d from %s started conversation C-%d", update_id, sender,
             started.conversation_id)
    return "queued"


def _update_id(update_item: dict[str, Any]) -> int | None:
    value = update_item.get("update_id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _sender_name(message: dict[str, Any]) -> str:
    person = message.get("from") if isinstance(message.get("from"), dict) else {}
    return str(person.get("username") or person.get("id") or "unknown")


def _team_addressed(text: str, team: TeamSettings) -> str | None:
    target = parse_user_address(text).target
    return target if target in team.teams else None


def _insert_inbound(connection: Connection, update_id: int, chat_id: str, sender: str,
                    text: str) -> int | None:
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" \
        else sqlite.insert
    statement = dialect_insert(channel_inbound).values(
        channel=CHANNEL, external_id=str(update_id), chat_id=chat_id, sender=sender,
        text=scrub(text), received_at=utc_now()).on_conflict_do_nothing(
        index_elements=["channel", "external_id"]).returning(channel_inbound.c.id)
    return connection.execute(statement).scalar()


def _save_offset(connection: Connection, offset: int) -> None:
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" \
        else sqlite.insert
    statement = dialect_insert(channel_cursors).values(
        channel=CHANNEL, key=OFFSET_KEY, value=str(offset), updated_at=utc_now())
    connection.execute(statement.on_conflict_do_update(
        index_elements=["channel", "key"],
        set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at}))

"""The outbox: notifications for people, queued in the store until a channel carries them."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from ..scrub import scrub
from ..store import utc_now
from ..store.schema import team_notifications


def queue_notification(connection: Connection, recipient: str, text: str, *,
                       dedup_key: str | None = None, conversation_id: int | None = None,
                       message_id: int | None = None) -> int | None:
    """Queue ``text`` for ``recipient`` and return its id; None when the same key was queued.

    The text is redacted before it is stored. Without ``dedup_key`` the same text to the
    same person is kept once.
    """
    text = scrub(text)
    recipient = scrub(recipient)
    key = dedup_key or hashlib.sha256(f"{recipient}\n{text}".encode()).hexdigest()
    key = key if len(key) <= 64 else hashlib.sha256(key.encode()).hexdigest()
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    values: dict[str, Any] = {"conversation_id": conversation_id, "message_id": message_id,
                              "recipient": recipient, "text": text, "dedup_key": key,
                              "created_at": utc_now()}
    statement = insert(team_notifications).values(**values).on_conflict_do_nothing(
        index_elements=["dedup_key"]).returning(team_notifications.c.id)
    return connection.execute(statement).scalar()

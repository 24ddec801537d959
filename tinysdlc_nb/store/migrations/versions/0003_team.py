"""Create the team messaging tables: conversations, the message queue and its history.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "team_conversations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("started_by", sa.String(200), nullable=False),
        sa.Column("origin", sa.String(50), nullable=False),
        sa.Column("entry_agent", sa.String(100), nullable=False),
        sa.Column("team", sa.String(100)),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("max_messages", sa.Integer, nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("finished_at", _AT),
        sa.Column("answer", sa.Text),
    )
    op.create_index("ix_team_conversations_status", "team_conversations", ["status"])
    op.create_table(
        "team_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.Integer, sa.ForeignKey("team_conversations.id"),
                  nullable=False),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("team_messages.id")),
        sa.Column("sender", sa.String(200), nullable=False),
        sa.Column("recipient", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("depth", sa.Integer, nullable=False),
        sa.Column("hops", sa.Text, nullable=False),
        sa.Column("directed", sa.Text, nullable=False),
        sa.Column("shared_context", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("available_at", _AT, nullable=False),
        sa.Column("lease_owner", sa.String(100)),
        sa.Column("lease_expires_at", _AT),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("started_at", _AT),
        sa.Column("finished_at", _AT),
        sa.Column("reply", sa.Text),
        sa.Column("files", sa.Text),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_team_messages_mailbox", "team_messages", ["recipient", "status", "id"])
    op.create_index("ix_team_messages_status", "team_messages", ["status", "available_at"])
    op.create_index("ix_team_messages_conversation", "team_messages", ["conversation_id"])
    op.create_table(
        "team_mailboxes",
        sa.Column("agent", sa.String(100), primary_key=True),
    )
    op.create_table(
        "team_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.Integer, sa.ForeignKey("team_messages.id"), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("worker", sa.String(100), nullable=False),
        sa.Column("agent", sa.String(100), nullable=False),
        sa.Column("claimed_at", _AT, nullable=False),
        sa.Column("finished_at", _AT, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("error", sa.Text),
        sa.UniqueConstraint("message_id", "attempt", name="uq_team_attempts"),
    )
    op.create_table(
        "team_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.Integer, sa.ForeignKey("team_conversations.id"),
                  nullable=False),
        sa.Column("message_id", sa.Integer, sa.ForeignKey("team_messages.id")),
        sa.Column("at", _AT, nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("target", sa.String(200)),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_team_events_conversation", "team_events", ["conversation_id", "id"])
    op.create_table(
        "team_notifications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.Integer, sa.ForeignKey("team_conversations.id")),
        sa.Column("message_id", sa.Integer, sa.ForeignKey("team_messages.id")),
        sa.Column("recipient", sa.String(200), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("dedup_key", sa.String(64), unique=True),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("delivered_at", _AT),
        sa.Column("channel", sa.String(50)),
    )


def downgrade() -> None:
    op.drop_table("team_notifications")
    op.drop_table("team_events")
    op.drop_table("team_attempts")
    op.drop_table("team_mailboxes")
    op.drop_index("ix_team_messages_conversation", "team_messages")
    op.drop_index("ix_team_messages_status", "team_messages")
    op.drop_index("ix_team_messages_mailbox", "team_messages")
    op.drop_table("team_messages")
    op.drop_index("ix_team_conversations_status", "team_conversations")
    op.drop_table("team_conversations")

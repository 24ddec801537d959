"""Create the persistent-mode tables: schedules and their runs, heartbeats, channels.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("project", sa.Text, nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("cron", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("catch_up", sa.String(10), nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.Column("next_run_at", _AT),
    )
    op.create_table(
        "schedule_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("schedule_id", sa.Integer, sa.ForeignKey("schedules.id")),
        sa.Column("schedule_name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("trigger", sa.String(12), nullable=False),
        sa.Column("scheduled_for", _AT),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("exit_code", sa.Integer),
        sa.Column("started_at", _AT, nullable=False),
        sa.Column("finished_at", _AT),
        sa.Column("scheduler", sa.String(200)),
        sa.Column("pid", sa.Integer),
        sa.Column("lease_expires_at", _AT),
        sa.Column("output_dir", sa.Text),
        sa.Column("notebook_path", sa.Text),
        sa.Column("html_path", sa.Text),
        sa.Column("reports_deleted_at", _AT),
        sa.Column("message", sa.Text, nullable=False),
        sa.UniqueConstraint("schedule_id", "scheduled_for", name="uq_schedule_runs_fire"),
    )
    op.create_index("ix_schedule_runs_schedule", "schedule_runs", ["schedule_id", "id"])
    op.create_index("ix_schedule_runs_status", "schedule_runs", ["status"])
    op.create_table(
        "heartbeats",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("schedule_runs.id")),
        sa.Column("at", _AT, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("changed", sa.Boolean, nullable=False),
        sa.Column("model_called", sa.Boolean, nullable=False),
        sa.Column("attention", sa.Integer, nullable=False),
        sa.Column("notified", sa.Integer, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("findings", sa.Text, nullable=False),
    )
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("notification_id", sa.Integer, sa.ForeignKey("team_notifications.id"),
                  nullable=False),
        sa.Column("channel", sa.String(50), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("parts_total", sa.Integer, nullable=False),
        sa.Column("parts_sent", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", _AT, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("delivered_at", _AT),
        sa.UniqueConstraint("notification_id", "channel", name="uq_notification_deliveries"),
    )
    op.create_index("ix_notification_deliveries_due", "notification_deliveries",
                    ["status", "next_attempt_at"])
    op.create_table(
        "channel_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.Integer, sa.ForeignKey("notification_deliveries.id"),
                  nullable=False),
        sa.Column("at", _AT, nullable=False),
        sa.Column("part", sa.Integer, nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("outcome", sa.String(12), nullable=False),
        sa.Column("retry_after_s", sa.Float),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "channel_cursors",
        sa.Column("channel", sa.String(50), primary_key=True),
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
    )
    op.create_table(
        "channel_inbound",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(50), nullable=False),
        sa.Column("external_id", sa.String(100), nullable=False),
        sa.Column("chat_id", sa.String(100), nullable=False),
        sa.Column("sender", sa.String(200), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("received_at", _AT, nullable=False),
        sa.Column("conversation_id", sa.Integer, sa.ForeignKey("team_conversations.id")),
        sa.Column("answered_at", _AT),
        sa.UniqueConstraint("channel", "external_id", name="uq_channel_inbound"),
    )


def downgrade() -> None:
    op.drop_table("channel_inbound")
    op.drop_table("channel_cursors")
    op.drop_table("channel_attempts")
    op.drop_index("ix_notification_deliveries_due", table_name="notification_deliveries")
    op.drop_table("notification_deliveries")
    op.drop_table("heartbeats")
    op.drop_index("ix_schedule_runs_status", table_name="schedule_runs")
    op.drop_index("ix_schedule_runs_schedule", table_name="schedule_runs")
    op.drop_table("schedule_runs")
    op.drop_table("schedules")

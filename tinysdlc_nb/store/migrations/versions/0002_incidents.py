"""Create the incident tables: incidents, their external keys and the timeline.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from tinysdlc_nb.store.guards import create_append_only_guard, drop_append_only_guard

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

APPEND_ONLY = ("incidents", "incident_keys", "timeline")


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "incident_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("key", sa.String(500), nullable=False),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("source", "key", "incident_id", name="uq_incident_keys"),
    )
    op.create_table(
        "timeline",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("actor_kind", sa.String(10), nullable=False),
        sa.Column("severity", sa.String(2)),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("alert_key", sa.String(500)),
        sa.Column("supersedes", sa.Integer, sa.ForeignKey("timeline.id")),
        sa.Column("dedup_key", sa.String(500), unique=True),
    )
    op.create_index("ix_timeline_incident_occurred", "timeline", ["incident_id", "occurred_at"])
    op.create_index("ix_timeline_kind", "timeline", ["kind"])
    for table in APPEND_ONLY:
        create_append_only_guard(table)


def downgrade() -> None:
    for table in APPEND_ONLY:
        drop_append_only_guard(table, last=False)
    op.drop_index("ix_timeline_kind", table_name="timeline")
    op.drop_index("ix_timeline_incident_occurred", table_name="timeline")
    op.drop_table("timeline")
    op.drop_table("incident_keys")
    op.drop_table("incidents")

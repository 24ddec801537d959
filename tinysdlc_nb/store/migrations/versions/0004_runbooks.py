"""Create the runbook tables: runs and their steps.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runbook_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("runbook", sa.String(200), nullable=False),
        sa.Column("runbook_path", sa.Text, nullable=False),
        sa.Column("runbook_sha256", sa.String(64), nullable=False),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100)),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("operator", sa.String(200), nullable=False),
        sa.Column("no_rollback", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("exit_code", sa.Integer),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("started_at", _AT, nullable=False),
        sa.Column("finished_at", _AT),
        sa.Column("rollback_target_s", sa.Float),
        sa.Column("rollback_healthy_s", sa.Float),
        sa.Column("run_dir", sa.Text),
        sa.Column("notebook_path", sa.Text),
    )
    op.create_index("ix_runbook_runs_runbook", "runbook_runs", ["runbook", "id"])
    op.create_table(
        "runbook_steps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runbook_runs.id"), nullable=False),
        sa.Column("phase", sa.String(30), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("exit_code", sa.Integer),
        sa.Column("started_at", _AT, nullable=False),
        sa.Column("duration_s", sa.Float, nullable=False),
        sa.Column("output_bytes", sa.Integer, nullable=False),
        sa.Column("output_tail", sa.Text, nullable=False),
        sa.Column("log_path", sa.Text),
        sa.Column("message", sa.Text, nullable=False),
        sa.UniqueConstraint("run_id", "phase", "number",
                            name="uq_runbook_steps_run_phase_number"),
    )


def downgrade() -> None:
    op.drop_table("runbook_steps")
    op.drop_index("ix_runbook_runs_runbook", table_name="runbook_runs")
    op.drop_table("runbook_runs")

"""Create the gate tables: runs, items, findings, evidence, sign-offs and chain heads.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from tinysdlc_nb.store.guards import create_append_only_guard, drop_append_only_guard

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = ("evidence", "signoffs")


def upgrade() -> None:
    op.create_table(
        "gate_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("gate", sa.String(8), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("verdict", sa.String(30)),
        sa.Column("exit_code", sa.Integer),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("output_dir", sa.Text),
        sa.Column("summary_sha256", sa.String(64)),
    )
    op.create_table(
        "gate_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64),
                  sa.ForeignKey("gate_runs.run_id", ondelete="CASCADE"), nullable=False),
        sa.Column("item", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("required", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("tool", sa.String(100)),
        sa.Column("tool_version", sa.String(50)),
        sa.Column("exit_code", sa.Integer),
        sa.Column("report_name", sa.String(200)),
        sa.Column("report_sha256", sa.String(64)),
        sa.Column("duration_s", sa.Float),
        sa.UniqueConstraint("run_id", "item", name="uq_gate_items_run_item"),
    )
    op.create_table(
        "findings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64),
                  sa.ForeignKey("gate_runs.run_id", ondelete="CASCADE"), nullable=False),
        sa.Column("item", sa.String(100), nullable=False),
        sa.Column("file", sa.Text, nullable=False),
        sa.Column("line", sa.Integer),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("suppression", sa.Text),
    )
    op.create_index("ix_findings_run_item", "findings", ["run_id", "item"])
    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("gate", sa.String(8), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("item", sa.String(100), nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("file_name", sa.Text),
        sa.Column("file_sha256", sa.String(64)),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "signoffs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("gate", sa.String(8), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("role", sa.String(50), nullable=False),
        sa.Column("signer", sa.String(200), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "chain_heads",
        sa.Column("chain", sa.String(50), primary_key=True),
        sa.Column("length", sa.Integer, nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
    )
    chain_heads = sa.table("chain_heads", sa.column("chain", sa.String),
                           sa.column("length", sa.Integer), sa.column("head_hash", sa.String))
    op.bulk_insert(chain_heads, [{"chain": table, "length": 0, "head_hash": "0" * 64}
                                 for table in APPEND_ONLY])
    for table in APPEND_ONLY:
        create_append_only_guard(table)


def downgrade() -> None:
    for table in APPEND_ONLY:
        drop_append_only_guard(table, last=table == APPEND_ONLY[-1])
    op.drop_table("chain_heads")
    op.drop_table("signoffs")
    op.drop_table("evidence")
    op.drop_index("ix_findings_run_item", table_name="findings")
    op.drop_table("findings")
    op.drop_table("gate_items")
    op.drop_table("gate_runs")

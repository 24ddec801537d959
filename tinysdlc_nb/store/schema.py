"""Table definitions of the store, for queries. Migrations create the same tables.

``tests/test_store.py`` compares this metadata with a migrated database, so the two cannot
drift apart unnoticed.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

gate_runs = Table(
    "gate_runs", metadata,
    Column("run_id", String(64), primary_key=True),
    Column("project", String(200), nullable=False),
    Column("gate", String(8), nullable=False),
    Column("version", String(100), nullable=False),
    Column("tier", String(20), nullable=False),
    Column("environment", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    Column("verdict", String(30)),
    Column("exit_code", Integer),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("output_dir", Text),
    Column("summary_sha256", String(64)),
)

gate_items = Table(
    "gate_items", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), ForeignKey("gate_runs.run_id", ondelete="CASCADE"),
           nullable=False),
    Column("item", String(100), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("required", Boolean, nullable=False),
    Column("status", String(20), nullable=False),
    Column("summary", Text, nullable=False),
    Column("tool", String(100)),
    Column("tool_version", String(50)),
    Column("exit_code", Integer),
    Column("report_name", String(200)),
    Column("report_sha256", String(64)),
    Column("duration_s", Float),
    UniqueConstraint("run_id", "item", name="uq_gate_items_run_item"),
)

findings = Table(
    "findings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), ForeignKey("gate_runs.run_id", ondelete="CASCADE"),
           nullable=False),
    Column("item", String(100), nullable=False),
    Column("file", Text, nullable=False),
    Column("line", Integer),
    Column("rule", String(200), nullable=False),
    Column("message", Text, nullable=False),
    Column("severity", String(20), nullable=False),
    Column("suppression", Text),
    Index("ix_findings_run_item", "run_id", "item"),
)

evidence = Table(
    "evidence", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(200), nullable=False),
    Column("gate", String(8), nullable=False),
    Column("version", String(100), nullable=False),
    Column("item", String(100), nullable=False),
    Column("recorded_by", String(200), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("source", String(50), nullable=False),
    Column("note", Text, nullable=False),
    Column("file_name", Text),
    Column("file_sha256", String(64)),
    Column("prev_hash", String(64), nullable=False),
    Column("row_hash", String(64), nullable=False),
)

signoffs = Table(
    "signoffs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(200), nullable=False),
    Column("gate", String(8), nullable=False),
    Column("version", String(100), nullable=False),
    Column("role", String(50), nullable=False),
    Column("signer", String(200), nullable=False),
    Column("decision", String(20), nullable=False),
    Column("comment", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("source", String(50), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("row_hash", String(64), nullable=False),
)

# The newest hash of each append-only chain, so that deleting the last rows is detectable.
chain_heads = Table(
    "chain_heads", metadata,
    Column("chain", String(50), primary_key=True),
    Column("length", Integer, nullable=False),
    Column("head_hash", String(64), nullable=False),
)

CHAINED_TABLES = {"evidence": evidence, "signoffs": signoffs}

incidents = Table(
    "incidents", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("title", Text, nullable=False),
    Column("service", String(200), nullable=False),
    Column("source", String(50), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("opened_by", String(200), nullable=False),
)

# External keys (an Alertmanager group key, a PagerDuty incident id) that lead to an
# incident. One key may lead to several incidents over time; the newest one is current.
incident_keys = Table(
    "incident_keys", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(50), nullable=False),
    Column("key", String(500), nullable=False),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("source", "key", "incident_id", name="uq_incident_keys"),
)

# The bitemporal timeline: occurred_at is when it happened, recorded_at when the store
# learned of it. Rows are never changed; a correction or retraction is a new row whose
# `supersedes` names the row it replaces.
timeline = Table(
    "timeline", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("source", String(50), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("actor_kind", String(10), nullable=False),
    Column("severity", String(2)),
    Column("description", Text, nullable=False),
    Column("details", Text, nullable=False),
    Column("alert_key", String(500)),
    Column("supersedes", Integer, ForeignKey("timeline.id")),
    Column("dedup_key", String(500), unique=True),
    Index("ix_timeline_incident_occurred", "incident_id", "occurred_at"),
    Index("ix_timeline_kind", "kind"),
)

APPEND_ONLY_INCIDENT_TABLES = ("incidents", "incident_keys", "timeline")

# Team messaging. A conversation starts with a person's (or the system's) message and ends
# when none of its messages is pending or processing; its answer aggregates the replies.
team_conversations = Table(
    "team_conversations", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_by", String(200), nullable=False),
    Column("origin", String(50), nullable=False),
    Column("entry_agent", String(100), nullable=False),
    Column("team", String(100)),
    Column("text", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("max_messages", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("answer", Text),
    Index("ix_team_conversations_status", "status"),
)

# The queue: one row per delivery to an agent. status runs pending → processing → done, or
# dead; a processing row whose lease expired is taken again by the next claim.
team_messages = Table(
    "team_messages", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", Integer, ForeignKey("team_conversations.id"), nullable=False),
    Column("parent_id", Integer, ForeignKey("team_messages.id")),
    Column("sender", String(200), nullable=False),
    Column("recipient", String(100), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("depth", Integer, nullable=False),
    Column("hops", Text, nullable=False),
    Column("directed", Text, nullable=False),
    Column("shared_context", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("available_at", DateTime(timezone=True), nullable=False),
    Column("lease_owner", String(100)),
    Column("lease_expires_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("reply", Text),
    Column("files", Text),
    Column("last_error", Text),
    Index("ix_team_messages_mailbox", "recipient", "status", "id"),
    Index("ix_team_messages_status", "status", "available_at"),
    Index("ix_team_messages_conversation", "conversation_id"),
)

# Every agent that was ever sent a message. A claim looks up the oldest open message of each
# mailbox through the index, so its cost grows with the agents, not with the queue.
team_mailboxes = Table(
    "team_mailboxes", metadata,
    Column("agent", String(100), primary_key=True),
)

# Every finished hand-over of a message to an agent; (message_id, attempt) is unique.
team_attempts = Table(
    "team_attempts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", Integer, ForeignKey("team_messages.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("worker", String(100), nullable=False),
    Column("agent", String(100), nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("error", Text),
    UniqueConstraint("message_id", "attempt", name="uq_team_attempts"),
)

team_events = Table(
    "team_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", Integer, ForeignKey("team_conversations.id"), nullable=False),
    Column("message_id", Integer, ForeignKey("team_messages.id")),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("target", String(200)),
    Column("detail", Text, nullable=False),
    Index("ix_team_events_conversation", "conversation_id", "id"),
)

# Texts for people (the incident owner, the person who started a conversation) waiting for
# a channel to carry them; delivered_at stays empty until one does.
team_notifications = Table(
    "team_notifications", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", Integer, ForeignKey("team_conversations.id")),
    Column("message_id", Integer, ForeignKey("team_messages.id")),
    Column("recipient", String(200), nullable=False),
    Column("text", Text, nullable=False),
    Column("dedup_key", String(64), unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    Column("channel", String(50)),
)

# One row per runbook run: what ran, with which non-secret parameters, and how it ended.
runbook_runs = Table(
    "runbook_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(200), nullable=False),
    Column("runbook", String(200), nullable=False),
    Column("runbook_path", Text, nullable=False),
    Column("runbook_sha256", String(64), nullable=False),
    Column("service", String(200), nullable=False),
    Column("version", String(100)),
    Column("environment", String(100), nullable=False),
    Column("mode", String(20), nullable=False),
    Column("parameters", Text, nullable=False),
    Column("operator", String(200), nullable=False),
    Column("no_rollback", Boolean, nullable=False),
    Column("status", String(20), nullable=False),
    Column("exit_code", Integer),
    Column("message", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("rollback_target_s", Float),
    Column("rollback_healthy_s", Float),
    Column("run_dir", Text),
    Column("notebook_path", Text),
    Index("ix_runbook_runs_runbook", "runbook", "id"),
)

# Each step, verification, rollback step and check after the rollback of a run.
runbook_steps = Table(
    "runbook_steps", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runbook_runs.id"), nullable=False),
    Column("phase", String(30), nullable=False),
    Column("number", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("exit_code", Integer),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("output_bytes", Integer, nullable=False),
    Column("output_tail", Text, nullable=False),
    Column("log_path", Text),
    Column("message", Text, nullable=False),
    UniqueConstraint("run_id", "phase", "number", name="uq_runbook_steps_run_phase_number"),
)

# Scheduled jobs. ``next_run_at`` is the next fire in UTC, computed from ``cron`` in
# ``timezone``; the scheduler moves it forward after every fire it handles.
schedules = Table(
    "schedules", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),
    Column("target", Text, nullable=False),
    Column("project", Text, nullable=False),
    Column("parameters", Text, nullable=False),
    Column("cron", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("catch_up", String(10), nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("next_run_at", DateTime(timezone=True)),
)

# One row per fire of a schedule (run, skip or miss) and per run-now. The unique pair
# (schedule_id, scheduled_for) lets only one scheduler, on any machine, take a fire.
schedule_runs = Table(
    "schedule_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("schedule_id", Integer, ForeignKey("schedules.id")),
    Column("schedule_name", String(100), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("target", Text, nullable=False),
    Column("trigger", String(12), nullable=False),
    Column("scheduled_for", DateTime(timezone=True)),
    Column("status", String(12), nullable=False),
    Column("exit_code", Integer),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("scheduler", String(200)),
    Column("pid", Integer),
    Column("lease_expires_at", DateTime(timezone=True)),
    Column("output_dir", Text),
    Column("notebook_path", Text),
    Column("html_path", Text),
    Column("reports_deleted_at", DateTime(timezone=True)),
    Column("message", Text, nullable=False),
    UniqueConstraint("schedule_id", "scheduled_for", name="uq_schedule_runs_fire"),
    Index("ix_schedule_runs_schedule", "schedule_id", "id"),
    Index("ix_schedule_runs_status", "status"),
)

# One row per heartbeat: what it saw (findings), whether that changed since the beat
# before, and whether a model was asked to summarize it.
heartbeats = Table(
    "heartbeats", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("schedule_runs.id")),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("changed", Boolean, nullable=False),
    Column("model_called", Boolean, nullable=False),
    Column("attention", Integer, nullable=False),
    Column("notified", Integer, nullable=False),
    Column("summary", Text, nullable=False),
    Column("findings", Text, nullable=False),
)

# Delivery of one notification over one channel. A long text goes out in parts;
# parts_sent keeps a retry from sending the first parts twice.
notification_deliveries = Table(
    "notification_deliveries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notification_id", Integer, ForeignKey("team_notifications.id"), nullable=False),
    Column("channel", String(50), nullable=False),
    Column("status", String(12), nullable=False),
    Column("parts_total", Integer, nullable=False),
    Column("parts_sent", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    UniqueConstraint("notification_id", "channel", name="uq_notification_deliveries"),
    Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
)

# Every request a channel made for a delivery: the part, the HTTP status and the outcome.
channel_attempts = Table(
    "channel_attempts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", Integer, ForeignKey("notification_deliveries.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("part", Integer, nullable=False),
    Column("http_status", Integer),
    Column("outcome", String(12), nullable=False),
    Column("retry_after_s", Float),
    Column("error", Text),
)

# Small per-channel state, such as Telegram's getUpdates offset.
channel_cursors = Table(
    "channel_cursors", metadata,
    Column("channel", String(50), primary_key=True),
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Messages people sent to the team from a chat; (channel, external_id) makes a repeated
# update a no-op. answered_at is set once the conversation's answer went back to the chat.
channel_inbound = Table(
    "channel_inbound", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(50), nullable=False),
    Column("external_id", String(100), nullable=False),
    Column("chat_id", String(100), nullable=False),
    Column("sender", String(200), nullable=False),
    Column("text", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("conversation_id", Integer, ForeignKey("team_conversations.id")),
    Column("answered_at", DateTime(timezone=True)),
    UniqueConstraint("channel", "external_id", name="uq_channel_inbound"),
)

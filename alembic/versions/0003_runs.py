"""The task catalog, runs, their attempts and their events.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRIORITY_KNOWN = "priority IN ('high', 'normal', 'low')"
STATUS_KNOWN = "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out')"
OUTCOME_KNOWN = (
    "outcome IN ('succeeded', 'failed', 'timed_out', 'cancelled', 'worker_lost', 'interrupted')"
)
KIND_KNOWN = "kind IN ('status', 'progress', 'log', 'result')"
IDEMPOTENCY_KEY_SET = sa.text("idempotency_key IS NOT NULL")


def _json() -> postgresql.JSONB:
    return postgresql.JSONB(none_as_null=True, astext_type=sa.Text())


def _create_tasks() -> None:
    op.create_table(
        "tasks",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("params_schema", _json(), nullable=False),
        sa.Column("timeout_seconds", sa.Double(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("backoff_seconds", sa.Double(), nullable=False),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(PRIORITY_KNOWN, name=op.f("ck_tasks_priority_known")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_tasks")),
    )


def _create_runs() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("task_name", sa.String(length=100), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("timeout_seconds", sa.Double(), nullable=False),
        sa.Column("backoff_seconds", sa.Double(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("retry_of", sa.Uuid(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("progress", sa.Double(), nullable=True),
        sa.Column("progress_message", sa.Text(), nullable=True),
        sa.Column("result", _json(), nullable=True),
        sa.Column("error", _json(), nullable=True),
        sa.Column("last_seq", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("worker_id", sa.String(length=64), nullable=True),
        sa.CheckConstraint(PRIORITY_KNOWN, name=op.f("ck_runs_priority_known")),
        sa.CheckConstraint(STATUS_KNOWN, name=op.f("ck_runs_status_known")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_runs_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["retry_of"], ["runs.id"], name=op.f("fk_runs_retry_of_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    # Each list filter orders by (created_at, id) within it, so keyset pages are index scans.
    op.create_index("ix_runs_created_at_id", "runs", ["created_at", "id"])
    op.create_index("ix_runs_created_by_created_at_id", "runs", ["created_by", "created_at", "id"])
    op.create_index("ix_runs_status_created_at_id", "runs", ["status", "created_at", "id"])
    op.create_index("ix_runs_task_name_created_at_id", "runs", ["task_name", "created_at", "id"])
    op.create_index(
        "ix_runs_idempotency",
        "runs",
        ["created_by", "idempotency_key", "created_at"],
        postgresql_where=IDEMPOTENCY_KEY_SET,
    )
    op.create_index(op.f("ix_runs_retry_of"), "runs", ["retry_of"])


def _create_run_attempts() -> None:
    op.create_table(
        "run_attempts",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("error", _json(), nullable=True),
        sa.CheckConstraint(OUTCOME_KNOWN, name=op.f("ck_run_attempts_outcome_known")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_attempts_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "number", name=op.f("pk_run_attempts")),
    )


def _create_run_events() -> None:
    op.create_table(
        "run_events",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", _json(), nullable=False),
        sa.CheckConstraint(KIND_KNOWN, name=op.f("ck_run_events_kind_known")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_events_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "seq", name=op.f("pk_run_events")),
    )
    # Log pages and each run's latest log lines are range scans of this index.
    op.create_index("ix_run_events_run_id_kind_seq", "run_events", ["run_id", "kind", "seq"])


def upgrade() -> None:
    _create_tasks()
    _create_runs()
    _create_run_attempts()
    _create_run_events()


def downgrade() -> None:
    op.drop_index("ix_run_events_run_id_kind_seq", table_name="run_events")
    op.drop_table("run_events")
    op.drop_table("run_attempts")
    op.drop_index(op.f("ix_runs_retry_of"), table_name="runs")
    op.drop_index("ix_runs_idempotency", table_name="runs", postgresql_where=IDEMPOTENCY_KEY_SET)
    op.drop_index("ix_runs_task_name_created_at_id", table_name="runs")
    op.drop_index("ix_runs_status_created_at_id", table_name="runs")
    op.drop_index("ix_runs_created_by_created_at_id", table_name="runs")
    op.drop_index("ix_runs_created_at_id", table_name="runs")
    op.drop_table("runs")
    op.drop_table("tasks")

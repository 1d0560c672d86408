"""Table definitions: the single source for migrations and repositories."""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names keep Alembic's autogenerate and downgrades predictable.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base carrying the shared metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class WorkerRow(Base):
    """A worker process and its latest heartbeat."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class UserRow(Base):
    """A user; emails are stored case-folded, so the unique index is case-insensitive."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        CheckConstraint("role IN ('admin', 'operator', 'viewer')", name="role_known"),
        # Refusing to delete a plan in use, and each plan's usage, look users up by plan.
        Index("ix_users_plan", "plan"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    plan: Mapped[str] = mapped_column(String(64), ForeignKey("plans.name"))
    password_hash: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SessionRow(Base):
    """A signed-in device."""

    __tablename__ = "sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    user_agent: Mapped[str | None] = mapped_column(String(512))
    ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RefreshTokenRow(Base):
    """A refresh token's hash and whether it was used."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiTokenRow(Base):
    """An API token; only the hash of its secret is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditLogRow(Base):
    """One attempted change. A trigger refuses UPDATE and DELETE: the trail is append-only."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at_id", "at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    request_id: Mapped[str | None] = mapped_column(String(128))


# A column holding None is SQL NULL, not JSON null, so "no result" and IS NULL agree.
Json = JSONB(none_as_null=True)
PRIORITY_KNOWN = "priority IN ('high', 'normal', 'low')"


class TaskRow(Base):
    """A task that a worker registered, with the defaults its runs get."""

    __tablename__ = "tasks"
    __table_args__ = (CheckConstraint(PRIORITY_KNOWN, name="priority_known"),)

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    description: Mapped[str] = mapped_column(Text)
    params_schema: Mapped[dict[str, Any]] = mapped_column(Json)
    timeout_seconds: Mapped[float] = mapped_column(Double)
    max_attempts: Mapped[int] = mapped_column(Integer)
    backoff_seconds: Mapped[float] = mapped_column(Double)
    priority: Mapped[str] = mapped_column(String(8))
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RunRow(Base):
    """One run of a task. Its events and attempts live in tables of their own.

    Every list filter has an index that also orders by (created_at, id), so keyset pages are
    index scans; the free-text search is an ILIKE that scans only what the other filters
    (and visibility) leave, which is why it has no trigram index.
    """

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out')",
            name="status_known",
        ),
        CheckConstraint(PRIORITY_KNOWN, name="priority_known"),
        Index("ix_runs_created_at_id", "created_at", "id"),
        Index("ix_runs_created_by_created_at_id", "created_by", "created_at", "id"),
        Index("ix_runs_status_created_at_id", "status", "created_at", "id"),
        Index("ix_runs_task_name_created_at_id", "task_name", "created_at", "id"),
        # A claim counts its user's RUNNING runs and looks for their oldest due QUEUED run.
        Index(
            "ix_runs_created_by_status_created_at_id", "created_by", "status", "created_at", "id"
        ),
        Index(
            "ix_runs_idempotency",
            "created_by",
            "idempotency_key",
            "created_at",
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    task_name: Mapped[str] = mapped_column(String(100))
    params: Mapped[Any] = mapped_column(Json)
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(8))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    max_attempts: Mapped[int] = mapped_column(Integer)
    timeout_seconds: Mapped[float] = mapped_column(Double)
    backoff_seconds: Mapped[float] = mapped_column(Double)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    retry_of: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    progress: Mapped[float | None] = mapped_column(Double)
    progress_message: Mapped[str | None] = mapped_column(Text)
    result: Mapped[Any] = mapped_column(Json, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(Json)
    last_seq: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    worker_id: Mapped[str | None] = mapped_column(String(64))


class RunAttemptRow(Base):
    """One try at a run, on one worker."""

    __tablename__ = "run_attempts"
    __table_args__ = (
        PrimaryKeyConstraint("run_id", "number"),
        ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        CheckConstraint(
            "outcome IN ('succeeded', 'failed', 'timed_out', 'cancelled', 'worker_lost', "
            "'interrupted')",
            name="outcome_known",
        ),
    )

    run_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    number: Mapped[int] = mapped_column(Integer)
    worker_id: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[dict[str, Any] | None] = mapped_column(Json)


class RunEventRow(Base):
    """One event of a run; the fields a kind does not use are left out of `data`."""

    __tablename__ = "run_events"
    __table_args__ = (
        PrimaryKeyConstraint("run_id", "seq"),
        ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        CheckConstraint("kind IN ('status', 'progress', 'log', 'result')", name="kind_known"),
        # Log pages and each run's latest log lines are range scans of this index.
        Index("ix_run_events_run_id_kind_seq", "run_id", "kind", "seq"),
    )

    run_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    data: Mapped[dict[str, Any]] = mapped_column(Json)


PLAN_BOUNDS = "runs_per_day BETWEEN 1 AND 10000000 AND max_concurrent BETWEEN 1 AND 10000"
PLAN_NAME_FORMAT = "name ~ '^[a-z][a-z0-9_-]{1,31}$'"


class PlanRow(Base):
    """A plan users are on: runs per day, runs at once, and lanes."""

    __tablename__ = "plans"
    __table_args__ = (
        CheckConstraint(PLAN_BOUNDS, name="bounds"),
        CheckConstraint(PLAN_NAME_FORMAT, name="name_format"),
        CheckConstraint(
            "default_priority IN ('high', 'normal', 'low')", name="default_priority_known"
        ),
        CheckConstraint("max_priority IN ('high', 'normal', 'low')", name="max_priority_known"),
    )

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    runs_per_day: Mapped[int] = mapped_column(Integer)
    max_concurrent: Mapped[int] = mapped_column(Integer)
    default_priority: Mapped[str] = mapped_column(String(8))
    max_priority: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class QuotaUsageRow(Base):
    """Runs a user started on one quota day; the row is counted up with each run's insert."""

    __tablename__ = "quota_usage"
    __table_args__ = (
        PrimaryKeyConstraint("user_id", "day"),
        ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        CheckConstraint("runs >= 0", name="runs_not_negative"),
        # Each plan's usage today reads one day's rows.
        Index("ix_quota_usage_day", "day"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    day: Mapped[date] = mapped_column(Date)
    runs: Mapped[int] = mapped_column(Integer)


class NotificationRow(Base):
    """Something a user should know, kept for the notifications query and for alerting."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint("severity IN ('info', 'warning', 'critical')", name="severity_known"),
        Index("ix_notifications_user_id_created_at_id", "user_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

"""Plans with the built-in free, pro and enterprise; quota counters; notifications.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLAN_BOUNDS = "runs_per_day BETWEEN 1 AND 10000000 AND max_concurrent BETWEEN 1 AND 10000"
PLAN_NAME_FORMAT = "name ~ '^[a-z][a-z0-9_-]{1,31}$'"
BUILT_IN_PLANS = """
INSERT INTO plans (name, display_name, runs_per_day, max_concurrent,
                   default_priority, max_priority, created_at)
VALUES ('free', 'Free', 20, 2, 'low', 'normal', now()),
       ('pro', 'Pro', 1000, 10, 'normal', 'high', now()),
       ('enterprise', 'Enterprise', 100000, 100, 'high', 'high', now())
"""


def _json() -> postgresql.JSONB:
    return postgresql.JSONB(none_as_null=True, astext_type=sa.Text())


def _create_plans() -> None:
    op.create_table(
        "plans",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("runs_per_day", sa.Integer(), nullable=False),
        sa.Column("max_concurrent", sa.Integer(), nullable=False),
        sa.Column("default_priority", sa.String(length=8), nullable=False),
        sa.Column("max_priority", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(PLAN_BOUNDS, name=op.f("ck_plans_bounds")),
        sa.CheckConstraint(PLAN_NAME_FORMAT, name=op.f("ck_plans_name_format")),
        sa.CheckConstraint(
            "default_priority IN ('high', 'normal', 'low')",
            name=op.f("ck_plans_default_priority_known"),
        ),
        sa.CheckConstraint(
            "max_priority IN ('high', 'normal', 'low')", name=op.f("ck_plans_max_priority_known")
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_plans")),
    )
    # Every user needs a plan, and new users get `free`.
    op.execute(BUILT_IN_PLANS)


def _put_users_on_plans() -> None:
    # A plan name that no plan has (none existed before) falls back to the default plan.
    op.execute("UPDATE users SET plan = 'free' WHERE plan NOT IN (SELECT name FROM plans)")
    op.create_foreign_key(op.f("fk_users_plan_plans"), "users", "plans", ["plan"], ["name"])
    op.create_index("ix_users_plan", "users", ["plan"])


def _create_quota_usage() -> None:
    op.create_table(
        "quota_usage",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.CheckConstraint("runs >= 0", name=op.f("ck_quota_usage_runs_not_negative")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_quota_usage_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "day", name=op.f("pk_quota_usage")),
    )
    op.create_index("ix_quota_usage_day", "quota_usage", ["day"])


def _create_notifications() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", _json(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "severity IN ('info', 'warning', 'critical')",
            name=op.f("ck_notifications_severity_known"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notifications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index(
        "ix_notifications_user_id_created_at_id",
        "notifications",
        ["user_id", "created_at", "id"],
    )


def upgrade() -> None:
    _create_plans()
    _put_users_on_plans()
    _create_quota_usage()
    _create_notifications()
    # A claim counts its user's RUNNING runs and looks for their oldest due QUEUED run.
    op.create_index(
        "ix_runs_created_by_status_created_at_id",
        "runs",
        ["created_by", "status", "created_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_runs_created_by_status_created_at_id", table_name="runs")
    op.drop_index("ix_notifications_user_id_created_at_id", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index("ix_quota_usage_day", table_name="quota_usage")
    op.drop_table("quota_usage")
    op.drop_index("ix_users_plan", table_name="users")
    op.drop_constraint(op.f("fk_users_plan_plans"), "users", type_="foreignkey")
    op.drop_table("plans")

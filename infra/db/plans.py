"""Repositories of plans, quota counters, the run slots users hold, and notifications.

The daily count is one upsert on the (user, day) row, in the transaction that inserts the
run: concurrent starts of one user queue up on that row, so the limit holds exactly.
"""

import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    ScalarSelect,
    case,
    delete,
    exists,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.paging import Page, PageRequest
from domain.plans.models import Notification, Plan, PlanUsage, Severity, Standing, UserFilter
from domain.runs.models import Priority, Run, RunStatus
from domain.runs.rules import LANE_HEAD_START_SECONDS
from infra.db.keyset import Keyset, read_page
from infra.db.models import Base, NotificationRow, PlanRow, QuotaUsageRow, RunRow, UserRow
from infra.db.run_rows import run_of

PLANS = Base.metadata.tables[PlanRow.__tablename__]
USAGE = Base.metadata.tables[QuotaUsageRow.__tablename__]
NOTIFICATIONS = Base.metadata.tables[NotificationRow.__tablename__]
USERS = Base.metadata.tables[UserRow.__tablename__]
RUNS = Base.metadata.tables[RunRow.__tablename__]
RUNNING = RunStatus.RUNNING.value
QUEUED = RunStatus.QUEUED.value


def plan_values(plan: Plan) -> dict[str, Any]:
    """Column values of a plan."""
    return {
        "name": plan.name,
        "display_name": plan.display_name,
        "runs_per_day": plan.runs_per_day,
        "max_concurrent": plan.max_concurrent,
        "default_priority": plan.default_priority.value,
        "max_priority": plan.max_priority.value,
        "created_at": plan.created_at,
    }


def plan_of(row: Row[Any]) -> Plan:
    """The plan a row of `plans` columns holds."""
    return Plan(
        name=row.name,
        display_name=row.display_name,
        runs_per_day=row.runs_per_day,
        max_concurrent=row.max_concurrent,
        default_priority=Priority(row.default_priority),
        max_priority=Priority(row.max_priority),
        created_at=row.created_at,
    )


def _running_of(user_id: uuid.UUID | ColumnElement[uuid.UUID]) -> ScalarSelect[int]:
    """How many runs of a user (or of each user in a column) are RUNNING."""
    running = select(func.count()).where(RUNS.c.created_by == user_id, RUNS.c.status == RUNNING)
    return running.scalar_subquery()


class SqlPlanRepository:
    """Plans in `plans`, and users' plans in `users.plan`."""

    def __init__(self, session: AsyncSession) -> None:
        self._db = session

    async def get(self, name: str) -> Plan | None:
        """One plan by name."""
        row = (await self._db.execute(select(PLANS).where(PLANS.c.name == name))).one_or_none()
        return plan_of(row) if row else None

    async def all(self) -> list[Plan]:
        """Every plan, smallest daily limit first."""
        query = select(PLANS).order_by(PLANS.c.runs_per_day, PLANS.c.name)
        return [plan_of(row) for row in (await self._db.execute(query)).all()]

    async def add(self, plan: Plan) -> None:
        """Insert a new plan."""
        await self._db.execute(PLANS.insert().values(plan_values(plan)))

    async def save(self, plan: Plan) -> None:
        """Write a changed plan back."""
        values = plan_values(plan)
        await self._db.execute(update(PLANS).where(PLANS.c.name == plan.name).values(values))

    async def delete(self, name: str) -> None:
        """Remove a plan that no user is on."""
        await self._db.execute(delete(PLANS).where(PLANS.c.name == name))

    async def of_user(self, user_id: uuid.UUID) -> Plan | None:
        """The plan a user is on now."""
        query = select(PLANS).join(USERS, USERS.c.plan == PLANS.c.name).where(USERS.c.id == user_id)
        row = (await self._db.execute(query)).one_or_none()
        return plan_of(row) if row else None

    async def count_users(self, name: str) -> int:
        """How many users are on the plan."""
        query = select(func.count()).select_from(USERS).where(USERS.c.plan == name)
        return int(await self._db.scalar(query) or 0)

    async def move_users(self, from_plan: str, to_plan: str) -> int:
        """Put every user of one plan on another; how many moved."""
        moved = await self._db.execute(
            update(USERS).where(USERS.c.plan == from_plan).values(plan=to_plan)
        )
        return int(moved.rowcount)  # type: ignore[attr-defined]

    async def set_user_plan(self, user_id: uuid.UUID, name: str) -> bool:
        """Put one user on a plan; False for an unknown user."""
        moved = await self._db.execute(update(USERS).where(USERS.c.id == user_id).values(plan=name))
        return bool(moved.rowcount)  # type: ignore[attr-defined]

    async def page_users(self, user_filter: UserFilter, request: PageRequest) -> Page[uuid.UUID]:
        """A page of the IDs of users that match, by email, with the total that match."""
        return await read_page(self._db, USER_KEYSET, _user_conditions(user_filter), request)

    async def usage(self, day: date) -> list[PlanUsage]:
        """Every plan with its users, their runs counted on `day` and running now."""
        on_plan = USERS.c.plan == PLANS.c.name
        users = select(func.count()).select_from(USERS).where(on_plan).scalar_subquery()
        runs_today = (
            select(func.coalesce(func.sum(USAGE.c.runs), 0))
            .select_from(USAGE.join(USERS, USERS.c.id == USAGE.c.user_id))
            .where(on_plan, USAGE.c.day == day)
            .scalar_subquery()
        )
        running = (
            select(func.count())
            .select_from(RUNS.join(USERS, USERS.c.id == RUNS.c.created_by))
            .where(on_plan, RUNS.c.status == RUNNING)
            .scalar_subquery()
        )
        query = select(
            PLANS, users.label("users"), runs_today.label("runs_today"), running.label("running")
        ).order_by(PLANS.c.runs_per_day, PLANS.c.name)
        return [
            PlanUsage(plan_of(row), int(row.users), int(row.runs_today), int(row.running))
            for row in (await self._db.execute(query)).all()
        ]


def _user_conditions(f: UserFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if f.plan is not None:
        conditions.append(USERS.c.plan == f.plan)
    if f.role is not None:
        conditions.append(USERS.c.role == f.role.value)
    if f.search:
        conditions.append(
            or_(
                USERS.c.email.icontains(f.search, autoescape=True),
                USERS.c.display_name.icontains(f.search, autoescape=True),
            )
        )
    return conditions


# Emails are unique, so they order users on their own.
USER_KEYSET: Keyset[uuid.UUID] = Keyset(
    table=USERS,
    columns=("email",),
    descending=False,
    convert=lambda row: row.id,
    key_of=lambda row: row.email,
    parse_key=lambda key: (key,),
)


class SqlQuotaRepository:
    """Daily counts in `quota_usage`; who holds run slots, from `runs` itself."""

    def __init__(self, session: AsyncSession) -> None:
        self._db = session

    async def count_run(self, user_id: uuid.UUID, day: date, *, limit: int) -> int | None:
        """Count one more run unless `limit` were counted already; the new count or None."""
        # The first run of a day inserts the row; each later one waits for the row's lock,
        # and the WHERE leaves the row as it is once it holds `limit`: nothing comes back.
        first = insert(USAGE).values(user_id=user_id, day=day, runs=1)
        statement = first.on_conflict_do_update(
            index_elements=["user_id", "day"],
            set_={"runs": USAGE.c.runs + 1},
            where=USAGE.c.runs < limit,
        ).returning(USAGE.c.runs)
        runs = await self._db.scalar(statement)
        return None if runs is None else int(runs)

    async def counted(self, user_id: uuid.UUID, day: date) -> int:
        """How many runs of the user were counted on `day`."""
        query = select(USAGE.c.runs).where(USAGE.c.user_id == user_id, USAGE.c.day == day)
        return int(await self._db.scalar(query) or 0)

    async def standings(self, user_ids: Sequence[uuid.UUID], day: date) -> list[Standing | None]:
        """Each user's plan, runs counted on `day` and running now, in one query."""
        today = USERS.outerjoin(USAGE, (USAGE.c.user_id == USERS.c.id) & (USAGE.c.day == day))
        query = (
            select(
                USERS.c.id.label("user_id"),
                PLANS,
                func.coalesce(USAGE.c.runs, 0).label("runs_today"),
                _running_of(USERS.c.id).label("running"),
            )
            .select_from(today.join(PLANS, PLANS.c.name == USERS.c.plan))
            .where(USERS.c.id.in_(user_ids))
        )
        found = {
            row.user_id: Standing(plan_of(row), int(row.runs_today), int(row.running))
            for row in (await self._db.execute(query)).all()
        }
        return [found.get(user_id) for user_id in user_ids]

    async def lock_slots(self, user_id: uuid.UUID) -> None:
        """Serialize the starts of one user's runs until the transaction ends."""
        name = f"run-slots:{user_id}"
        await self._db.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(name, 0))))

    async def running(self, user_id: uuid.UUID) -> int:
        """How many of the user's runs are RUNNING."""
        return int(await self._db.scalar(select(_running_of(user_id))) or 0)

    async def earlier_due(self, run: Run, *, now: datetime) -> bool:
        """Whether a QUEUED run of the same user ahead of `run` in the queue may start now."""
        ahead = tuple_(_queue_position(), RUNS.c.id) < tuple_(queue_position(run), run.id)
        query = select(exists().where(*_due(run.created_by, now), ahead))
        return bool(await self._db.scalar(query))

    async def next_due(self, user_id: uuid.UUID, *, now: datetime) -> Run | None:
        """The user's QUEUED run that may start now and stands first in the queue."""
        query = (
            select(RUNS).where(*_due(user_id, now)).order_by(_queue_position(), RUNS.c.id).limit(1)
        )
        row = (await self._db.execute(query)).one_or_none()
        return run_of(row) if row else None


def queue_position(run: Run) -> datetime:
    """Where a run stands in the queue: its creation, moved earlier by its lane's head start.

    The order the queue serves runs in, so a user's runs that wait for a free slot start in
    that order too, and a user's HIGH run is not held behind their own LOW backlog.
    """
    return run.created_at - timedelta(seconds=LANE_HEAD_START_SECONDS[run.priority])


def _queue_position() -> ColumnElement[datetime]:
    head_start = case(
        {lane.value: seconds for lane, seconds in LANE_HEAD_START_SECONDS.items()},
        value=RUNS.c.priority,
        else_=0.0,
    )
    return RUNS.c.created_at - func.make_interval(0, 0, 0, 0, 0, 0, head_start)


def _due(user_id: uuid.UUID | None, now: datetime) -> list[ColumnElement[bool]]:
    """Conditions of a user's QUEUED runs that may start at `now`."""
    return [
        RUNS.c.created_by == user_id,
        RUNS.c.status == QUEUED,
        or_(RUNS.c.not_before.is_(None), RUNS.c.not_before <= now),
    ]


def notification_values(notification: Notification) -> dict[str, Any]:
    """Column values of a notification."""
    return {
        "id": notification.id,
        "user_id": notification.user_id,
        "kind": notification.kind,
        "severity": notification.severity.value,
        "message": notification.message,
        "data": notification.data,
        "created_at": notification.created_at,
    }


def notification_of(row: Row[Any]) -> Notification:
    """The notification a `notifications` row holds."""
    return Notification(
        id=row.id,
        user_id=row.user_id,
        kind=row.kind,
        severity=Severity(row.severity),
        message=row.message,
        created_at=row.created_at,
        data=row.data,
    )


def _parse_notification_key(key: str) -> tuple[datetime, uuid.UUID]:
    at, _, notification_id = key.partition("|")
    created_at = datetime.fromisoformat(at)
    if created_at.tzinfo is None:
        raise ValueError("a notification key carries its time zone")
    return created_at, uuid.UUID(notification_id)


NOTIFICATION_KEYSET = Keyset(
    table=NOTIFICATIONS,
    columns=("created_at", "id"),
    descending=True,
    convert=notification_of,
    key_of=lambda row: f"{row.created_at.isoformat()}|{row.id}",
    parse_key=_parse_notification_key,
)


class SqlNotificationRepository:
    """Users' notifications in `notifications`."""

    def __init__(self, session: AsyncSession) -> None:
        self._db = session

    async def add(self, notification: Notification) -> None:
        """Keep a new notification."""
        await self._db.execute(NOTIFICATIONS.insert().values(notification_values(notification)))

    async def page(self, user_id: uuid.UUID, request: PageRequest) -> Page[Notification]:
        """A page of one user's notifications, newest first."""
        conditions = [NOTIFICATIONS.c.user_id == user_id]
        return await read_page(self._db, NOTIFICATION_KEYSET, conditions, request)

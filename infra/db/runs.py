"""Repositories of the task catalog, runs with their attempts, and run events.

They read and write through Core statements, never ORM instances: a unit of work may read
a run, lock it and read it again, and an identity map would hand back the stale copy.
"""

import uuid
from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Row, Select, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import NotFound
from domain.paging import Page, PageRequest
from domain.runs.models import (
    EventKind,
    Run,
    RunAttempt,
    RunEvent,
    RunFilter,
    RunOrder,
    RunStatus,
    Task,
)
from infra.db.keyset import Keyset, read_page
from infra.db.models import Base, RunAttemptRow, RunEventRow, RunRow, TaskRow, WorkerRow
from infra.db.run_rows import (
    attempt_of,
    attempt_values,
    event_data,
    event_of,
    run_of,
    run_values,
    task_of,
    task_values,
)

TASKS = Base.metadata.tables[TaskRow.__tablename__]
RUNS = Base.metadata.tables[RunRow.__tablename__]
ATTEMPTS = Base.metadata.tables[RunAttemptRow.__tablename__]
EVENTS = Base.metadata.tables[RunEventRow.__tablename__]
WORKERS = Base.metadata.tables[WorkerRow.__tablename__]

T = TypeVar("T")


def _grouped(
    keys: Sequence[Hashable], items: Sequence[T], key_of: Callable[[T], Hashable]
) -> list[list[T]]:
    """Items grouped by key in the order of `keys`, keeping their own order within a group."""
    groups: dict[Hashable, list[T]] = {key: [] for key in keys}
    for item in items:
        groups[key_of(item)].append(item)
    return [groups[key] for key in keys]


class SqlTaskRepository:
    """The task catalog in the `tasks` table."""

    def __init__(self, session: AsyncSession) -> None:
        self._db = session

    async def upsert(self, tasks: Sequence[Task]) -> None:
        """Add or replace tasks by name, in one statement."""
        if not tasks:
            return
        statement = insert(TASKS).values([task_values(task) for task in tasks])
        replaced = {name: statement.excluded[name] for name in task_values(tasks[0])}
        await self._db.execute(
            statement.on_conflict_do_update(index_elements=["name"], set_=replaced)
        )

    async def get_many(self, names: Sequence[str]) -> list[Task | None]:
        """Tasks in the order of `names`, None where one is not registered."""
        rows = (await self._db.execute(select(TASKS).where(TASKS.c.name.in_(names)))).all()
        by_name = {row.name: task_of(row) for row in rows}
        return [by_name.get(name) for name in names]

    async def all(self) -> list[Task]:
        """Every registered task, by name."""
        rows = (await self._db.execute(select(TASKS).order_by(TASKS.c.name))).all()
        return [task_of(row) for row in rows]


def _run_key(row: Row[Any]) -> str:
    return f"{row.created_at.isoformat()}|{row.id}"


def _parse_run_key(key: str) -> tuple[datetime, uuid.UUID]:
    at, _, run_id = key.partition("|")
    created_at = datetime.fromisoformat(at)
    if created_at.tzinfo is None:
        raise ValueError("a run key carries its time zone")
    return created_at, uuid.UUID(run_id)


def _run_keyset(order: RunOrder) -> Keyset[Run]:
    return Keyset(
        table=RUNS,
        columns=("created_at", "id"),
        descending=order is RunOrder.CREATED_AT_DESC,
        convert=run_of,
        key_of=_run_key,
        parse_key=_parse_run_key,
    )


def _run_conditions(f: RunFilter) -> list[ColumnElement[bool]]:
    """SQL conditions for a filter; each set field narrows, within its own index."""
    c = RUNS.c
    conditions: list[ColumnElement[bool]] = []
    if f.statuses is not None:
        conditions.append(c.status.in_(sorted(s.value for s in f.statuses)))
    if f.task_name is not None:
        conditions.append(c.task_name == f.task_name)
    if f.created_by is not None:
        conditions.append(c.created_by == f.created_by)
    # Half-open, so consecutive windows neither overlap nor leave a gap.
    if f.created_after is not None:
        conditions.append(c.created_at >= f.created_after)
    if f.created_before is not None:
        conditions.append(c.created_at < f.created_before)
    if f.search:
        # A scan within what the other conditions leave; see RunRow for why no trigram index.
        conditions.append(
            or_(
                c.task_name.icontains(f.search, autoescape=True),
                c.idempotency_key.icontains(f.search, autoescape=True),
                c.error["message"].astext.icontains(f.search, autoescape=True),
            )
        )
    return conditions


class SqlRunRepository:
    """Runs in the `runs` table and their attempts in `run_attempts`."""

    def __init__(self, session: AsyncSession) -> None:
        self._db = session

    async def _runs(self, query: Select[Any]) -> list[Run]:
        return [run_of(row) for row in (await self._db.execute(query)).all()]

    async def add(self, run: Run) -> None:
        """Insert a new run."""
        await self._db.execute(RUNS.insert().values(run_values(run)))

    async def get(self, run_id: uuid.UUID, *, for_update: bool = False) -> Run | None:
        """One run; `for_update` locks its row until the unit of work ends."""
        query = select(RUNS).where(RUNS.c.id == run_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._db.execute(query)).one_or_none()
        return run_of(row) if row else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Run | None]:
        """Runs in the order of `ids`, in one query."""
        rows = (await self._db.execute(select(RUNS).where(RUNS.c.id.in_(ids)))).all()
        by_id = {row.id: run_of(row) for row in rows}
        return [by_id.get(run_id) for run_id in ids]

    async def save(self, run: Run) -> None:
        """Write a changed run back (every field but `last_seq`, which events own)."""
        values = run_values(run)
        del values["last_seq"]
        await self._db.execute(update(RUNS).where(RUNS.c.id == run.id).values(values))

    async def lock_idempotency_key(self, user_id: uuid.UUID | None, key: str) -> None:
        """Serialize starts that share a user and key until the transaction ends."""
        # A transaction-level advisory lock on a 64-bit hash: it needs no row to exist yet.
        name = f"run-idempotency:{user_id or '-'}:{key}"
        await self._db.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(name, 0))))

    async def find_by_idempotency_key(
        self, user_id: uuid.UUID | None, key: str, *, since: datetime
    ) -> Run | None:
        """The newest run of `user_id` with `key` created at or after `since`."""
        creator = RUNS.c.created_by.is_(None) if user_id is None else RUNS.c.created_by == user_id
        query = (
            select(RUNS)
            .where(creator, RUNS.c.idempotency_key == key, RUNS.c.created_at >= since)
            .order_by(RUNS.c.created_at.desc())
            .limit(1)
        )
        row = (await self._db.execute(query)).one_or_none()
        return run_of(row) if row else None

    async def page(self, run_filter: RunFilter, order: RunOrder, request: PageRequest) -> Page[Run]:
        """A page of runs matching `run_filter`, keyset-paged, with the total that match."""
        return await read_page(self._db, _run_keyset(order), _run_conditions(run_filter), request)

    async def for_creators(self, user_ids: Sequence[uuid.UUID], *, limit: int) -> list[list[Run]]:
        """The newest `limit` runs of each user, in the order of `user_ids`, in one query."""
        rank = func.row_number().over(
            partition_by=RUNS.c.created_by, order_by=(RUNS.c.created_at.desc(), RUNS.c.id.desc())
        )
        ranked = select(RUNS, rank.label("rank")).where(RUNS.c.created_by.in_(user_ids)).subquery()
        query = select(ranked).where(ranked.c.rank <= limit).order_by(ranked.c.rank)
        return _grouped(user_ids, await self._runs(query), lambda run: run.created_by)

    async def add_attempt(self, attempt: RunAttempt) -> None:
        """Insert an attempt's start."""
        await self._db.execute(ATTEMPTS.insert().values(attempt_values(attempt)))

    async def save_attempt(self, attempt: RunAttempt) -> None:
        """Write back an attempt's end (by run ID and number)."""
        key = and_(ATTEMPTS.c.run_id == attempt.run_id, ATTEMPTS.c.number == attempt.number)
        await self._db.execute(update(ATTEMPTS).where(key).values(attempt_values(attempt)))

    async def attempts_of(self, run_ids: Sequence[uuid.UUID]) -> list[list[RunAttempt]]:
        """Each run's attempts, oldest first, in the order of `run_ids`, in one query."""
        query = (
            select(ATTEMPTS)
            .where(ATTEMPTS.c.run_id.in_(run_ids))
            .order_by(ATTEMPTS.c.run_id, ATTEMPTS.c.number)
        )
        attempts = [attempt_of(row) for row in (await self._db.execute(query)).all()]
        return _grouped(run_ids, attempts, lambda attempt: attempt.run_id)

    async def running_on_lost_workers(
        self, *, seen_before: datetime, overdue_at: datetime, limit: int
    ) -> list[Run]:
        """RUNNING runs whose worker has no heartbeat since `seen_before`, or none at all,
        or whose current attempt should have timed out before `overdue_at`.

        The rows come locked, skipping rows another reaper holds, so reapers never collide.
        """
        current = and_(ATTEMPTS.c.run_id == RUNS.c.id, ATTEMPTS.c.number == RUNS.c.attempt)
        deadline = ATTEMPTS.c.started_at + func.make_interval(
            0, 0, 0, 0, 0, 0, RUNS.c.timeout_seconds
        )
        lost = or_(
            WORKERS.c.id.is_(None), WORKERS.c.last_seen_at < seen_before, deadline < overdue_at
        )
        joined = RUNS.outerjoin(WORKERS, WORKERS.c.id == RUNS.c.worker_id).outerjoin(
            ATTEMPTS, current
        )
        query = (
            select(RUNS)
            .select_from(joined)
            .where(RUNS.c.status == RunStatus.RUNNING.value, lost)
            .order_by(RUNS.c.started_at)
            .limit(limit)
            .with_for_update(of=RUNS, skip_locked=True)
        )
        return await self._runs(query)

    async def queued_due(self, *, before: datetime, limit: int) -> list[Run]:
        """QUEUED runs that may start before `before` (their `not_before` passed or unset)."""
        due = or_(RUNS.c.not_before.is_(None), RUNS.c.not_before < before)
        query = (
            select(RUNS)
            .where(RUNS.c.status == RunStatus.QUEUED.value, due)
            .order_by(RUNS.c.created_at, RUNS.c.id)
            .limit(limit)
        )
        return await self._runs(query)


def _parse_seq(key: str) -> tuple[int]:
    seq = int(key)
    if seq < 0:
        raise ValueError("a sequence number is never negative")
    return (seq,)


EVENT_KEYSET = Keyset(
    table=EVENTS,
    columns=("seq",),
    descending=False,
    convert=event_of,
    key_of=lambda row: str(row.seq),
    parse_key=_parse_seq,
)


class SqlRunEventRepository:
    """Each run's ordered stream of events in `run_events`."""

    def __init__(self, session: AsyncSession) -> None:
        self._db = session

    async def append(self, run_id: uuid.UUID, event: RunEvent) -> RunEvent:
        """Store `event` under the run's next sequence number and return it with that number.

        Moving `last_seq` locks the run's row, so concurrent appends to one run queue up
        behind each other and every number is used exactly once.
        """
        next_seq = (
            update(RUNS)
            .where(RUNS.c.id == run_id)
            .values(last_seq=RUNS.c.last_seq + 1)
            .returning(RUNS.c.last_seq)
        )
        seq = await self._db.scalar(next_seq)
        if seq is None:
            raise NotFound("the run does not exist")
        stored = replace(event, run_id=run_id, seq=seq)
        values = {
            "run_id": run_id,
            "seq": seq,
            "kind": event.kind.value,
            "at": event.at,
            "data": event_data(stored),
        }
        await self._db.execute(EVENTS.insert().values(values))
        return stored

    async def after(
        self, run_id: uuid.UUID, after_seq: int, *, limit: int, until_seq: int | None = None
    ) -> list[RunEvent]:
        """Up to `limit` events with after_seq < seq (<= until_seq when given), in order."""
        query = select(EVENTS).where(EVENTS.c.run_id == run_id, EVENTS.c.seq > after_seq)
        if until_seq is not None:
            query = query.where(EVENTS.c.seq <= until_seq)
        query = query.order_by(EVENTS.c.seq).limit(limit)
        return [event_of(row) for row in (await self._db.execute(query)).all()]

    async def page(
        self, run_id: uuid.UUID, kinds: frozenset[EventKind], request: PageRequest
    ) -> Page[RunEvent]:
        """A page of one run's events of `kinds`, in sequence order; keys are sequence numbers."""
        conditions = [
            EVENTS.c.run_id == run_id,
            EVENTS.c.kind.in_(sorted(kind.value for kind in kinds)),
        ]
        return await read_page(self._db, EVENT_KEYSET, conditions, request)

    async def latest(
        self, run_ids: Sequence[uuid.UUID], kind: EventKind, *, limit: int
    ) -> list[list[RunEvent]]:
        """Each run's newest `limit` events of `kind`, oldest first, in one query."""
        rank = func.row_number().over(partition_by=EVENTS.c.run_id, order_by=EVENTS.c.seq.desc())
        ranked = (
            select(EVENTS, rank.label("rank"))
            .where(EVENTS.c.run_id.in_(run_ids), EVENTS.c.kind == kind.value)
            .subquery()
        )
        query = select(ranked).where(ranked.c.rank <= limit).order_by(ranked.c.seq)
        events = [event_of(row) for row in (await self._db.execute(query)).all()]
        return _grouped(run_ids, events, lambda event: event.run_id)

    async def count(self, run_id: uuid.UUID, kind: EventKind) -> int:
        """How many events of `kind` a run has."""
        query = select(func.count()).where(EVENTS.c.run_id == run_id, EVENTS.c.kind == kind.value)
        return int(await self._db.scalar(query) or 0)

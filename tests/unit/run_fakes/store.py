"""The fake database: repositories over one in-memory state, and a unit of work over a copy.

Commit makes the copy the store, so a test can tell what was committed when the queue or
the bus was called.
"""

import copy
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, NoReturn, Self

from domain.audit import AuditEntry, AuditFilter
from domain.identity.ports import ApiTokenRepository, SessionRepository, UserRepository
from domain.paging import Page, PageRequest
from domain.plans.ports import NotificationRepository, PlanRepository, QuotaRepository
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


def page_of(items: Sequence[Any], keys: Sequence[str], request: PageRequest) -> Page[Any]:
    """A page of `items` (already in list order) by their keys, either way."""
    position = {key: index for index, key in enumerate(keys)}
    start, end = 0, len(items)
    if request.after is not None:
        start = position[request.after] + 1
    if request.before is not None:
        end = position[request.before]
    if request.backward:
        begin = max(start, end - request.size)
        chosen = range(begin, end)
        has_next, has_previous = False, begin > start
    else:
        stop = min(end, start + request.size)
        chosen = range(start, stop)
        has_next, has_previous = stop < end, False
    return Page(
        items=[items[i] for i in chosen],
        keys=[keys[i] for i in chosen],
        has_next=has_next,
        has_previous=has_previous,
        total_count=len(items),
    )


@dataclass
class StoreState:
    """Everything the fake database holds."""

    tasks: dict[str, Task] = field(default_factory=dict)
    runs: dict[uuid.UUID, Run] = field(default_factory=dict)
    attempts: dict[uuid.UUID, list[RunAttempt]] = field(default_factory=dict)
    events: dict[uuid.UUID, list[RunEvent]] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    # Worker ID to its latest heartbeat.
    heartbeats: dict[str, datetime] = field(default_factory=dict)


class FakeTaskRepository:
    """The task catalog in memory."""

    def __init__(self, state: StoreState) -> None:
        self._state = state

    async def upsert(self, tasks: Sequence[Task]) -> None:
        self._state.tasks.update((task.name, task) for task in tasks)

    async def get_many(self, names: Sequence[str]) -> list[Task | None]:
        return [self._state.tasks.get(name) for name in names]

    async def all(self) -> list[Task]:
        return sorted(self._state.tasks.values(), key=lambda task: task.name)


def _matches(run: Run, run_filter: RunFilter) -> bool:
    found = (run.task_name, run.idempotency_key or "", run.error.message if run.error else "")
    return (
        (run_filter.statuses is None or run.status in run_filter.statuses)
        and (run_filter.task_name is None or run.task_name == run_filter.task_name)
        and (run_filter.created_by is None or run.created_by == run_filter.created_by)
        and (run_filter.created_after is None or run.created_at >= run_filter.created_after)
        and (run_filter.created_before is None or run.created_at < run_filter.created_before)
        and (
            run_filter.search is None
            or any(run_filter.search.lower() in text.lower() for text in found)
        )
    )


class FakeRunRepository:
    """Runs and attempts in memory; it hands out copies, as a database would."""

    def __init__(self, state: StoreState, locks: list[uuid.UUID]) -> None:
        self._state = state
        self._locks = locks
        self.key_locks: list[tuple[uuid.UUID | None, str]] = []

    async def add(self, run: Run) -> None:
        assert run.id not in self._state.runs
        self._state.runs[run.id] = replace(run, last_seq=0)
        self._state.attempts[run.id] = []
        self._state.events[run.id] = []

    async def get(self, run_id: uuid.UUID, *, for_update: bool = False) -> Run | None:
        if for_update:
            self._locks.append(run_id)
        run = self._state.runs.get(run_id)
        return None if run is None else replace(run)

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Run | None]:
        return [await self.get(run_id) for run_id in ids]

    async def save(self, run: Run) -> None:
        stored = self._state.runs[run.id]
        self._state.runs[run.id] = replace(run, last_seq=stored.last_seq)

    async def lock_idempotency_key(self, user_id: uuid.UUID | None, key: str) -> None:
        self.key_locks.append((user_id, key))

    async def find_by_idempotency_key(
        self, user_id: uuid.UUID | None, key: str, *, since: datetime
    ) -> Run | None:
        found = [
            run
            for run in self._state.runs.values()
            if run.created_by == user_id and run.idempotency_key == key and run.created_at >= since
        ]
        return replace(max(found, key=lambda run: run.created_at)) if found else None

    async def page(self, run_filter: RunFilter, order: RunOrder, request: PageRequest) -> Page[Run]:
        runs = sorted(
            (run for run in self._state.runs.values() if _matches(run, run_filter)),
            key=lambda run: (run.created_at, run.id),
            reverse=order is RunOrder.CREATED_AT_DESC,
        )
        return page_of([replace(run) for run in runs], [str(run.id) for run in runs], request)

    async def for_creators(self, user_ids: Sequence[uuid.UUID], *, limit: int) -> list[list[Run]]:
        newest = sorted(self._state.runs.values(), key=lambda run: run.created_at, reverse=True)
        return [
            [replace(run) for run in newest if run.created_by == user_id][:limit]
            for user_id in user_ids
        ]

    async def add_attempt(self, attempt: RunAttempt) -> None:
        self._state.attempts[attempt.run_id].append(replace(attempt))

    async def save_attempt(self, attempt: RunAttempt) -> None:
        attempts = self._state.attempts[attempt.run_id]
        index = next(i for i, a in enumerate(attempts) if a.number == attempt.number)
        attempts[index] = replace(attempt)

    async def attempts_of(self, run_ids: Sequence[uuid.UUID]) -> list[list[RunAttempt]]:
        return [[replace(a) for a in self._state.attempts.get(i, [])] for i in run_ids]

    async def running_on_lost_workers(
        self, *, seen_before: datetime, overdue_at: datetime, limit: int
    ) -> list[Run]:
        beats = self._state.heartbeats

        def overdue(run: Run) -> bool:
            current = [a for a in self._state.attempts.get(run.id, []) if a.number == run.attempt]
            deadline = timedelta(seconds=run.timeout_seconds)
            return any(a.started_at + deadline < overdue_at for a in current)

        lost = [
            run
            for run in self._state.runs.values()
            if run.status is RunStatus.RUNNING
            and (run.worker_id not in beats or beats[run.worker_id] < seen_before or overdue(run))
        ]
        self._locks.extend(run.id for run in lost[:limit])
        return [replace(run) for run in lost[:limit]]

    async def queued_due(self, *, before: datetime, limit: int) -> list[Run]:
        due = [
            run
            for run in self._state.runs.values()
            if run.status is RunStatus.QUEUED
            and (run.not_before is None or run.not_before < before)
        ]
        return [replace(run) for run in due[:limit]]


class FakeRunEventRepository:
    """Each run's events in memory, numbered on append."""

    def __init__(self, state: StoreState) -> None:
        self._state = state

    async def append(self, run_id: uuid.UUID, event: RunEvent) -> RunEvent:
        run = self._state.runs[run_id]
        run.last_seq += 1
        stored = replace(event, seq=run.last_seq)
        self._state.events[run_id].append(stored)
        return stored

    async def after(
        self, run_id: uuid.UUID, after_seq: int, *, limit: int, until_seq: int | None = None
    ) -> list[RunEvent]:
        events = self._state.events.get(run_id, [])
        chosen = [
            e for e in events if e.seq > after_seq and (until_seq is None or e.seq <= until_seq)
        ]
        return chosen[:limit]

    async def page(
        self, run_id: uuid.UUID, kinds: frozenset[EventKind], request: PageRequest
    ) -> Page[RunEvent]:
        events = [e for e in self._state.events.get(run_id, []) if e.kind in kinds]
        return page_of(events, [str(e.seq) for e in events], request)

    async def latest(
        self, run_ids: Sequence[uuid.UUID], kind: EventKind, *, limit: int
    ) -> list[list[RunEvent]]:
        return [
            [e for e in self._state.events.get(run_id, []) if e.kind is kind][-limit:]
            for run_id in run_ids
        ]

    async def count(self, run_id: uuid.UUID, kind: EventKind) -> int:
        return sum(e.kind is kind for e in self._state.events.get(run_id, []))


class FakeAuditRepository:
    """The audit trail in memory."""

    def __init__(self, state: StoreState) -> None:
        self._state = state

    async def add(self, entry: AuditEntry) -> None:
        self._state.audit.append(entry)

    async def page(self, audit_filter: AuditFilter, request: PageRequest) -> Page[AuditEntry]:
        entries = self._state.audit
        return page_of(entries, [str(entry.id) for entry in entries], request)


def _not_for_runs() -> NoReturn:
    raise AssertionError("run services touch neither identities nor plans")


class FakeUnitOfWork:
    """A transaction over a copy of the store; commit makes the copy the store."""

    def __init__(self, store: "FakeStore") -> None:
        self._store = store
        self.state = copy.deepcopy(store.state)
        self.tasks = FakeTaskRepository(self.state)
        self.runs = FakeRunRepository(self.state, store.locks)
        self.run_events = FakeRunEventRepository(self.state)
        self.audit = FakeAuditRepository(self.state)

    @property
    def users(self) -> UserRepository:
        _not_for_runs()

    @property
    def sessions(self) -> SessionRepository:
        _not_for_runs()

    @property
    def tokens(self) -> ApiTokenRepository:
        _not_for_runs()

    @property
    def plans(self) -> PlanRepository:
        _not_for_runs()

    @property
    def quotas(self) -> QuotaRepository:
        _not_for_runs()

    @property
    def notifications(self) -> NotificationRepository:
        _not_for_runs()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def commit(self) -> None:
        self._store.state = copy.deepcopy(self.state)
        self._store.commits += 1


class FakeStore:
    """The fake database: opens units of work over its committed state."""

    def __init__(self) -> None:
        self.state = StoreState()
        self.commits = 0
        # Runs fetched FOR UPDATE (or locked by the reaper's query), in order.
        self.locks: list[uuid.UUID] = []

    def __call__(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)

    def run(self, run_id: uuid.UUID) -> Run:
        """A committed run."""
        return self.state.runs[run_id]

    def events(self, run_id: uuid.UUID) -> list[RunEvent]:
        """A run's committed events."""
        return self.state.events[run_id]

    def attempts(self, run_id: uuid.UUID) -> list[RunAttempt]:
        """A run's committed attempts."""
        return self.state.attempts[run_id]

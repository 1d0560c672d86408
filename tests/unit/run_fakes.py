"""In-memory fakes of the run ports, and a world that wires them to the run services.

The fake unit of work works on a copy of the store and publishes it on commit, so a test can
tell what was committed when the queue or the bus was called.
"""

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, NoReturn, Self

from domain.audit import AuditEntry, AuditFilter
from domain.errors import Unavailable
from domain.identity.models import Role, Scope, User, Viewer
from domain.identity.ports import ApiTokenRepository, SessionRepository, UserRepository
from domain.identity.rules import ROLE_SCOPES
from domain.paging import Page, PageRequest
from domain.runs.execution import RunExecutor
from domain.runs.models import (
    EventKind,
    Priority,
    Run,
    RunAttempt,
    RunEvent,
    RunFilter,
    RunOrder,
    RunStatus,
    RunUpdate,
    Task,
    TaskDefaults,
)
from domain.runs.policy import RunPolicy
from domain.runs.recovery import RunRecovery
from domain.runs.services import RunService

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


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

    async def running_on_lost_workers(self, *, seen_before: datetime, limit: int) -> list[Run]:
        beats = self._state.heartbeats
        lost = [
            run
            for run in self._state.runs.values()
            if run.status is RunStatus.RUNNING
            and (run.worker_id not in beats or beats[run.worker_id] < seen_before)
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
    raise AssertionError("run services never touch identities")


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


class FakeClock:
    """A clock that moves only when told."""

    def __init__(self, at: datetime = EPOCH) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.at += timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class QueueCall:
    """One call the queue received, with the run's committed status at that moment."""

    action: str
    run_id: uuid.UUID
    at: datetime | None
    committed_status: RunStatus | None


class FakeQueue:
    """A queue of run IDs; `down` makes every call fail as Redis being away would."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store
        self.jobs: dict[uuid.UUID, datetime] = {}
        self.calls: list[QueueCall] = []
        self.down = False

    def _record(self, action: str, run_id: uuid.UUID, at: datetime | None = None) -> None:
        run = self._store.state.runs.get(run_id)
        self.calls.append(QueueCall(action, run_id, at, run.status if run else None))
        if self.down:
            raise Unavailable("the queue is unavailable")

    async def enqueue(self, run_id: uuid.UUID, priority: Priority, *, at: datetime) -> bool:
        self._record("enqueue", run_id, at)
        if run_id in self.jobs:
            return False
        self.jobs[run_id] = at
        return True

    async def requeue(self, run_id: uuid.UUID, priority: Priority, *, at: datetime) -> None:
        self._record("requeue", run_id, at)
        self.jobs[run_id] = at

    async def abort(self, run_id: uuid.UUID) -> None:
        self._record("abort", run_id)

    async def missing(self, run_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        if self.down:
            raise Unavailable("the queue is unavailable")
        return {run_id for run_id in run_ids if run_id not in self.jobs}

    def actions(self, action: str) -> list[uuid.UUID]:
        """The runs that calls of `action` named, in order."""
        return [call.run_id for call in self.calls if call.action == action]


# What a watcher's queue may hold: an event, an error to raise, or None for the end.
Delivery = RunEvent | Exception | None


class FakeBus:
    """Live events in memory. Publishing checks the event was committed first.

    With `deliver` False, published events are only recorded and a test delivers them.
    """

    def __init__(self, store: FakeStore) -> None:
        self._store = store
        self.published: list[RunEvent] = []
        self.updates: list[RunUpdate] = []
        self.uncommitted: list[RunEvent] = []
        self.failure: Exception | None = None
        self.deliver_live = True
        self.watchers: dict[uuid.UUID, list[asyncio.Queue[Delivery]]] = {}
        self.update_watchers: list[asyncio.Queue[RunUpdate]] = []

    async def publish(self, event: RunEvent) -> None:
        if self.failure is not None:
            raise self.failure
        if event not in self._store.state.events.get(event.run_id, []):
            self.uncommitted.append(event)
        self.published.append(event)
        if self.deliver_live:
            self.deliver(event.run_id, event)

    async def publish_update(self, update: RunUpdate) -> None:
        if self.failure is not None:
            raise self.failure
        self.updates.append(update)
        for watcher in self.update_watchers:
            watcher.put_nowait(update)

    def deliver(self, run_id: uuid.UUID, item: Delivery) -> None:
        """Hand `item` to every watcher of the run."""
        for watcher in self.watchers.get(run_id, []):
            watcher.put_nowait(item)

    @asynccontextmanager
    async def watch(self, run_id: uuid.UUID) -> AsyncIterator[AsyncIterator[RunEvent]]:
        inbox: asyncio.Queue[Delivery] = asyncio.Queue()
        self.watchers.setdefault(run_id, []).append(inbox)
        try:
            yield _drain(inbox)
        finally:
            self.watchers[run_id].remove(inbox)

    @asynccontextmanager
    async def watch_updates(self) -> AsyncIterator[AsyncIterator[RunUpdate]]:
        inbox: asyncio.Queue[RunUpdate] = asyncio.Queue()
        self.update_watchers.append(inbox)
        try:
            yield _forever(inbox)
        finally:
            self.update_watchers.remove(inbox)

    def watching(self, run_id: uuid.UUID) -> int:
        """How many watchers a run has now."""
        return len(self.watchers.get(run_id, []))


async def _drain(inbox: "asyncio.Queue[Delivery]") -> AsyncIterator[RunEvent]:
    while (item := await inbox.get()) is not None:
        if isinstance(item, Exception):
            raise item
        yield item


async def _forever(inbox: "asyncio.Queue[RunUpdate]") -> AsyncIterator[RunUpdate]:
    while True:
        yield await inbox.get()


_TYPES: dict[str, type | tuple[type, ...]] = {
    "integer": int,
    "number": (int, float),
    "string": str,
    "boolean": bool,
    "object": dict,
    "array": list,
}


class FakeParamsValidator:
    """Checks `type`, `required` and `properties` of a JSON Schema, reporting every path."""

    def errors(self, schema: Mapping[str, Any], params: Any) -> list[tuple[list[str | int], str]]:
        return list(self._walk(schema, params, []))

    def _walk(
        self, schema: Mapping[str, Any], value: Any, path: list[str | int]
    ) -> list[tuple[list[str | int], str]]:
        expected = schema.get("type")
        wrong_bool = isinstance(value, bool) and expected in ("integer", "number")
        if expected and (wrong_bool or not isinstance(value, _TYPES[expected])):
            return [(path, f"expected {expected}")]
        if not isinstance(value, dict):
            return []
        found = [
            ([*path, name], "is required")
            for name in schema.get("required", [])
            if name not in value
        ]
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                found += self._walk(sub, value[name], [*path, name])
        return found


def make_viewer(role: Role = Role.OPERATOR, scopes: frozenset[Scope] | None = None) -> Viewer:
    """A signed-in viewer with a fresh user of `role`; scopes default to the role's."""
    user = User(
        id=uuid.uuid4(),
        email=f"{uuid.uuid4().hex[:8]}@example.com",
        display_name="someone",
        role=role,
        plan="free",
        password_hash="x",
        is_active=True,
        created_at=EPOCH,
    )
    return Viewer(user=user, scopes=ROLE_SCOPES[role] if scopes is None else scopes)


SUM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["a", "b"],
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
}


def make_task(name: str = "sum", **defaults: Any) -> Task:
    """A task adding two integers, with given defaults."""
    return Task(
        name=name,
        description="adds two numbers",
        params_schema=SUM_SCHEMA,
        defaults=TaskDefaults(**defaults),
        registered_at=EPOCH,
    )


class World:
    """The run services over fakes, sharing one store, clock, queue and bus."""

    def __init__(self, policy: RunPolicy | None = None, rand: Callable[[], float] = lambda: 0.5):
        self.policy = policy or RunPolicy()
        self.store = FakeStore()
        self.clock = FakeClock()
        self.queue = FakeQueue(self.store)
        self.bus = FakeBus(self.store)
        self.service = RunService(
            uow=self.store,
            queue=self.queue,
            bus=self.bus,
            validator=FakeParamsValidator(),
            clock=self.clock,
            policy=self.policy,
        )
        self.executor = RunExecutor(
            uow=self.store,
            queue=self.queue,
            bus=self.bus,
            clock=self.clock,
            policy=self.policy,
            rand=rand,
        )
        self.recovery = RunRecovery(
            uow=self.store,
            queue=self.queue,
            bus=self.bus,
            clock=self.clock,
            policy=self.policy,
            rand=rand,
        )

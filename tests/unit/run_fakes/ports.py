"""Fakes of the clock, the run queue, the event bus and the parameter validator."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.errors import Unavailable
from domain.runs.models import Priority, RunEvent, RunStatus, RunUpdate
from tests.unit.run_fakes.store import FakeStore

# Where fake time starts.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


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

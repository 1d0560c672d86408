"""Ports the run services need: storage, the queue, live events and parameter checks."""

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from domain.paging import Page, PageRequest
from domain.runs.models import (
    EventKind,
    Priority,
    Run,
    RunAttempt,
    RunEvent,
    RunFilter,
    RunOrder,
    RunUpdate,
    Task,
)


class TaskRepository(Protocol):
    """The catalog of tasks that workers registered."""

    async def upsert(self, tasks: Sequence[Task]) -> None:
        """Add or replace tasks by name."""
        ...

    async def get_many(self, names: Sequence[str]) -> list[Task | None]:
        """Tasks in the order of `names`, None where one is not registered."""
        ...

    async def all(self) -> list[Task]:
        """Every registered task, by name."""
        ...


class RunRepository(Protocol):
    """Runs and their attempts."""

    async def add(self, run: Run) -> None: ...

    async def get(self, run_id: uuid.UUID, *, for_update: bool = False) -> Run | None:
        """One run; `for_update` locks its row until the unit of work ends."""
        ...

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Run | None]:
        """Runs in the order of `ids`, in one query."""
        ...

    async def save(self, run: Run) -> None:
        """Write a changed run back (every field but `last_seq`, which events own)."""
        ...

    async def lock_idempotency_key(self, user_id: uuid.UUID | None, key: str) -> None:
        """Serialize starts that share a user and key until the unit of work ends."""
        ...

    async def find_by_idempotency_key(
        self, user_id: uuid.UUID | None, key: str, *, since: datetime
    ) -> Run | None:
        """The newest run of `user_id` with `key` created at or after `since`."""
        ...

    async def page(self, run_filter: RunFilter, order: RunOrder, request: PageRequest) -> Page[Run]:
        """A page of runs matching `run_filter`, keyset-paged, with the total that match."""
        ...

    async def for_creators(self, user_ids: Sequence[uuid.UUID], *, limit: int) -> list[list[Run]]:
        """The newest `limit` runs of each user, in the order of `user_ids`, in one query."""
        ...

    async def add_attempt(self, attempt: RunAttempt) -> None: ...

    async def save_attempt(self, attempt: RunAttempt) -> None:
        """Write back an attempt's end (by run ID and number)."""
        ...

    async def attempts_of(self, run_ids: Sequence[uuid.UUID]) -> list[list[RunAttempt]]:
        """Each run's attempts, oldest first, in the order of `run_ids`, in one query."""
        ...

    async def running_on_lost_workers(
        self, *, seen_before: datetime, overdue_at: datetime, limit: int
    ) -> list[Run]:
        """RUNNING runs whose worker has no heartbeat since `seen_before`, or none at all,
        or whose current attempt should have timed out before `overdue_at`.

        The rows come locked, skipping rows another reaper holds, so reapers never collide.
        """
        ...

    async def queued_due(self, *, before: datetime, limit: int) -> list[Run]:
        """QUEUED runs that may start before `before` (their `not_before` passed or unset)."""
        ...


class RunEventRepository(Protocol):
    """Each run's ordered stream of events."""

    async def append(self, run_id: uuid.UUID, event: RunEvent) -> RunEvent:
        """Store `event` under the run's next sequence number and return it with that number.

        The `seq` of `event` is ignored. The run's `last_seq` moves in the same statement,
        which also locks the run's row, so concurrent appends to one run never collide.
        """
        ...

    async def after(
        self, run_id: uuid.UUID, after_seq: int, *, limit: int, until_seq: int | None = None
    ) -> list[RunEvent]:
        """Up to `limit` events with after_seq < seq (<= until_seq when given), in order."""
        ...

    async def page(
        self, run_id: uuid.UUID, kinds: frozenset[EventKind], request: PageRequest
    ) -> Page[RunEvent]:
        """A page of one run's events of `kinds`, in sequence order; keys are sequence numbers."""
        ...

    async def latest(
        self, run_ids: Sequence[uuid.UUID], kind: EventKind, *, limit: int
    ) -> list[list[RunEvent]]:
        """Each run's newest `limit` events of `kind`, oldest first, in one query."""
        ...

    async def count(self, run_id: uuid.UUID, kind: EventKind) -> int:
        """How many events of `kind` a run has."""
        ...


class RunQueue(Protocol):
    """Hands runs to workers. It carries only run IDs: PostgreSQL holds the rest."""

    async def enqueue(self, run_id: uuid.UUID, priority: Priority, *, at: datetime) -> bool:
        """Queue the run to start no earlier than `at`; False if it is already queued."""
        ...

    async def requeue(self, run_id: uuid.UUID, priority: Priority, *, at: datetime) -> None:
        """Queue the run again, dropping whatever a lost worker left of its earlier job."""
        ...

    async def abort(self, run_id: uuid.UUID) -> None:
        """Ask the worker running the run to stop it now."""
        ...

    async def missing(self, run_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Those of `run_ids` that the queue holds no job for."""
        ...


class EventBus(Protocol):
    """Carries live events from workers to every API process. Delivery is best effort:

    subscribers close gaps from the event store, which is the truth.
    """

    async def publish(self, event: RunEvent) -> None: ...

    async def publish_update(self, update: RunUpdate) -> None: ...

    def watch(self, run_id: uuid.UUID) -> AbstractAsyncContextManager[AsyncIterator[RunEvent]]:
        """Live events of one run from the moment of entering, in order of arrival.

        The iterator raises `StreamLagged` when its consumer fell too far behind.
        """
        ...

    def watch_updates(self) -> AbstractAsyncContextManager[AsyncIterator[RunUpdate]]:
        """Live updates of every run, from the moment of entering."""
        ...


class ParamsValidator(Protocol):
    """Checks parameters against a task's JSON Schema."""

    def errors(self, schema: Mapping[str, Any], params: Any) -> list[tuple[list[str | int], str]]:
        """Every violation as (path into the parameters, message); empty when valid."""
        ...

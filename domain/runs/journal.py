"""Writing a run's change with its events, and telling Redis about it once committed.

PostgreSQL is the truth and Redis only follows it, so nothing here that touches Redis may
fail the change: the queue's reconciler and the subscribers' gap filling repair what is lost.
"""

import logging
import uuid
from collections.abc import Awaitable, Sequence
from datetime import datetime

from domain.errors import Unavailable
from domain.ports import UnitOfWork
from domain.runs import lifecycle
from domain.runs.models import AttemptOutcome, EventKind, Run, RunError, RunEvent, RunUpdate
from domain.runs.ports import EventBus

log = logging.getLogger("taskyard.runs")

# Kinds of event that change what a list of runs shows.
_LIST_CHANGES = frozenset({EventKind.STATUS, EventKind.RESULT})


async def append(uow: UnitOfWork, run: Run, events: Sequence[RunEvent]) -> list[RunEvent]:
    """Append the run's events in order; `run.last_seq` follows the store."""
    stored = [await uow.run_events.append(run.id, event) for event in events]
    if stored:
        run.last_seq = stored[-1].seq
    return stored


async def record(uow: UnitOfWork, run: Run, events: Sequence[RunEvent]) -> list[RunEvent]:
    """Save a changed run together with the events that report the change."""
    await uow.runs.save(run)
    return await append(uow, run, events)


async def end_attempt(
    uow: UnitOfWork,
    run: Run,
    outcome: AttemptOutcome,
    now: datetime,
    error: RunError | None = None,
) -> None:
    """Record how the run's current attempt ended."""
    [attempts] = await uow.runs.attempts_of([run.id])
    for attempt in attempts:
        if attempt.number == run.attempt:
            lifecycle.end_attempt(attempt, outcome, now, error)
            await uow.runs.save_attempt(attempt)


async def publish(bus: EventBus, run: Run, events: Sequence[RunEvent]) -> None:
    """Publish committed events, and the run's new state when its status was reported."""
    try:
        for event in events:
            await bus.publish(event)
        changes = [event for event in events if event.kind in _LIST_CHANGES]
        if changes:
            await bus.publish_update(
                RunUpdate(
                    run_id=run.id,
                    status=run.status,
                    task_name=run.task_name,
                    created_by=run.created_by,
                    at=changes[-1].at,
                )
            )
    except Exception:
        # Subscribers fill gaps from the store, so a lost publish costs only latency.
        log.warning("could not publish events of run %s", run.id, exc_info=True)


async def tell_queue(call: Awaitable[object], run_id: uuid.UUID, action: str) -> bool:
    """Await a queue call, tolerating a queue that is down; whether it went through."""
    try:
        await call
    except Unavailable:
        # The run is safe in PostgreSQL; the reconciler or the worker's own checks catch up.
        log.warning("could not %s run %s: the queue is unavailable", action, run_id)
        return False
    return True

"""The worker's side of a run: claim an attempt, report on it, and end it.

Every write checks that the run still belongs to the claimed attempt, so a worker that was
given up for lost can never overwrite what its successor did.
"""

import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.plans.limits import PlanLimits
from domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from domain.runs import journal, lifecycle, rules
from domain.runs.models import (
    AttemptOutcome,
    EventKind,
    LogLevel,
    Run,
    RunError,
    RunEvent,
    RunStatus,
)
from domain.runs.policy import RunPolicy
from domain.runs.ports import EventBus, RunQueue


class LostOwnership(Exception):
    """The run no longer belongs to this attempt; its work must stop without writing."""


@dataclass(frozen=True, slots=True)
class Claim:
    """A started attempt: the run as it was when the attempt began."""

    run: Run
    worker_id: str

    @property
    def attempt(self) -> int:
        """The attempt's number, from 1."""
        return self.run.attempt


@dataclass(frozen=True, slots=True)
class Deferred:
    """The run may not start before `at` (a retry's back-off, or its plan's slots are full).

    Ask again then.
    """

    at: datetime


@dataclass(frozen=True, slots=True)
class RetryAt:
    """The attempt failed and the run waits, QUEUED, for another attempt at `at`."""

    at: datetime


@dataclass(frozen=True, slots=True)
class Finished:
    """The run reached its final status."""

    status: RunStatus


# A step of an attempt: changes the locked run, stores its events and returns them.
_Step = Callable[[UnitOfWork, Run, datetime], Awaitable[list[RunEvent]]]


class RunExecutor:
    """Records what a worker does with a run, committing each step before publishing it."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        queue: RunQueue,
        bus: EventBus,
        clock: Clock,
        policy: RunPolicy,
        rand: Callable[[], float] = random.random,
        limits: PlanLimits | None = None,
    ) -> None:
        self._uow = uow
        self._queue = queue
        self._bus = bus
        self._clock = clock
        self._policy = policy
        # Jitter for retries' back-off; a parameter so that tests can pin it.
        self._rand = rand
        # None runs without plans: no concurrency limit.
        self._limits = limits

    async def claim(self, run_id: uuid.UUID, worker_id: str) -> Claim | Deferred | None:
        """Start the next attempt of a QUEUED run on `worker_id`.

        None when there is nothing to do: the run is unknown, final, cancelled, or already
        RUNNING (a duplicate delivery). A cancel request on a queued run ends it here.
        `Deferred` when it may not start yet: a retry's back-off, or its plan's concurrency.
        """
        now = self._clock.now()
        async with self._uow() as uow:
            run = await uow.runs.get(run_id, for_update=True)
            if run is None or run.status is not RunStatus.QUEUED:
                return None
            started = False
            if run.cancel_requested_at is not None:
                # Asked to stop while handed back: it ends without starting again.
                events = [lifecycle.finish(run, RunStatus.CANCELLED, now)]
            elif run.not_before is not None and run.not_before > now:
                return Deferred(run.not_before)
            elif (held := await self._held_until(uow, run, now)) is not None:
                return Deferred(held)
            else:
                attempt, event = lifecycle.start_attempt(run, worker_id, now)
                await uow.runs.add_attempt(attempt)
                events = [event]
                started = True
            stored = await journal.record(uow, run, events)
            await uow.commit()
        await journal.publish(self._bus, run, stored)
        return Claim(run, worker_id) if started else None

    async def progress(self, claim: Claim, fraction: float, message: str | None) -> RunEvent:
        """Record progress (fraction clamped to 0-1) as an event and as the run's latest."""
        limit = self._policy.max_progress_message_chars

        async def step(uow: UnitOfWork, run: Run, now: datetime) -> list[RunEvent]:
            run.progress = rules.clamp_fraction(fraction)
            run.progress_message = None if message is None else rules.truncate(message, limit)
            return await journal.record(uow, run, [lifecycle.progress_event(run, now)])

        _, [event] = await self._step(claim, step)
        return event

    async def log(self, claim: Claim, level: LogLevel, message: str) -> RunEvent | None:
        """Record a log line; None once the run's log is full (after one notice line)."""
        kept = False

        async def step(uow: UnitOfWork, run: Run, now: datetime) -> list[RunEvent]:
            nonlocal kept
            count = await uow.run_events.count(run.id, EventKind.LOG)
            kept = count < self._policy.max_log_lines
            if kept:
                line = rules.truncate(message, self._policy.max_log_line_chars)
                return await journal.append(uow, run, [lifecycle.log_event(run, now, level, line)])
            if count == self._policy.max_log_lines:
                notice = lifecycle.log_event(run, now, LogLevel.WARNING, rules.LOG_LIMIT_NOTICE)
                return await journal.append(uow, run, [notice])
            return []

        _, events = await self._step(claim, step)
        return events[0] if kept else None

    async def succeed(self, claim: Claim, result: Any) -> RunEvent:
        """End the run SUCCEEDED with `result` (JSON); its RESULT event is returned.

        A result that is not plain JSON, or too large to keep, ends the run FAILED instead
        (error type `RESULT_NOT_JSON` or `RESULT_TOO_LARGE`): running it again would not help.
        """
        problem = rules.result_error(result, self._policy)

        async def step(uow: UnitOfWork, run: Run, now: datetime) -> list[RunEvent]:
            if problem is not None:
                await journal.end_attempt(uow, run, AttemptOutcome.FAILED, now, problem)
                return await journal.record(
                    uow, run, [lifecycle.finish(run, RunStatus.FAILED, now, error=problem)]
                )
            await journal.end_attempt(uow, run, AttemptOutcome.SUCCEEDED, now)
            ended = lifecycle.finish(run, RunStatus.SUCCEEDED, now, result=result)
            return await journal.record(uow, run, [ended])

        _, [event] = await self._step(claim, step)
        return event

    async def fail(
        self, claim: Claim, error: RunError, *, timed_out: bool = False, retriable: bool = True
    ) -> RetryAt | Finished:
        """End the attempt; retry after back-off while attempts remain, else end the run.

        A run asked to cancel ends CANCELLED rather than being retried.
        """
        failed = RunStatus.TIMED_OUT if timed_out else RunStatus.FAILED
        outcome = AttemptOutcome.TIMED_OUT if timed_out else AttemptOutcome.FAILED
        delay = rules.retry_delay(claim.run, self._policy, self._rand())

        async def step(uow: UnitOfWork, run: Run, now: datetime) -> list[RunEvent]:
            await journal.end_attempt(uow, run, outcome, now, error)
            ended = lifecycle.after_failure(
                run, now, failed=failed, error=error, retriable=retriable, delay=delay
            )
            return await journal.record(uow, run, [ended])

        run, _ = await self._step(claim, step)
        if run.status is RunStatus.QUEUED and run.not_before is not None:
            return RetryAt(run.not_before)
        return Finished(run.status)

    async def is_cancel_requested(self, claim: Claim) -> bool:
        """Whether someone asked to cancel the run since it was claimed.

        Raises `LostOwnership` once the run no longer belongs to the attempt, so that a
        worker polling this stops work that someone else now does.
        """
        async with self._uow() as uow:
            run = await self._owned(uow, claim, for_update=False)
        return run.cancel_requested_at is not None

    async def cancelled(self, claim: Claim) -> RunEvent:
        """End the run CANCELLED after its task stopped on request."""

        async def step(uow: UnitOfWork, run: Run, now: datetime) -> list[RunEvent]:
            await journal.end_attempt(uow, run, AttemptOutcome.CANCELLED, now)
            return await journal.record(uow, run, [lifecycle.finish(run, RunStatus.CANCELLED, now)])

        _, [event] = await self._step(claim, step)
        return event

    async def hand_back(self, claim: Claim) -> None:
        """Give the run back to the queue unharmed: its worker is shutting down."""

        async def step(uow: UnitOfWork, run: Run, now: datetime) -> list[RunEvent]:
            await journal.end_attempt(uow, run, AttemptOutcome.INTERRUPTED, now)
            return await journal.record(uow, run, [lifecycle.hand_back(run, now)])

        run, _ = await self._step(claim, step)
        requeued = self._queue.requeue(run.id, run.priority, at=self._clock.now())
        await journal.tell_queue(requeued, run.id, "requeue")

    async def _held_until(self, uow: UnitOfWork, run: Run, now: datetime) -> datetime | None:
        if self._limits is None:
            return None
        return await self._limits.hold_until(uow, run, now)

    async def _step(self, claim: Claim, step: _Step) -> tuple[Run, list[RunEvent]]:
        """Apply `step` to the run in one unit of work if the claim still owns it; publish.

        A step that takes the run out of RUNNING frees a slot of its user's plan, so the
        user's next due run is woken once the step is committed.
        """
        async with self._uow() as uow:
            run = await self._owned(uow, claim)
            now = self._clock.now()
            events = await step(uow, run, now)
            waiting = await self._next_in_line(uow, run, now)
            await uow.commit()
        await journal.publish(self._bus, run, events)
        if waiting is not None:
            # enqueue, not requeue: the waiting run's job may be running a claim right now, and
            # requeue would drop arq's record of it and deliver the job twice. A job that is
            # already queued looks again after its short hold anyway.
            woken = self._queue.enqueue(waiting.id, waiting.priority, at=self._clock.now())
            await journal.tell_queue(woken, waiting.id, "wake")
        return run, events

    async def _next_in_line(self, uow: UnitOfWork, run: Run, now: datetime) -> Run | None:
        if self._limits is None or run.status is RunStatus.RUNNING:
            return None
        return await self._limits.next_in_line(uow, run, now)

    async def _owned(self, uow: UnitOfWork, claim: Claim, *, for_update: bool = True) -> Run:
        """The claimed run, locked unless told otherwise, or `LostOwnership`."""
        run = await uow.runs.get(claim.run.id, for_update=for_update)
        if run is None or not rules.is_owned_by(run, claim.attempt, claim.worker_id):
            raise LostOwnership(
                f"run {claim.run.id} no longer belongs to attempt {claim.attempt} "
                f"on worker {claim.worker_id}"
            )
        return run

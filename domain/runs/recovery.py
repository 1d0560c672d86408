"""Recovery: runs whose worker died, and queued runs the queue lost, are never left behind."""

import random
from collections.abc import Callable
from datetime import timedelta

from domain.ports import Clock, UnitOfWorkFactory
from domain.runs import journal, lifecycle, rules
from domain.runs.models import WORKER_LOST, AttemptOutcome, Run, RunError, RunEvent, RunStatus
from domain.runs.policy import RunPolicy
from domain.runs.ports import EventBus, RunQueue

LOST_WORKER_ERROR = RunError(WORKER_LOST, "the worker running this attempt stopped responding")
# Runs due this soon are queued too, so one about to come due is not missed until next time.
DUE_MARGIN = timedelta(seconds=5)


class RunRecovery:
    """Periodic repairs that make PostgreSQL's view of runs come true."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        queue: RunQueue,
        bus: EventBus,
        clock: Clock,
        policy: RunPolicy,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._uow = uow
        self._queue = queue
        self._bus = bus
        self._clock = clock
        self._policy = policy
        # Jitter for retries' back-off; a parameter so that tests can pin it.
        self._rand = rand

    async def reap_lost_runs(self, *, limit: int = 100) -> int:
        """End the attempts of RUNNING runs whose worker went silent; return how many.

        An attempt far past its timeout counts as lost too, even on a live worker: that
        worker lost track of it (a save it gave up on, a claim whose reply never came).

        Each such run is retried while attempts remain, else fails with `WORKER_LOST`;
        one that was asked to cancel ends CANCELLED.
        """
        now = self._clock.now()
        reaped: list[tuple[Run, list[RunEvent]]] = []
        async with self._uow() as uow:
            lost = await uow.runs.running_on_lost_workers(
                seen_before=now - self._policy.worker_stale_after,
                overdue_at=now - self._policy.overdue_grace,
                limit=limit,
            )
            for run in lost:
                await journal.end_attempt(
                    uow, run, AttemptOutcome.WORKER_LOST, now, LOST_WORKER_ERROR
                )
                ended = lifecycle.after_failure(
                    run,
                    now,
                    failed=RunStatus.FAILED,
                    error=LOST_WORKER_ERROR,
                    retriable=True,
                    delay=rules.retry_delay(run, self._policy, self._rand()),
                )
                reaped.append((run, await journal.record(uow, run, [ended])))
            await uow.commit()
        for run, events in reaped:
            if run.status is RunStatus.QUEUED and run.not_before is not None:
                # The lost worker's job may linger in Redis; requeue replaces it.
                requeued = self._queue.requeue(run.id, run.priority, at=run.not_before)
                await journal.tell_queue(requeued, run.id, "requeue")
            await journal.publish(self._bus, run, events)
        return len(reaped)

    async def enqueue_missing(self, *, limit: int = 1000) -> int:
        """Queue again the due QUEUED runs that the queue holds no job for; return how many.

        Raises `Unavailable` while the queue is down: there is nothing to repair it with.
        """
        now = self._clock.now()
        async with self._uow() as uow:
            due = await uow.runs.queued_due(before=now + DUE_MARGIN, limit=limit)
        if not due:
            return 0
        missing = await self._queue.missing([run.id for run in due])
        queued = 0
        for run in due:
            if run.id in missing:
                # Its original due time, not now: a run Redis lost keeps its place in line.
                at = run.not_before or run.created_at
                if await self._queue.enqueue(run.id, run.priority, at=at):
                    queued += 1
        return queued

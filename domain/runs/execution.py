"""The worker's side of a run: claim an attempt, report on it, and end it.

Every write checks that the run still belongs to the claimed attempt, so a worker that was
given up for lost can never overwrite what its successor did.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.ports import Clock, UnitOfWorkFactory
from domain.runs.models import LogLevel, Run, RunError, RunEvent, RunStatus
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
    """The run may not start before `at` (a retry's back-off); ask again then."""

    at: datetime


@dataclass(frozen=True, slots=True)
class RetryAt:
    """The attempt failed and the run waits, QUEUED, for another attempt at `at`."""

    at: datetime


@dataclass(frozen=True, slots=True)
class Finished:
    """The run reached its final status."""

    status: RunStatus


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
    ) -> None:
        self._uow = uow
        self._queue = queue
        self._bus = bus
        self._clock = clock
        self._policy = policy

    async def claim(self, run_id: uuid.UUID, worker_id: str) -> Claim | Deferred | None:
        """Start the next attempt of a QUEUED run on `worker_id`.

        None when there is nothing to do: the run is unknown, final, cancelled, or already
        RUNNING (a duplicate delivery). A cancel request on a queued run ends it here.
        """
        raise NotImplementedError

    async def progress(self, claim: Claim, fraction: float, message: str | None) -> RunEvent:
        """Record progress (fraction clamped to 0-1) as an event and as the run's latest."""
        raise NotImplementedError

    async def log(self, claim: Claim, level: LogLevel, message: str) -> RunEvent | None:
        """Record a log line; None once the run's log is full (after one notice line)."""
        raise NotImplementedError

    async def succeed(self, claim: Claim, result: Any) -> RunEvent:
        """End the run SUCCEEDED with `result` (JSON); its RESULT event is returned."""
        raise NotImplementedError

    async def fail(
        self, claim: Claim, error: RunError, *, timed_out: bool = False, retriable: bool = True
    ) -> RetryAt | Finished:
        """End the attempt; retry after back-off while attempts remain, else end the run."""
        raise NotImplementedError

    async def is_cancel_requested(self, claim: Claim) -> bool:
        """Whether someone asked to cancel the run since it was claimed."""
        raise NotImplementedError

    async def cancelled(self, claim: Claim) -> RunEvent:
        """End the run CANCELLED after its task stopped on request."""
        raise NotImplementedError

    async def hand_back(self, claim: Claim) -> None:
        """Give the run back to the queue unharmed: its worker is shutting down."""
        raise NotImplementedError

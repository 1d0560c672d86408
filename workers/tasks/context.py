"""What a running task sees of its run, and how it reports back."""

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from domain.runs.execution import Claim
from domain.runs.models import LogLevel, RunEvent
from workers.tasks.errors import RunCancelled

P = TypeVar("P")
T = TypeVar("T")
# A task may ask whether it was cancelled in a tight loop; the store is asked at most this often.
CANCEL_POLL_SECONDS = 0.5


class RunReporter(Protocol):
    """The executor's methods a task reports through (RunExecutor provides them)."""

    async def progress(self, claim: Claim, fraction: float, message: str | None) -> RunEvent:
        """Record progress."""
        ...

    async def log(self, claim: Claim, level: LogLevel, message: str) -> RunEvent | None:
        """Record a log line."""
        ...

    async def is_cancel_requested(self, claim: Claim) -> bool:
        """Whether the run was asked to stop."""
        ...


class Saver(Protocol):
    """Runs one write to the store; the worker's retries it through a database outage."""

    async def __call__(self, write: Callable[[], Awaitable[T]]) -> T:
        """The write's result."""
        ...


async def save_once(write: Callable[[], Awaitable[T]]) -> T:
    """Run a write once, for callers that want no retries."""
    return await write()


class TaskContext(Generic[P]):
    """The run's typed parameters and identity, and the task's channel back to the run."""

    def __init__(
        self,
        *,
        claim: Claim,
        params: P,
        reporter: RunReporter,
        save: Saver = save_once,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._claim = claim
        self._params = params
        self._reporter = reporter
        self._save = save
        self._clock = clock
        self._cancelled = False
        self._polled_at: float | None = None

    @property
    def params(self) -> P:
        """The parameters, converted to the task's model."""
        return self._params

    @property
    def run_id(self) -> uuid.UUID:
        """The run's ID."""
        return self._claim.run.id

    @property
    def attempt(self) -> int:
        """This attempt's number, from 1."""
        return self._claim.attempt

    @property
    def idempotency_key(self) -> str:
        """The same for every attempt of the run: send it with side effects to dedupe them."""
        return str(self._claim.run.id)

    @property
    def cancelled(self) -> bool:
        """Whether a cancel request was seen by `check_cancelled` so far."""
        return self._cancelled

    async def progress(self, fraction: float, message: str | None = None) -> None:
        """Report how far the work is, from 0 to 1, with an optional short message."""
        await self._save(lambda: self._reporter.progress(self._claim, fraction, message))

    async def log(self, message: str, level: LogLevel = LogLevel.INFO) -> None:
        """Add a line to the run's log."""
        await self._save(lambda: self._reporter.log(self._claim, level, message))

    async def check_cancelled(self) -> None:
        """Raise `RunCancelled` if the run was asked to stop; cheap to call often."""
        now = self._clock()
        if not self._cancelled and (
            self._polled_at is None or now - self._polled_at >= CANCEL_POLL_SECONDS
        ):
            self._polled_at = now
            self._cancelled = await self._save(
                lambda: self._reporter.is_cancel_requested(self._claim)
            )
        if self._cancelled:
            raise RunCancelled("the run was cancelled")

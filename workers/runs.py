"""The `run` job: one attempt of a run, from its claim to its recorded end."""

import asyncio
import logging
import traceback
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from arq.worker import Retry

from domain.errors import Unavailable
from domain.runs.execution import Claim, Deferred, LostOwnership, RetryAt, RunExecutor
from domain.runs.models import RunError
from workers.context import JobContext
from workers.saving import SaveRetry
from workers.tasks.catalog import Catalog
from workers.tasks.errors import is_retriable

logger = logging.getLogger("taskyard.worker")

# A claim that found the database down is tried again this much later, by arq.
CLAIM_RETRY_SECONDS = 5.0
# The end of a traceback says the most; a huge one is cut from the front.
MAX_TRACEBACK_CHARS = 16_000
UNKNOWN_TASK = "UnknownTask"
BAD_RESULT = "BadResult"
TIMEOUT = "Timeout"


class RunAttempts:
    """Runs attempts on this worker and records, through the executor, how each one ends."""

    def __init__(
        self, *, executor: RunExecutor, catalog: Catalog, worker_id: str, save: SaveRetry
    ) -> None:
        self._executor = executor
        self._catalog = catalog
        self._worker_id = worker_id
        self._save = save

    async def run(self, run_id: uuid.UUID) -> None:
        """Claim the run and run one attempt; raise arq's `Retry` to be called again later."""
        claim = await self._claim(run_id)
        if isinstance(claim, Deferred):
            raise Retry(defer=seconds_until(claim.at))
        if claim is None:
            return
        try:
            retry_at = await self._attempt(claim)
        except LostOwnership:
            # The reaper gave the run to another attempt; this one must write nothing more.
            logger.warning("run %s attempt %d was taken over; it stops", run_id, claim.attempt)
            return
        if retry_at is not None:
            raise Retry(defer=seconds_until(retry_at.at))

    async def _claim(self, run_id: uuid.UUID) -> Claim | Deferred | None:
        try:
            return await self._executor.claim(run_id, self._worker_id)
        except Unavailable as exc:
            # Freeing the slot beats holding it: the run waits QUEUED, safe in PostgreSQL.
            logger.warning("cannot claim run %s (%s); trying again later", run_id, exc)
            raise Retry(defer=CLAIM_RETRY_SECONDS) from exc

    async def _attempt(self, claim: Claim) -> RetryAt | None:
        """Run the task within the run's timeout and record the outcome."""
        spec = self._catalog.get(claim.run.task_name)
        if spec is None:
            missing = RunError(UNKNOWN_TASK, f"no worker task is named {claim.run.task_name}")
            return await self._fail(claim, missing, retriable=False)
        limit = asyncio.timeout(claim.run.timeout_seconds)
        try:
            async with limit:
                result = await spec.execute(claim, self._executor, self._save)
        except asyncio.CancelledError:
            if await self._save(lambda: self._executor.is_cancel_requested(claim)):
                await self._save(lambda: self._executor.cancelled(claim))
                return None
            # Not a cancel, so the worker is shutting down: the run goes back to the queue
            # and arq, seeing the CancelledError, leaves the job for another worker.
            await self._save(lambda: self._executor.hand_back(claim))
            raise
        except LostOwnership:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever a task raises ends its attempt
            if limit.expired():
                return await self._fail(claim, timeout_error(claim), timed_out=True)
            return await self._fail(claim, error_of(exc), retriable=is_retriable(exc))
        return await self._succeed(claim, result)

    async def _succeed(self, claim: Claim, result: Any) -> RetryAt | None:
        try:
            value = msgspec.to_builtins(result)
        except (TypeError, ValueError) as exc:
            error = RunError(BAD_RESULT, f"the task's result is not JSON: {exc}")
            return await self._fail(claim, error, retriable=False)
        await self._save(lambda: self._executor.succeed(claim, value))
        return None

    async def _fail(
        self, claim: Claim, error: RunError, *, timed_out: bool = False, retriable: bool = True
    ) -> RetryAt | None:
        ended = await self._save(
            lambda: self._executor.fail(claim, error, timed_out=timed_out, retriable=retriable)
        )
        return ended if isinstance(ended, RetryAt) else None


def seconds_until(at: datetime) -> float:
    """Seconds from now until `at`, never negative."""
    return max(0.0, (at - datetime.now(UTC)).total_seconds())


def error_of(exc: BaseException) -> RunError:
    """What a task's exception tells about the failure, traceback included."""
    text = "".join(traceback.format_exception(exc))
    return RunError(type(exc).__name__, str(exc) or repr(exc), text[-MAX_TRACEBACK_CHARS:])


def timeout_error(claim: Claim) -> RunError:
    """The error of an attempt stopped at the run's timeout."""
    limit = claim.run.timeout_seconds
    return RunError(TIMEOUT, f"the attempt ran longer than its {limit:g}s timeout")


async def run(ctx: JobContext, payload: dict[str, Any]) -> None:
    """The arq job: one attempt of the run whose ID `payload["run_id"]` holds."""
    attempts: RunAttempts = ctx["attempts"]
    await attempts.run(uuid.UUID(str(payload["run_id"])))

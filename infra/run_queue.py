"""Runs handed to arq workers: one job per run, whose ID is the run's ID.

Only the run ID travels; PostgreSQL holds the rest. A job's score in arq's sorted set is
when it may start, moved earlier by its lane's head start, so higher lanes go first.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from arq.connections import ArqRedis
from arq.constants import (
    abort_jobs_ss,
    expires_extra_ms,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.jobs import serialize_job
from arq.utils import timestamp_ms, to_unix_ms

from domain.runs.models import Priority
from domain.runs.rules import LANE_HEAD_START_SECONDS, RUN_JOB
from infra.queue import QUEUE_NAME, queue_errors


def run_payload(run_id: uuid.UUID) -> dict[str, Any]:
    """The one argument of a run's job."""
    return {"run_id": str(run_id)}


def lane_start(priority: Priority, at: datetime) -> datetime:
    """When the queue offers the job: `at`, less the head start of the run's lane."""
    return at - timedelta(seconds=LANE_HEAD_START_SECONDS[priority])


def expiry_ms(score: int, now: int) -> int:
    """How long the job key lives: a day past when it is due, as arq's own jobs do.

    arq would count from the score alone, which goes negative, and is refused by Redis,
    for a run due more than a day ago (one the reconciler queues again after a loss).
    """
    return max(score - now, 0) + expires_extra_ms


class ArqRunQueue:
    """Queues, re-queues and aborts runs' jobs in arq's Redis structures."""

    def __init__(self, pool: ArqRedis, *, queue_name: str = QUEUE_NAME) -> None:
        self._pool = pool
        self._queue_name = queue_name

    async def enqueue(self, run_id: uuid.UUID, priority: Priority, *, at: datetime) -> bool:
        """Queue the run to start no earlier than `at`; False if its job already exists."""
        start = lane_start(priority, at)
        expires = expiry_ms(to_unix_ms(start), timestamp_ms())
        with queue_errors():
            job = await self._pool.enqueue_job(
                RUN_JOB,
                run_payload(run_id),
                _job_id=str(run_id),
                _queue_name=self._queue_name,
                _defer_until=start,
                _expires=timedelta(milliseconds=expires),
            )
        return job is not None

    async def requeue(self, run_id: uuid.UUID, priority: Priority, *, at: datetime) -> None:
        """Queue the run afresh, dropping what a lost worker left of its job, atomically.

        A lost worker's job still holds its in-progress marker (until arq's long backstop
        timeout), its job and retry keys and maybe an abort request. Deleting them and adding
        the new job in one transaction leaves no moment in which a worker could see half.
        """
        job_id = str(run_id)
        now = timestamp_ms()
        score = to_unix_ms(lane_start(priority, at))
        job = serialize_job(
            RUN_JOB, (run_payload(run_id),), {}, None, now, serializer=self._pool.job_serializer
        )
        leftovers = (in_progress_key_prefix, job_key_prefix, result_key_prefix, retry_key_prefix)
        with queue_errors():
            async with self._pool.pipeline(transaction=True) as tx:
                tx.delete(*(prefix + job_id for prefix in leftovers))
                tx.zrem(abort_jobs_ss, job_id)
                tx.psetex(job_key_prefix + job_id, expiry_ms(score, now), job)
                tx.zadd(self._queue_name, {job_id: score})
                await tx.execute()

    async def abort(self, run_id: uuid.UUID) -> None:
        """Ask the worker running the run to cancel it, as arq's `Job.abort` does, unawaited."""
        with queue_errors():
            await self._pool.zadd(abort_jobs_ss, {str(run_id): timestamp_ms()})

    async def missing(self, run_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Those of `run_ids` whose job key is gone, in one round trip."""
        if not run_ids:
            return set()
        with queue_errors():
            async with self._pool.pipeline(transaction=False) as pipe:
                for run_id in run_ids:
                    pipe.exists(job_key_prefix + str(run_id))
                found = await pipe.execute()
        return {run_id for run_id, exists in zip(run_ids, found, strict=True) if not exists}

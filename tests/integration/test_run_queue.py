"""The run queue against real Redis and real arq workers: IDs, lanes, requeue, abort, loss."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq.constants import (
    abort_jobs_ss,
    in_progress_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.jobs import Job
from arq.typing import WorkerCoroutine
from arq.utils import to_unix_ms
from arq.worker import Worker, func

from domain.errors import Unavailable
from domain.runs.models import Priority
from domain.runs.rules import LANE_HEAD_START_SECONDS, RUN_JOB
from infra.bootstrap import Services
from infra.queue import QUEUE_NAME, deserialize, serialize
from infra.redis import create_redis
from infra.run_queue import ArqRunQueue


def job(services: Services, run_id: uuid.UUID) -> Job:
    """arq's view of the run's job."""
    return Job(str(run_id), services.redis, _queue_name=QUEUE_NAME, _deserializer=deserialize)


async def score(services: Services, run_id: uuid.UUID) -> float | None:
    """The job's score in the queue, in milliseconds."""
    found: float | None = await services.redis.zscore(QUEUE_NAME, str(run_id))
    return found


def arq_worker(services: Services, body: WorkerCoroutine, **options: Any) -> Worker:
    """A real arq worker whose `run` function is `body`, configured as ours are."""
    return Worker(
        functions=[func(body, name=RUN_JOB)],
        redis_pool=services.redis,
        queue_name=QUEUE_NAME,
        job_serializer=serialize,
        job_deserializer=deserialize,
        poll_delay=0.05,
        handle_signals=False,
        **options,
    )


async def test_a_run_is_one_job_named_run_carrying_only_its_id(services: Services) -> None:
    run_id = uuid.uuid4()
    assert await services.run_queue.enqueue(run_id, Priority.NORMAL, at=datetime.now(UTC))
    info = await job(services, run_id).info()
    assert info is not None
    assert (info.function, list(info.args), info.kwargs) == (RUN_JOB, [{"run_id": str(run_id)}], {})


async def test_a_second_enqueue_of_one_run_is_refused(services: Services) -> None:
    run_id = uuid.uuid4()
    now = datetime.now(UTC)
    assert await services.run_queue.enqueue(run_id, Priority.LOW, at=now)
    assert not await services.run_queue.enqueue(run_id, Priority.HIGH, at=now)
    assert await services.redis.zcard(QUEUE_NAME) == 1


@pytest.mark.parametrize("priority", list(Priority))
async def test_the_score_is_the_start_less_the_lanes_head_start(
    services: Services, priority: Priority
) -> None:
    run_id = uuid.uuid4()
    at = datetime(2026, 6, 1, 12, tzinfo=UTC)
    await services.run_queue.enqueue(run_id, priority, at=at)
    expected = at - timedelta(seconds=LANE_HEAD_START_SECONDS[priority])
    assert await score(services, run_id) == expected.timestamp() * 1000


async def test_a_high_run_after_fifty_low_ones_comes_first(services: Services) -> None:
    start = datetime.now(UTC)
    low = [uuid.uuid4() for _ in range(50)]
    for n, run_id in enumerate(low):
        await services.run_queue.enqueue(run_id, Priority.LOW, at=start + timedelta(seconds=n))
    high = uuid.uuid4()
    await services.run_queue.enqueue(high, Priority.HIGH, at=start + timedelta(seconds=60))
    order = await services.redis.zrange(QUEUE_NAME, 0, -1)
    assert order[0].decode() == str(high)
    assert [member.decode() for member in order[1:]] == [str(run_id) for run_id in low]


async def test_a_low_run_that_waited_past_the_head_start_beats_a_new_high_one(
    services: Services,
) -> None:
    now = datetime.now(UTC)
    waited, high = uuid.uuid4(), uuid.uuid4()
    await services.run_queue.enqueue(waited, Priority.LOW, at=now - timedelta(seconds=301))
    await services.run_queue.enqueue(high, Priority.HIGH, at=now)
    order = await services.redis.zrange(QUEUE_NAME, 0, -1)
    assert [member.decode() for member in order] == [str(waited), str(high)]


async def test_an_arq_worker_runs_the_job_with_the_payload(services: Services) -> None:
    seen: list[dict[str, Any]] = []

    async def body(ctx: dict[str, Any], payload: dict[str, Any]) -> None:
        seen.append(payload)

    run_id = uuid.uuid4()
    await services.run_queue.enqueue(run_id, Priority.HIGH, at=datetime.now(UTC))
    await arq_worker(services, body, burst=True).main()
    assert seen == [{"run_id": str(run_id)}]


async def _leave_like_a_lost_worker(services: Services, run_id: uuid.UUID) -> None:
    """What a worker killed mid-job leaves behind in arq's keys."""
    job_id = str(run_id)
    await services.redis.psetex(in_progress_key_prefix + job_id, 86_400_000, b"1")
    await services.redis.setex(retry_key_prefix + job_id, 88_400, "3")
    await services.redis.setex(result_key_prefix + job_id, 60, b"stale")
    await services.redis.zadd(abort_jobs_ss, {job_id: 1})


async def test_requeue_clears_a_lost_workers_leftovers_and_a_worker_runs_it(
    services: Services,
) -> None:
    run_id = uuid.uuid4()
    earlier = datetime.now(UTC) - timedelta(minutes=1)
    await services.run_queue.enqueue(run_id, Priority.NORMAL, at=earlier)
    await _leave_like_a_lost_worker(services, run_id)
    # As left, no worker may take the job: it is marked in progress elsewhere.
    assert not await services.run_queue.enqueue(run_id, Priority.NORMAL, at=earlier)

    now = datetime.now(UTC)
    await services.run_queue.requeue(run_id, Priority.LOW, at=now)
    job_id = str(run_id)
    for prefix in (in_progress_key_prefix, retry_key_prefix, result_key_prefix):
        assert not await services.redis.exists(prefix + job_id)
    assert await services.redis.zscore(abort_jobs_ss, job_id) is None
    assert await score(services, run_id) == to_unix_ms(now)

    tries: list[int] = []

    async def body(ctx: dict[str, Any], payload: dict[str, Any]) -> None:
        tries.append(ctx["job_try"])

    await arq_worker(services, body, burst=True, allow_abort_jobs=True).main()
    # It ran, as a first try, and was not aborted by the old request.
    assert tries == [1]


async def test_abort_lands_in_arqs_abort_set_and_cancels_the_running_job(
    services: Services,
) -> None:
    run_id = uuid.uuid4()
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def body(ctx: dict[str, Any], payload: dict[str, Any]) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    # A burst worker stops by itself once the aborted job has ended: nothing is left queued.
    worker = arq_worker(services, body, allow_abort_jobs=True, burst=True)
    await services.run_queue.enqueue(run_id, Priority.NORMAL, at=datetime.now(UTC))
    task = asyncio.create_task(worker.main())
    try:
        await asyncio.wait_for(started.wait(), timeout=10)
        await services.run_queue.abort(run_id)
        assert await services.redis.zscore(abort_jobs_ss, str(run_id)) is not None
        await asyncio.wait_for(cancelled.wait(), timeout=10)
        await asyncio.wait_for(task, timeout=10)
    finally:
        task.cancel()
    assert worker.jobs_failed == 1


async def test_missing_names_the_runs_whose_jobs_redis_lost(services: Services) -> None:
    runs = [uuid.uuid4() for _ in range(3)]
    now = datetime.now(UTC)
    for run_id in runs:
        await services.run_queue.enqueue(run_id, Priority.NORMAL, at=now)
    assert await services.run_queue.missing(runs) == set()
    await services.redis.flushdb()
    assert await services.run_queue.missing(runs) == set(runs)
    await services.run_queue.enqueue(runs[0], Priority.NORMAL, at=now)
    assert await services.run_queue.missing(runs) == set(runs[1:])
    assert await services.run_queue.missing([]) == set()


async def test_an_unreachable_redis_is_unavailable(unused_port: Callable[[], int]) -> None:
    redis = create_redis(f"redis://127.0.0.1:{unused_port()}/0")
    queue, run_id, now = ArqRunQueue(redis), uuid.uuid4(), datetime.now(UTC)
    operations: list[Callable[[], Awaitable[object]]] = [
        lambda: queue.enqueue(run_id, Priority.LOW, at=now),
        lambda: queue.requeue(run_id, Priority.LOW, at=now),
        lambda: queue.abort(run_id),
        lambda: queue.missing([run_id]),
    ]
    try:
        for operation in operations:
            with pytest.raises(Unavailable):
                await operation()
    finally:
        await redis.aclose()

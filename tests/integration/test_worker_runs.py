"""Runs through a real arq worker, PostgreSQL and Redis: outcomes, events, retries, lanes."""

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from arq.jobs import Job, JobStatus
from arq.worker import Worker

from domain.identity.models import RequestMeta, Role, Viewer
from domain.runs.models import (
    AttemptOutcome,
    EventKind,
    LogLevel,
    Priority,
    Run,
    RunEvent,
    RunStatus,
    TaskDefaults,
)
from domain.runs.rules import RUN_JOB
from infra.bootstrap import Services
from infra.settings import Settings
from tests.conftest import sign_in
from workers.settings import cancel_until_done, worker_settings
from workers.tasks import TaskContext, task
from workers.tasks.catalog import Catalog, installed_modules, load_catalog

META = RequestMeta(ip="127.0.0.1", request_id="worker-test")
FINAL_WAIT = 20.0


class Nap(msgspec.Struct, forbid_unknown_fields=True):
    seconds: float = 0.3


# Each run ID a probe body ran for, in order, across every worker of this process.
executions: list[uuid.UUID] = []


@task("probe.nap", params=Nap, defaults=TaskDefaults(timeout_seconds=0.2, max_attempts=2))
async def nap_past_timeout(ctx: TaskContext[Nap]) -> None:
    """Sleep longer than the task's timeout allows."""
    await asyncio.sleep(ctx.params.seconds)


@task("probe.once", params=Nap)
async def record_execution(ctx: TaskContext[Nap]) -> str:
    """Note that the body ran, then take a while."""
    executions.append(ctx.run_id)
    await asyncio.sleep(ctx.params.seconds)
    return "done"


def probe_catalog() -> Catalog:
    """The built-in tasks and this module's probes."""
    return load_catalog([*installed_modules(), sys.modules[__name__]])


@asynccontextmanager
async def running_worker(
    services: Services, settings: Settings, catalog: Catalog | None = None
) -> AsyncIterator[Worker]:
    """A real arq worker in this event loop, ready once its catalog is registered."""
    assert settings.database_url is not None
    assert settings.redis_url is not None
    chosen = catalog or probe_catalog()
    options = worker_settings(
        settings, database_url=settings.database_url, redis_url=settings.redis_url, catalog=chosen
    )
    arq_worker = Worker(**{**options, "handle_signals": False})
    main = asyncio.create_task(arq_worker.main())
    try:
        await wait_for(lambda: registered(services, chosen.names), "the task catalog")
        yield arq_worker
    finally:
        await settle(arq_worker)
        await cancel_until_done(main)
        await arq_worker.close()


async def settle(arq_worker: Worker) -> None:
    """Let jobs that are ending finish arq's bookkeeping.

    arq's `close()` cancels every job task and re-raises the CancelledError of one it caught
    between the end of its job and the job's bookkeeping, skipping the worker's shutdown.
    """
    ending = [task for task in arq_worker.tasks.values() if not task.done()]
    if ending:
        await asyncio.wait(ending, timeout=5)


async def registered(services: Services, names: list[str]) -> bool:
    return None not in await services.runs.get_tasks(names)


async def wait_for(check: Any, what: str, timeout: float = FINAL_WAIT) -> Any:
    """Poll an async `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


async def viewer_of(services: Services) -> Viewer:
    """An operator, signed in."""
    return await services.identity.authenticate(await sign_in(services))


async def start(
    services: Services, viewer: Viewer, name: str, params: dict[str, Any], **options: Any
) -> Run:
    return await services.runs.start_run(
        viewer=viewer, meta=META, task=name, params=params, **options
    )


async def current(services: Services, viewer: Viewer, run_id: uuid.UUID) -> Run:
    [run] = await services.runs.get_runs(viewer=viewer, ids=[run_id])
    assert run is not None
    return run


async def until_status(
    services: Services,
    viewer: Viewer,
    run_id: uuid.UUID,
    *statuses: RunStatus,
    timeout: float = FINAL_WAIT,
) -> Run:
    """The run once it is in one of `statuses` (by default any final one)."""

    async def reached() -> Run | None:
        run = await current(services, viewer, run_id)
        wanted = run.status in statuses if statuses else run.status.is_final
        return run if wanted else None

    found: Run = await wait_for(reached, f"run {run_id} to reach {statuses or 'its end'}", timeout)
    return found


async def stored_events(services: Services, run_id: uuid.UUID) -> list[RunEvent]:
    async with services.uow() as uow:
        return await uow.run_events.after(run_id, 0, limit=10_000)


def kinds(events: list[RunEvent]) -> list[EventKind]:
    return [event.kind for event in events]


def quick_settings(settings: Settings, **overrides: Any) -> Settings:
    """The test settings, with quick recovery unless told otherwise."""
    quick: dict[str, Any] = {"run_reaper_interval": 0.5, "worker_heartbeat_interval": 0.5}
    return msgspec.structs.replace(settings, **(quick | overrides))


@pytest.fixture
async def viewer(services: Services) -> Viewer:
    """A signed-in operator who starts the runs."""
    return await viewer_of(services)


@pytest.fixture
async def worker_running(services: Services, settings: Settings) -> AsyncIterator[Worker]:
    """A worker with the test catalog and quick recovery."""
    async with running_worker(services, quick_settings(settings)) as arq_worker:
        yield arq_worker


async def test_a_run_succeeds_with_every_event_in_order(
    services: Services, viewer: Viewer, worker_running: Worker
) -> None:
    run = await start(services, viewer, "demo.count", {"to": 5, "delayMs": 10})
    watched = [
        event
        async for event in services.runs.gen_events(viewer=viewer, run_id=run.id, after_seq=None)
    ]
    ended = await current(services, viewer, run.id)
    assert (ended.status, ended.result, ended.attempt) == (RunStatus.SUCCEEDED, {"count": 5}, 1)
    events = await stored_events(services, run.id)
    # What a live watcher saw is exactly what the store keeps, numbered without a gap.
    assert watched == events
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert kinds(events) == [
        EventKind.STATUS,
        EventKind.STATUS,
        *[EventKind.PROGRESS, EventKind.LOG] * 5,
        EventKind.RESULT,
    ]
    assert [e.status for e in events[:2]] == [RunStatus.QUEUED, RunStatus.RUNNING]
    progress = [e for e in events if e.kind is EventKind.PROGRESS]
    assert [(e.fraction, e.message) for e in progress] == [(i / 5, f"{i}/5") for i in range(1, 6)]
    assert (events[-1].status, events[-1].result) == (RunStatus.SUCCEEDED, {"count": 5})


async def test_a_failing_run_is_retried_until_its_attempts_run_out(
    services: Services, viewer: Viewer, worker_running: Worker
) -> None:
    run = await start(services, viewer, "demo.fail", {"message": "nope"})
    ended = await until_status(services, viewer, run.id)
    assert ended.status is RunStatus.FAILED
    assert ended.attempt == ended.max_attempts == 3
    assert ended.error is not None
    assert (ended.error.type, ended.error.message) == ("DemoFailure", "nope")
    # The traceback is kept, for administrators' eyes only.
    assert ended.error.traceback is None
    admin = await services.identity.authenticate(await sign_in(services, Role.ADMIN))
    seen_by_admin = (await current(services, admin, run.id)).error
    assert seen_by_admin is not None
    assert seen_by_admin.traceback is not None
    assert "DemoFailure: nope" in seen_by_admin.traceback
    [attempts] = await services.runs.attempts_of([run.id])
    assert [a.outcome for a in attempts] == [AttemptOutcome.FAILED] * 3
    statuses = [e.status for e in await stored_events(services, run.id)]
    assert statuses.count(RunStatus.RUNNING) == 3
    assert statuses[-1] is RunStatus.FAILED


async def test_an_attempt_past_its_timeout_is_stopped_and_the_run_times_out(
    services: Services, viewer: Viewer, worker_running: Worker
) -> None:
    run = await start(services, viewer, "probe.nap", {"seconds": 5})
    started = time.monotonic()
    ended = await until_status(services, viewer, run.id)
    assert ended.status is RunStatus.TIMED_OUT
    assert ended.error is not None
    assert ended.error.type == "Timeout"
    [attempts] = await services.runs.attempts_of([run.id])
    assert [a.outcome for a in attempts] == [AttemptOutcome.TIMED_OUT] * 2
    # Two attempts of 0.2 s and a short back-off; never the 5 s the body asked for.
    assert time.monotonic() - started < 4.5


async def test_cancelling_a_running_count_stops_it_within_two_seconds(
    services: Services, viewer: Viewer, worker_running: Worker
) -> None:
    run = await start(services, viewer, "demo.count", {"to": 10_000, "delayMs": 50})

    async def counting() -> bool:
        return any(e.kind is EventKind.PROGRESS for e in await stored_events(services, run.id))

    await wait_for(counting, "the count to start")
    asked = time.monotonic()
    await services.runs.cancel_run(viewer=viewer, meta=META, run_id=run.id)
    ended = await until_status(services, viewer, run.id, timeout=5)
    assert ended.status is RunStatus.CANCELLED
    assert time.monotonic() - asked < 2.0
    events = await stored_events(services, run.id)
    cleanup = events[-2]
    assert (cleanup.kind, cleanup.level) == (EventKind.LOG, LogLevel.WARNING)
    assert cleanup.message is not None
    assert cleanup.message.endswith("cleaned up")
    assert (events[-1].kind, events[-1].status) == (EventKind.RESULT, RunStatus.CANCELLED)
    [attempts] = await services.runs.attempts_of([run.id])
    assert [a.outcome for a in attempts] == [AttemptOutcome.CANCELLED]


async def test_a_job_delivered_twice_runs_the_task_once(
    services: Services, viewer: Viewer, worker_running: Worker
) -> None:
    executions.clear()
    run = await start(services, viewer, "probe.once", {"seconds": 0.5})
    await until_status(services, viewer, run.id, RunStatus.RUNNING)
    # Deliveries under other job IDs get past arq's own guard, as a redelivery after a
    # crash does: only the run's state in PostgreSQL stops the body from running again.
    while_running = await services.redis.enqueue_job(RUN_JOB, {"run_id": str(run.id)}, _job_id="a")
    ended = await until_status(services, viewer, run.id)
    after_end = await services.redis.enqueue_job(RUN_JOB, {"run_id": str(run.id)}, _job_id="b")
    for job in (while_running, after_end):
        assert job is not None
        await wait_for(lambda job=job: gone(job), f"duplicate job {job.job_id} to be handled")
    assert executions == [run.id]
    assert (ended.status, ended.attempt, ended.result) == (RunStatus.SUCCEEDED, 1, "done")


async def gone(job: Job) -> bool:
    return await job.status() is JobStatus.not_found


async def test_a_high_run_starts_before_a_backlog_of_low_runs(
    services: Services, viewer: Viewer, settings: Settings
) -> None:
    one_slot = quick_settings(settings, worker_concurrency=1)
    # The HIGH lane needs a plan that allows it; `free` goes no higher than NORMAL.
    async with services.uow() as uow:
        await uow.plans.set_user_plan(viewer.user.id, "pro")
        await uow.commit()
    async with running_worker(services, one_slot):
        params = {"to": 1, "delayMs": 300}
        backlog = [await start(services, viewer, "demo.count", params, priority=Priority.LOW)]
        await until_status(services, viewer, backlog[0].id, RunStatus.RUNNING)
        backlog += [
            await start(services, viewer, "demo.count", params, priority=Priority.LOW)
            for _ in range(5)
        ]
        high = await start(services, viewer, "demo.count", params, priority=Priority.HIGH)
        ended = [await until_status(services, viewer, r.id) for r in [*backlog, high]]
    assert all(run.status is RunStatus.SUCCEEDED for run in ended)
    *lows, high_run = ended
    assert high_run.started_at is not None
    later = [low for low in lows if low.started_at and low.started_at > high_run.started_at]
    # The slot was busy with the first LOW run when the HIGH one arrived; it went next.
    assert len(later) == 5


async def test_an_unknown_task_fails_the_run_without_retrying(
    services: Services, viewer: Viewer, settings: Settings
) -> None:
    await services.runs.register_tasks(probe_catalog().tasks(datetime.now(UTC)))
    # This worker's catalog lacks the probes, as an older worker's would.
    async with running_worker(services, quick_settings(settings), load_catalog()):
        run = await start(services, viewer, "probe.once", {})
        ended = await until_status(services, viewer, run.id)
    assert ended.status is RunStatus.FAILED
    assert ended.attempt == 1
    assert ended.error is not None
    assert ended.error.type == "UnknownTask"


async def test_a_loop_that_loses_a_cancel_is_cancelled_again() -> None:
    async def loses_one_cancel() -> None:
        # As Python 3.11's wait_for does when a cancel meets a send that just completed.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        await asyncio.sleep(10)

    loop_task = asyncio.create_task(loses_one_cancel())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_until_done(loop_task), 2)
    assert loop_task.cancelled()

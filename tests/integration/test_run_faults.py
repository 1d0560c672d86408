"""Runs survive real faults: a worker killed or stopped mid-run, Redis emptied, PostgreSQL down."""

import asyncio
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import psutil
import pytest
from sqlalchemy import select

from domain.identity.models import Viewer
from domain.runs.models import AttemptOutcome, EventKind, Run, RunStatus
from infra.bootstrap import Services, build_services
from infra.db import migrations
from infra.db.models import WorkerRow
from infra.embedded.postgres import EmbeddedPostgres
from infra.settings import Settings
from tests.conftest import TEST_SECRET_KEY
from tests.integration.test_worker_runs import (
    current,
    quick_settings,
    running_worker,
    start,
    stored_events,
    until_status,
    viewer_of,
    wait_for,
)
from tests.live import TASKYARD, alive, free_port, shared_tmp_dir
from workers.settings import SHUTDOWN_GRACE_SECONDS

pytestmark = pytest.mark.slow

# Small enough that recovery is quick, large enough for a loaded machine's heartbeats.
STALE_AFTER = 2.0
Spawn = Callable[[], subprocess.Popen[bytes]]


@pytest.fixture
def spawn_worker(settings: Settings, tmp_path: Path) -> Iterator[Spawn]:
    """Starts `taskyard worker` processes on the test services; kills any left at the end."""
    assert settings.database_url is not None
    assert settings.redis_url is not None
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("TASKYARD_")}
    env = inherited | {
        "TASKYARD_ENV": "test",
        "TASKYARD_DATABASE_URL": settings.database_url,
        "TASKYARD_REDIS_URL": settings.redis_url,
        "TASKYARD_SECRET_KEY": TEST_SECRET_KEY,
        "TASKYARD_LOG_FORMAT": "json",
        "TASKYARD_WORKER_HEARTBEAT_INTERVAL": "0.5",
        "TASKYARD_RUN_REAPER_INTERVAL": "0.5",
        "TASKYARD_WORKER_STALE_AFTER": str(STALE_AFTER),
    }
    started: list[subprocess.Popen[bytes]] = []

    def spawn() -> subprocess.Popen[bytes]:
        with (tmp_path / f"worker-{len(started)}.log").open("wb") as log:
            process = subprocess.Popen(
                [*TASKYARD, "worker"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
            )
        started.append(process)
        return process

    yield spawn
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


async def beat_of(services: Services, pid: int) -> str | None:
    """The worker ID of the process `pid`, once it has sent a heartbeat."""
    async with services.sessions() as session:
        found: str | None = await session.scalar(select(WorkerRow.id).where(WorkerRow.pid == pid))
    return found


async def started_worker(services: Services, spawn: Spawn) -> tuple[subprocess.Popen[bytes], str]:
    """A worker process that has registered its tasks and beat once, and its ID."""
    process = spawn()
    worker_id: str = await wait_for(lambda: beat_of(services, process.pid), "the worker's beat")
    return process, worker_id


async def running_on(
    services: Services, viewer: Viewer, worker_id: str, params: dict[str, int], steps: int
) -> Run:
    """A demo.count run that `worker_id` has counted at least `steps` steps of."""
    run = await start(services, viewer, "demo.count", params)

    async def counted() -> bool:
        events = await stored_events(services, run.id)
        return sum(e.kind is EventKind.PROGRESS for e in events) >= steps

    await wait_for(counted, f"{steps} steps of the count")
    running = await current(services, viewer, run.id)
    assert (running.status, running.worker_id) == (RunStatus.RUNNING, worker_id)
    return running


async def outcomes(services: Services, run: Run) -> list[AttemptOutcome | None]:
    [attempts] = await services.runs.attempts_of([run.id])
    return [attempt.outcome for attempt in attempts]


async def test_a_run_on_a_killed_worker_is_retried_elsewhere_and_succeeds(
    services: Services, settings: Settings, spawn_worker: Spawn
) -> None:
    viewer = await viewer_of(services)
    doomed, worker_id = await started_worker(services, spawn_worker)
    run = await running_on(services, viewer, worker_id, {"to": 20, "delayMs": 100}, steps=2)
    family = [psutil.Process(doomed.pid), *psutil.Process(doomed.pid).children(recursive=True)]
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    killed = time.monotonic()
    survivor = quick_settings(settings, worker_stale_after=STALE_AFTER)
    async with running_worker(services, survivor):
        ended = await until_status(services, viewer, run.id, timeout=25)
    # Stale after 2 s, swept every 0.5 s, a back-off of at most 2 s, then 2 s of counting.
    assert time.monotonic() - killed < 15
    assert (ended.status, ended.result) == (RunStatus.SUCCEEDED, {"count": 20})
    assert await outcomes(services, ended) == [AttemptOutcome.WORKER_LOST, AttemptOutcome.SUCCEEDED]
    assert alive(family) == []


async def test_a_stopped_worker_hands_its_run_back_for_another_to_finish(
    services: Services, settings: Settings, spawn_worker: Spawn
) -> None:
    viewer = await viewer_of(services)
    stopping, worker_id = await started_worker(services, spawn_worker)
    run = await running_on(services, viewer, worker_id, {"to": 50, "delayMs": 100}, steps=2)
    stopping.send_signal(signal.SIGTERM)
    asked = time.monotonic()
    assert await asyncio.to_thread(stopping.wait, 15) == 0
    # It waited its grace for the run, then cancelled it and handed it back.
    assert SHUTDOWN_GRACE_SECONDS <= time.monotonic() - asked < SHUTDOWN_GRACE_SECONDS + 5
    handed_back = await current(services, viewer, run.id)
    if handed_back.status is RunStatus.SUCCEEDED:
        # Python 3.11 can lose the cancel that ends the grace inside redis-py's wait_for; the
        # run then finishes before the worker exits, the other clean outcome of a stop.
        assert await outcomes(services, run) == [AttemptOutcome.SUCCEEDED]
        return
    assert (handed_back.status, handed_back.worker_id) == (RunStatus.QUEUED, None)
    assert await outcomes(services, run) == [AttemptOutcome.INTERRUPTED]
    async with running_worker(services, quick_settings(settings)):
        ended = await until_status(services, viewer, run.id, timeout=15)
    assert (ended.status, ended.result) == (RunStatus.SUCCEEDED, {"count": 50})
    assert await outcomes(services, run) == [
        AttemptOutcome.INTERRUPTED,
        AttemptOutcome.SUCCEEDED,
    ]


async def test_a_stopped_worker_finishes_a_run_that_ends_within_its_grace(
    services: Services, spawn_worker: Spawn
) -> None:
    viewer = await viewer_of(services)
    stopping, worker_id = await started_worker(services, spawn_worker)
    run = await running_on(services, viewer, worker_id, {"to": 10, "delayMs": 100}, steps=5)
    stopping.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(stopping.wait, 15) == 0
    ended = await current(services, viewer, run.id)
    assert (ended.status, ended.attempt) == (RunStatus.SUCCEEDED, 1)
    assert await outcomes(services, run) == [AttemptOutcome.SUCCEEDED]


async def test_runs_whose_jobs_redis_lost_are_queued_again_and_complete(
    services: Services, settings: Settings
) -> None:
    viewer = await viewer_of(services)
    async with running_worker(services, quick_settings(settings, worker_concurrency=1)):
        params = {"to": 3, "delayMs": 100}
        runs = [await start(services, viewer, "demo.count", params) for _ in range(4)]
        await until_status(services, viewer, runs[0].id, RunStatus.RUNNING)
        await services.redis.flushdb()
        assert await services.run_queue.missing([run.id for run in runs]) == {r.id for r in runs}
        ended = [await until_status(services, viewer, run.id, timeout=20) for run in runs]
    assert [run.status for run in ended] == [RunStatus.SUCCEEDED] * 4
    assert [run.attempt for run in ended] == [1] * 4


@pytest.fixture
def private_postgres() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this test's own, migrated, that the test may stop and start."""
    with shared_tmp_dir() as root:
        server = EmbeddedPostgres(root, free_port())
        # Started from the main thread: the server dies with the thread that started it.
        server.start()
        try:
            migrations.upgrade(server.url)
            yield server
        finally:
            server.stop()


async def test_a_worker_keeps_saving_through_a_postgres_restart(
    private_postgres: EmbeddedPostgres,
    settings: Settings,
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    own = msgspec.structs.replace(
        settings, database_url=private_postgres.url, db_connect_timeout=1.0
    )
    services = build_services(own, database_url=private_postgres.url, redis_url=redis_url)
    await services.redis.flushdb()
    caplog.set_level(logging.WARNING, logger="taskyard.worker")
    try:
        viewer = await viewer_of(services)
        async with running_worker(services, quick_settings(own)):
            run = await start(services, viewer, "demo.count", {"to": 30, "delayMs": 100})
            await until_status(services, viewer, run.id, RunStatus.RUNNING)
            await asyncio.sleep(0.5)
            private_postgres.stop()
            await asyncio.sleep(2)
            private_postgres.start()
            ended = await until_status(services, viewer, run.id, timeout=25)
        events = await stored_events(services, run.id)
    finally:
        await services.close()
    # The same attempt carried on: no step was lost and none ran twice in another attempt.
    assert (ended.status, ended.attempt, ended.result) == (RunStatus.SUCCEEDED, 1, {"count": 30})
    counted = {e.message for e in events if e.kind is EventKind.PROGRESS}
    assert counted == {f"{i}/30" for i in range(1, 31)}
    assert any(r.getMessage().startswith("cannot save") for r in caplog.records)

"""arq worker settings: the same services as the API, built by the same bootstrap."""

import asyncio
import contextlib
import logging
import signal
from datetime import UTC, datetime
from typing import Any

from arq.worker import Function, Worker, func

from domain.runs.rules import RUN_JOB
from domain.system import PING_JOB
from infra.bootstrap import Services, build_services, run_policy
from infra.queue import QUEUE_NAME, deserialize, serialize
from infra.settings import Settings
from workers.context import JobContext
from workers.heartbeat import beat_forever, new_beat
from workers.periodic import every
from workers.recovery import recover
from workers.runs import RunAttempts, run
from workers.saving import SaveRetry
from workers.system import system_ping
from workers.tasks.catalog import Catalog, load_catalog

logger = logging.getLogger("taskyard.worker")

# arq counts every pass of a run's job: retries, back-off deferrals and hand-backs. PostgreSQL
# decides when a run has had enough attempts, so arq's own count must never be what stops it.
RUN_MAX_TRIES = 1_000_000
# A run's timeout is enforced around its task; arq's job timeout only catches a worker bug.
BACKSTOP_SECONDS = 60.0
# On SIGTERM or SIGINT the worker takes no new job and gives running ones this long to end;
# then it cancels them and hands their runs back. Short enough for `taskyard dev`'s grace
# and a container's stop timeout, long enough that a run about to finish does not run again.
SHUTDOWN_GRACE_SECONDS = 2
PING_RESULT_SECONDS = 60
CANCEL_AGAIN_SECONDS = 0.1


def functions(settings: Settings) -> tuple[Function, ...]:
    """The jobs a worker runs."""
    backstop = run_policy(settings).max_timeout_seconds + BACKSTOP_SECONDS
    return (
        # The API waits for a ping's result, so a ping keeps it a while.
        func(system_ping, name=PING_JOB, keep_result=PING_RESULT_SECONDS),
        func(run, name=RUN_JOB, timeout=backstop, max_tries=RUN_MAX_TRIES),
    )


def queue_read_limit(settings: Settings) -> int:
    """How many job IDs a worker reads from the queue per poll.

    arq reads due job IDs in score order (so lanes hold) and starts them while it has free
    slots; once full it drops the rest of what it read and reads afresh at its next poll, so
    a HIGH run queued behind a LOW backlog is never stuck behind IDs read earlier. A running
    job keeps its ID at the head of the queue until it ends, though: a limit below the number
    of jobs running across all workers would let a worker read nothing but running jobs and
    sit idle. So the limit stays generous, as arq's default is.
    """
    return max(settings.worker_concurrency * 5, 100)


async def register_catalog(services: Services, catalog: Catalog) -> None:
    """Register the tasks this worker runs, waiting for the database if it is not up yet."""
    wait = SaveRetry(what="register the task catalog", give_up_after=None)
    await wait(lambda: services.runs.register_tasks(catalog.tasks(datetime.now(UTC))))
    logger.info("registered tasks: %s", ", ".join(catalog.names))


def worker_settings(
    settings: Settings, *, database_url: str, redis_url: str, catalog: Catalog | None = None
) -> dict[str, Any]:
    """Keyword arguments for `arq.worker.Worker`; `catalog` defaults to the installed tasks."""
    services = build_services(settings, database_url=database_url, redis_url=redis_url)
    tasks = catalog or load_catalog()

    async def on_startup(ctx: JobContext) -> None:
        beat = new_beat()
        await register_catalog(services, tasks)
        # The reaper takes a run claimed by a worker it has never heard of for a lost one.
        await services.workers.beat(beat)
        ctx["services"] = services
        ctx["worker_id"] = beat.id
        ctx["attempts"] = RunAttempts(
            executor=services.executor, catalog=tasks, worker_id=beat.id, save=SaveRetry()
        )
        ctx["background"] = (
            asyncio.create_task(
                beat_forever(services.workers, beat, interval=settings.worker_heartbeat_interval)
            ),
            asyncio.create_task(
                every(
                    settings.run_reaper_interval,
                    lambda: recover(services.recovery),
                    what="run recovery",
                )
            ),
        )
        logger.info("worker %s started", beat.id)

    async def on_shutdown(ctx: JobContext) -> None:
        for task in ctx.get("background", ()):
            task.cancel()
        # Best effort: a row left behind simply ages out of the readiness check.
        with contextlib.suppress(Exception):
            await services.workers.forget(ctx["worker_id"])
        await services.close()

    return {
        "functions": functions(settings),
        "queue_name": QUEUE_NAME,
        "redis_pool": services.redis,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "max_jobs": settings.worker_concurrency,
        "queue_read_limit": queue_read_limit(settings),
        "allow_abort_jobs": True,
        "job_completion_wait": SHUTDOWN_GRACE_SECONDS,
        "job_serializer": serialize,
        "job_deserializer": deserialize,
        # A run's outcome lives in PostgreSQL. A result arq kept, of a job that ended or
        # failed, would make arq refuse the reconciler's new job under the same run ID.
        "keep_result": 0,
        "poll_delay": 0.1,
        "handle_signals": True,
    }


async def cancel_until_done(task: asyncio.Task[Any]) -> None:
    """Cancel `task` again and again until it ends.

    On Python 3.11 `asyncio.wait_for`, which redis-py wraps around sending each command,
    returns instead of raising when a cancel lands just as the send completes (CPython
    gh-86296, fixed in 3.12). One lost cancel of arq's main loop would keep a stopped
    worker polling forever.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=CANCEL_AGAIN_SECONDS)


def create_worker(settings: Settings, *, database_url: str, redis_url: str) -> Worker:
    """A ready-to-run arq worker that stops for sure once a signal has stopped it."""
    worker = Worker(**worker_settings(settings, database_url=database_url, redis_url=redis_url))
    stopping: set[asyncio.Task[None]] = set()

    def stop_for_sure(_: signal.Signals) -> None:
        if worker.main_task is not None:
            # Held, so that the loop does not drop the task before it is done.
            stopping.add(asyncio.create_task(cancel_until_done(worker.main_task)))

    # arq calls on_stop right after it cancelled its main loop once, on SIGTERM or SIGINT.
    worker.on_stop = stop_for_sure
    return worker

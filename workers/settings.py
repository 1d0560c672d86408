"""arq worker settings: the same services as the API, built by the same bootstrap."""

import asyncio
import contextlib
import logging
from typing import Any

from arq.worker import Worker, func

from domain.system import PING_JOB
from infra.bootstrap import build_services
from infra.queue import QUEUE_NAME, deserialize, serialize
from infra.settings import Settings
from workers.context import JobContext
from workers.heartbeat import beat_forever, new_beat
from workers.system import system_ping

logger = logging.getLogger("taskyard.worker")
FUNCTIONS = (func(system_ping, name=PING_JOB),)


def worker_settings(settings: Settings, *, database_url: str, redis_url: str) -> dict[str, Any]:
    """Keyword arguments for `arq.worker.Worker`."""
    services = build_services(settings, database_url=database_url, redis_url=redis_url)

    async def on_startup(ctx: JobContext) -> None:
        beat = new_beat()
        ctx["services"] = services
        ctx["worker_id"] = beat.id
        ctx["heartbeat"] = asyncio.create_task(
            beat_forever(services.workers, beat, interval=settings.worker_heartbeat_interval)
        )
        logger.info("worker %s started", beat.id)

    async def on_shutdown(ctx: JobContext) -> None:
        ctx["heartbeat"].cancel()
        # Best effort: a row left behind simply ages out of the readiness check.
        with contextlib.suppress(Exception):
            await services.workers.forget(ctx["worker_id"])
        await services.close()

    return {
        "functions": FUNCTIONS,
        "queue_name": QUEUE_NAME,
        "redis_pool": services.redis,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "max_jobs": settings.worker_concurrency,
        "job_serializer": serialize,
        "job_deserializer": deserialize,
        "keep_result": 60,
        "poll_delay": 0.1,
        "handle_signals": True,
    }


def create_worker(settings: Settings, *, database_url: str, redis_url: str) -> Worker:
    """A ready-to-run arq worker."""
    return Worker(**worker_settings(settings, database_url=database_url, redis_url=redis_url))

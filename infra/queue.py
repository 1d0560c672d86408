"""The arq job queue behind the domain's `JobQueue` port, serialized with msgspec."""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import msgspec
from arq.connections import ArqRedis, RedisSettings
from redis.exceptions import RedisError

from domain.errors import Unavailable

# msgpack instead of arq's default pickle: a payload in Redis must never be able to run code.
serialize = msgspec.msgpack.encode
deserialize = msgspec.msgpack.decode

QUEUE_NAME = "taskyard:queue"


def redis_settings(url: str) -> RedisSettings:
    """arq's connection settings for a Redis URL."""
    settings = RedisSettings.from_dsn(url)
    settings.conn_timeout = 2
    settings.conn_retries = 1
    return settings


@contextmanager
def queue_errors() -> Iterator[None]:
    """Raise `Unavailable` for Redis and network failures inside the block."""
    try:
        yield
    except (RedisError, OSError) as exc:
        raise Unavailable(f"the job queue is unreachable: {type(exc).__name__}") from exc


class ArqJobQueue:
    """Runs domain jobs on arq workers."""

    def __init__(self, pool: ArqRedis) -> None:
        self._pool = pool

    async def call(self, function: str, payload: Mapping[str, Any], *, timeout: float) -> Any:
        """Enqueue `function(payload)` and wait up to `timeout` seconds for its result."""
        with queue_errors():
            job = await self._pool.enqueue_job(function, dict(payload))
            if job is None:
                raise Unavailable("the job was not accepted by the queue")
            try:
                return await job.result(timeout=timeout, poll_delay=0.05)
            # Waiting too long for the result is a missing worker, not an unreachable Redis.
            except TimeoutError as exc:
                raise Unavailable(f"no worker answered within {timeout:g}s") from exc

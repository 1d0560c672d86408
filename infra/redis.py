"""The Redis client, configured to ride out a Redis restart."""

from arq.connections import ArqRedis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from infra.queue import QUEUE_NAME, deserialize, serialize


def create_redis(url: str) -> ArqRedis:
    """One client for plain commands and arq jobs; it connects on first use, not here.

    It retries briefly on connection loss and checks idle connections, so a Redis
    restart costs the callers of that moment a retriable error, not the process.
    """
    redis: ArqRedis = ArqRedis.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    redis.job_serializer = serialize
    redis.job_deserializer = deserialize
    redis.default_queue_name = QUEUE_NAME
    return redis

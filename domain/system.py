"""System-level operations that prove the platform's moving parts work together."""

import time
from dataclasses import dataclass

from domain.errors import InvalidInput
from domain.ports import JobQueue

PING_JOB = "system.ping"
MAX_PING_MESSAGE = 256


@dataclass(frozen=True, slots=True)
class PingReply:
    """A worker's answer to a ping, with the time the round trip took."""

    message: str
    worker: str
    round_trip_ms: float


def validate_ping_message(message: str) -> None:
    """A ping message is short, so a ping can't be used to load the queue."""
    if len(message) > MAX_PING_MESSAGE:
        raise InvalidInput(
            f"message must be at most {MAX_PING_MESSAGE} characters", path=["message"]
        )


async def ping_worker(queue: JobQueue, message: str, *, timeout: float) -> PingReply:
    """Send `message` through the queue to a worker and return its echo."""
    validate_ping_message(message)
    started = time.perf_counter()
    result = await queue.call(PING_JOB, {"message": message}, timeout=timeout)
    elapsed = round((time.perf_counter() - started) * 1000, 2)
    return PingReply(
        message=str(result["message"]), worker=str(result["worker"]), round_trip_ms=elapsed
    )

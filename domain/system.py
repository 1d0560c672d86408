"""System-level operations that prove the platform's moving parts work together."""

import time
from dataclasses import dataclass

from domain.audit import Attempt, Auditor
from domain.errors import InvalidInput
from domain.identity.models import RequestMeta, Scope, Viewer
from domain.identity.rules import require_scope
from domain.ports import JobQueue, UnitOfWork

PING_JOB = "system.ping"
PING_ACTION = "system.ping"
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


async def ping(
    auditor: Auditor,
    queue: JobQueue,
    *,
    viewer: Viewer,
    meta: RequestMeta,
    message: str,
    timeout: float,
) -> PingReply:
    """An audited ping by a caller allowed to put work on the queue."""

    async def change(_: UnitOfWork) -> PingReply:
        require_scope(viewer, Scope.WRITE)
        return await ping_worker(queue, message, timeout=timeout)

    return await auditor.run(Attempt(PING_ACTION, None, viewer, meta), change)

"""The worker heartbeat: a durable sign of life that readiness and the reaper rely on."""

import os
import socket
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from domain.workers import WorkerBeat, WorkerRegistry
from infra.version import taskyard_version
from workers.periodic import every


def new_beat() -> WorkerBeat:
    """The first heartbeat of this process."""
    now = datetime.now(UTC)
    return WorkerBeat(
        id=uuid.uuid4().hex,
        hostname=socket.gethostname(),
        pid=os.getpid(),
        version=taskyard_version(),
        started_at=now,
        last_seen_at=now,
    )


async def beat_forever(registry: WorkerRegistry, first: WorkerBeat, *, interval: float) -> None:
    """Send a heartbeat every `interval` seconds; a failed beat is logged and retried."""

    async def beat() -> None:
        await registry.beat(replace(first, last_seen_at=datetime.now(UTC)))

    await every(interval, beat, what="heartbeat")

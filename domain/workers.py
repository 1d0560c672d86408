"""Workers as the platform sees them: processes that announce themselves with heartbeats."""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class WorkerBeat:
    """One worker process's latest sign of life."""

    id: str
    hostname: str
    pid: int
    version: str
    started_at: datetime
    last_seen_at: datetime


class WorkerRegistry(Protocol):
    """Stores worker heartbeats durably, so liveness survives a Redis loss."""

    async def beat(self, beat: WorkerBeat) -> None:
        """Record that a worker is alive now."""
        ...

    async def latest(self) -> WorkerBeat | None:
        """The most recent heartbeat of any worker."""
        ...

    async def forget(self, worker_id: str) -> None:
        """Remove a worker that shut down cleanly."""
        ...


def is_fresh(beat: WorkerBeat | None, *, now: datetime, stale_after: float) -> bool:
    """Whether a heartbeat is recent enough for its worker to count as alive."""
    return beat is not None and (now - beat.last_seen_at).total_seconds() <= stale_after

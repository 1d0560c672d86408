"""Recovery: runs whose worker died, and queued runs the queue lost, are never left behind."""

from domain.ports import Clock, UnitOfWorkFactory
from domain.runs.policy import RunPolicy
from domain.runs.ports import EventBus, RunQueue


class RunRecovery:
    """Periodic repairs that make PostgreSQL's view of runs come true."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        queue: RunQueue,
        bus: EventBus,
        clock: Clock,
        policy: RunPolicy,
    ) -> None:
        self._uow = uow
        self._queue = queue
        self._bus = bus
        self._clock = clock
        self._policy = policy

    async def reap_lost_runs(self, *, limit: int = 100) -> int:
        """End the attempts of RUNNING runs whose worker went silent; return how many.

        Each such run is retried while attempts remain, else fails with `WORKER_LOST`;
        one that was asked to cancel ends CANCELLED.
        """
        raise NotImplementedError

    async def enqueue_missing(self, *, limit: int = 1000) -> int:
        """Queue again the due QUEUED runs that the queue holds no job for; return how many."""
        raise NotImplementedError

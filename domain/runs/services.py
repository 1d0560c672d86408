"""The run service: starting, reading, cancelling and retrying runs on behalf of a viewer."""

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from domain.audit import Auditor
from domain.identity.models import RequestMeta, Viewer
from domain.paging import Page, PageRequest
from domain.ports import Clock, UnitOfWorkFactory
from domain.runs.models import (
    Priority,
    Run,
    RunAttempt,
    RunEvent,
    RunFilter,
    RunOrder,
    RunUpdate,
    Task,
)
from domain.runs.policy import RunPolicy
from domain.runs.ports import EventBus, ParamsValidator, RunQueue


class RunService:
    """Runs as callers see them. Every change is audited; every read respects visibility."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        queue: RunQueue,
        bus: EventBus,
        validator: ParamsValidator,
        clock: Clock,
        policy: RunPolicy,
    ) -> None:
        self._uow = uow
        self._queue = queue
        self._bus = bus
        self._validator = validator
        self._clock = clock
        self._policy = policy
        self._auditor = Auditor(uow, clock)

    # -- the catalog -----------------------------------------------------------------------

    async def register_tasks(self, tasks: Sequence[Task]) -> None:
        """Add or replace the tasks a worker can run."""
        raise NotImplementedError

    async def list_tasks(self, *, viewer: Viewer) -> list[Task]:
        """Every registered task, by name."""
        raise NotImplementedError

    async def get_tasks(self, names: Sequence[str]) -> list[Task | None]:
        """Tasks in the order of `names` (for loaders; no viewer check)."""
        raise NotImplementedError

    # -- changes ---------------------------------------------------------------------------

    async def start_run(
        self,
        *,
        viewer: Viewer,
        meta: RequestMeta,
        task: str,
        params: Any,
        priority: Priority | None = None,
        idempotency_key: str | None = None,
    ) -> Run:
        """Validate, commit the run with its first event, then queue it.

        A queue that is down does not lose the run: it stays QUEUED and the reconciler
        queues it. The same user and idempotency key within the window return the first run.
        """
        raise NotImplementedError

    async def cancel_run(self, *, viewer: Viewer, meta: RequestMeta, run_id: uuid.UUID) -> Run:
        """Cancel a queued run at once, or ask a running one's worker to stop it."""
        raise NotImplementedError

    async def retry_run(self, *, viewer: Viewer, meta: RequestMeta, run_id: uuid.UUID) -> Run:
        """Start a new run of a finished one's task and parameters, linked to it."""
        raise NotImplementedError

    # -- reads -----------------------------------------------------------------------------

    async def get_runs(self, *, viewer: Viewer, ids: Sequence[uuid.UUID]) -> list[Run | None]:
        """Runs in the order of `ids`; None for those that do not exist or are not visible."""
        raise NotImplementedError

    async def page_runs(
        self, *, viewer: Viewer, run_filter: RunFilter, order: RunOrder, request: PageRequest
    ) -> Page[Run]:
        """A page of the runs the viewer may see."""
        raise NotImplementedError

    async def attempts_of(self, run_ids: Sequence[uuid.UUID]) -> list[list[RunAttempt]]:
        """Each run's attempts (for loaders; the caller already checked visibility)."""
        raise NotImplementedError

    async def latest_logs(
        self, run_ids: Sequence[uuid.UUID], *, limit: int
    ) -> list[list[RunEvent]]:
        """Each run's newest `limit` log lines, oldest first (for loaders)."""
        raise NotImplementedError

    async def runs_of_creators(
        self, *, viewer: Viewer, user_ids: Sequence[uuid.UUID], limit: int
    ) -> list[list[Run]]:
        """Each user's newest runs that the viewer may see (for loaders)."""
        raise NotImplementedError

    async def page_logs(
        self, *, viewer: Viewer, run_id: uuid.UUID, request: PageRequest
    ) -> Page[RunEvent]:
        """A page of one visible run's log lines, oldest first."""
        raise NotImplementedError

    async def page_events(
        self, *, viewer: Viewer, run_id: uuid.UUID, request: PageRequest
    ) -> Page[RunEvent]:
        """A page of one visible run's events of every kind, for clients without WebSockets."""
        raise NotImplementedError

    # -- live ------------------------------------------------------------------------------

    def gen_events(
        self, *, viewer: Viewer, run_id: uuid.UUID, after_seq: int | None
    ) -> AsyncIterator[RunEvent]:
        """Replay a visible run's events after `after_seq`, then follow them live.

        No gap and no duplicate; ends after the final event. Raises `NotFound` for a run
        the viewer may not see, and `StreamLagged` when the consumer falls too far behind.
        """
        raise NotImplementedError

    def gen_updates(self, *, viewer: Viewer, run_filter: RunFilter) -> AsyncIterator[RunUpdate]:
        """Live updates of the runs the viewer may see that match `run_filter`."""
        raise NotImplementedError

"""The run service: starting, reading, cancelling and retrying runs on behalf of a viewer."""

import enum
import uuid
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any

from domain.audit import Attempt, Auditor
from domain.errors import InvalidInput
from domain.identity.models import RequestMeta, Scope, Viewer
from domain.identity.rules import require_scope
from domain.paging import Page, PageRequest
from domain.plans.limits import PlanLimits
from domain.plans.models import Admission
from domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from domain.runs import journal, lifecycle, rules
from domain.runs.inputs import StartRequest, check_start, is_plausible_task_name
from domain.runs.models import (
    EventKind,
    Priority,
    Run,
    RunAttempt,
    RunEvent,
    RunFilter,
    RunOrder,
    RunStatus,
    RunUpdate,
    Task,
)
from domain.runs.policy import RunPolicy
from domain.runs.ports import EventBus, ParamsValidator, RunQueue
from domain.runs.streaming import follow_events


class RunAction(enum.StrEnum):
    """Names of run changes in the audit trail."""

    START = "run.start"
    CANCEL = "run.cancel"
    RETRY = "run.retry"


RUN_TARGET = "Run"
ALL_KINDS = frozenset(EventKind)
LOG_KINDS = frozenset({EventKind.LOG})


@dataclass(frozen=True, slots=True)
class _Change:
    """A run as a change left it, with the events to publish once it is committed."""

    run: Run
    events: list[RunEvent]
    # What the plan said of a new run; None for an earlier start's run, or without plans.
    admission: Admission | None = None


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
        limits: PlanLimits | None = None,
    ) -> None:
        self._uow = uow
        self._queue = queue
        self._bus = bus
        self._validator = validator
        self._clock = clock
        self._policy = policy
        # None runs without plans: no quota, no lane cap (for tests and measurements).
        self._limits = limits
        self._auditor = Auditor(uow, clock)

    # -- the catalog -----------------------------------------------------------------------

    async def register_tasks(self, tasks: Sequence[Task]) -> None:
        """Add or replace the tasks a worker can run."""
        async with self._uow() as uow:
            await uow.tasks.upsert(tasks)
            await uow.commit()

    async def list_tasks(self, *, viewer: Viewer) -> list[Task]:
        """Every registered task, by name."""
        require_scope(viewer, Scope.READ)
        async with self._uow() as uow:
            return await uow.tasks.all()

    async def get_tasks(self, names: Sequence[str]) -> list[Task | None]:
        """Tasks in the order of `names` (for loaders; no viewer check)."""
        async with self._uow() as uow:
            return await uow.tasks.get_many(names)

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
        request = StartRequest(task, params, priority, idempotency_key)

        async def change(uow: UnitOfWork) -> _Change:
            return await self._create(uow, viewer, request)

        attempt = Attempt(RunAction.START, RUN_TARGET, viewer, meta)
        started = await self._auditor.run(attempt, change, lambda made: str(made.run.id))
        return await self._launch(viewer, started)

    async def cancel_run(self, *, viewer: Viewer, meta: RequestMeta, run_id: uuid.UUID) -> Run:
        """Cancel a queued run at once, or ask a running one's worker to stop it."""

        async def change(uow: UnitOfWork) -> _Change:
            run = rules.manageable_run(viewer, await uow.runs.get(run_id, for_update=True))
            rules.require_not_final(run)
            events = lifecycle.cancel(run, self._clock.now())
            # Publish the stored events: only they carry their sequence numbers.
            stored = await journal.record(uow, run, events) if events else []
            return _Change(run, stored)

        attempt = Attempt(RunAction.CANCEL, RUN_TARGET, viewer, meta, target_id=str(run_id))
        cancelled = await self._auditor.run(attempt, change)
        run = cancelled.run
        if run.status is RunStatus.RUNNING:
            # Asked again even when a cancel was already requested, in case the first was lost.
            await journal.tell_queue(self._queue.abort(run.id), run.id, "abort")
        await journal.publish(self._bus, run, cancelled.events)
        return rules.redact_run(viewer, run)

    async def retry_run(self, *, viewer: Viewer, meta: RequestMeta, run_id: uuid.UUID) -> Run:
        """Start a new run of a finished one's task and parameters, linked to it."""

        async def change(uow: UnitOfWork) -> _Change:
            original = rules.manageable_run(viewer, await uow.runs.get(run_id))
            rules.require_final(original)
            request = StartRequest(
                original.task_name, original.params, original.priority, retry_of=original.id
            )
            return await self._create(uow, viewer, request)

        attempt = Attempt(RunAction.RETRY, RUN_TARGET, viewer, meta, target_id=str(run_id))
        return await self._launch(viewer, await self._auditor.run(attempt, change))

    async def _create(self, uow: UnitOfWork, viewer: Viewer, request: StartRequest) -> _Change:
        """The one way runs are made: checked, committed with their first event by the caller.

        An earlier run with the same user and idempotency key comes back without events, and
        is not counted again. A new run is counted against the user's plan in this same
        transaction, so a refused or failed start counts nothing.
        """
        require_scope(viewer, Scope.WRITE)
        now = self._clock.now()
        found = None
        if is_plausible_task_name(request.task):
            [found] = await uow.tasks.get_many([request.task])
        task = check_start(request, found, self._validator, self._policy)
        if request.idempotency_key is not None:
            earlier = await self._earlier_start(uow, viewer, request.idempotency_key)
            if earlier is not None:
                return _Change(earlier, [])
        admission = None
        if self._limits is not None:
            retry = request.retry_of is not None
            admission = await self._limits.admit(uow, viewer.user.id, request.priority, retry=retry)
            request = replace(request, priority=admission.priority)
        run = lifecycle.new_run(
            task, request, created_by=viewer.user.id, now=now, policy=self._policy
        )
        await uow.runs.add(run)
        events = await journal.append(uow, run, [lifecycle.status_event(run, now)])
        if self._limits is not None and admission is not None:
            # Last, so the user's counter is locked for as short a time as possible.
            admission = await self._limits.count(uow, viewer.user.id, admission, now=now)
        return _Change(run, events, admission)

    async def _earlier_start(self, uow: UnitOfWork, viewer: Viewer, key: str) -> Run | None:
        # The lock makes concurrent starts with one key wait, so only the first one inserts.
        await uow.runs.lock_idempotency_key(viewer.user.id, key)
        since = self._clock.now() - self._policy.idempotency_window
        return await uow.runs.find_by_idempotency_key(viewer.user.id, key, since=since)

    async def _launch(self, viewer: Viewer, started: _Change) -> Run:
        """Queue and announce a committed new run; an earlier start's run is left as it is."""
        run = started.run
        if started.events:
            queued = self._queue.enqueue(run.id, run.priority, at=run.created_at)
            await journal.tell_queue(queued, run.id, "queue")
            await journal.publish(self._bus, run, started.events)
        if self._limits is not None and started.admission is not None:
            await self._limits.announce(started.admission)
        return rules.redact_run(viewer, run)

    # -- reads -----------------------------------------------------------------------------

    async def get_runs(self, *, viewer: Viewer, ids: Sequence[uuid.UUID]) -> list[Run | None]:
        """Runs in the order of `ids`; None for those that do not exist or are not visible."""
        require_scope(viewer, Scope.READ)
        async with self._uow() as uow:
            runs = await uow.runs.get_many(ids)
        return [
            rules.redact_run(viewer, run) if run and rules.may_see_run(viewer, run) else None
            for run in runs
        ]

    async def page_runs(
        self, *, viewer: Viewer, run_filter: RunFilter, order: RunOrder, request: PageRequest
    ) -> Page[Run]:
        """A page of the runs the viewer may see."""
        require_scope(viewer, Scope.READ)
        in_sight = rules.filter_in_sight(viewer, run_filter)
        if in_sight is None:
            return Page(items=[], keys=[], has_next=False, total_count=0)
        async with self._uow() as uow:
            page = await uow.runs.page(in_sight, order, request)
        return replace(page, items=[rules.redact_run(viewer, run) for run in page.items])

    async def attempts_of(self, run_ids: Sequence[uuid.UUID]) -> list[list[RunAttempt]]:
        """Each run's attempts (for loaders; the caller already checked visibility)."""
        async with self._uow() as uow:
            return await uow.runs.attempts_of(run_ids)

    async def latest_logs(
        self, run_ids: Sequence[uuid.UUID], *, limit: int
    ) -> list[list[RunEvent]]:
        """Each run's newest `limit` log lines, oldest first (for loaders)."""
        async with self._uow() as uow:
            return await uow.run_events.latest(run_ids, EventKind.LOG, limit=limit)

    async def runs_of_creators(
        self, *, viewer: Viewer, user_ids: Sequence[uuid.UUID], limit: int
    ) -> list[list[Run]]:
        """Each user's newest runs that the viewer may see (for loaders)."""
        require_scope(viewer, Scope.READ)
        in_sight = rules.creators_in_sight(viewer, user_ids)
        if not in_sight:
            return [[] for _ in user_ids]
        async with self._uow() as uow:
            found = await uow.runs.for_creators(in_sight, limit=limit)
        by_user = dict(zip(in_sight, found, strict=True))
        return [[rules.redact_run(viewer, run) for run in by_user.get(u, [])] for u in user_ids]

    async def page_logs(
        self, *, viewer: Viewer, run_id: uuid.UUID, request: PageRequest
    ) -> Page[RunEvent]:
        """A page of one visible run's log lines, oldest first."""
        return await self._page_events(viewer, run_id, LOG_KINDS, request)

    async def page_events(
        self, *, viewer: Viewer, run_id: uuid.UUID, request: PageRequest
    ) -> Page[RunEvent]:
        """A page of one visible run's events of every kind, for clients without WebSockets."""
        return await self._page_events(viewer, run_id, ALL_KINDS, request)

    async def _page_events(
        self, viewer: Viewer, run_id: uuid.UUID, kinds: frozenset[EventKind], request: PageRequest
    ) -> Page[RunEvent]:
        async with self._uow() as uow:
            rules.visible_run(viewer, await uow.runs.get(run_id))
            page = await uow.run_events.page(run_id, kinds, request)
        return replace(page, items=[rules.redact_event(viewer, event) for event in page.items])

    # -- live ------------------------------------------------------------------------------

    async def gen_events(
        self, *, viewer: Viewer, run_id: uuid.UUID, after_seq: int | None
    ) -> AsyncGenerator[RunEvent, None]:
        """Replay a visible run's events after `after_seq`, then follow them live.

        No gap and no duplicate; ends after the final event. Raises `NotFound` for a run
        the viewer may not see, and `StreamLagged` when the consumer falls too far behind.
        """
        async with self._uow() as uow:
            run = rules.visible_run(viewer, await uow.runs.get(run_id))
        start = after_seq or 0
        if not 0 <= start <= run.last_seq:
            message = f"afterSeq must be from 0 to the run's latest sequence number, {run.last_seq}"
            raise InvalidInput(message, path=["afterSeq"])
        events = follow_events(
            uow=self._uow, bus=self._bus, run_id=run_id, after_seq=start, policy=self._policy
        )
        async with aclosing(events):
            async for event in events:
                yield rules.redact_event(viewer, event)

    async def gen_updates(
        self, *, viewer: Viewer, run_filter: RunFilter
    ) -> AsyncGenerator[RunUpdate, None]:
        """Live updates of the runs the viewer may see that match `run_filter`."""
        require_scope(viewer, Scope.READ)
        async with self._bus.watch_updates() as live:
            async for update in live:
                if rules.update_matches(viewer, run_filter, update):
                    yield update

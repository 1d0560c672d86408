"""GraphQL views of tasks, runs and their attempts, built from domain objects."""

from datetime import datetime
from typing import Self

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from api.connections import Connection, connection_of
from api.context import Info
from api.identity.types import User
from api.nodes import SignedInNode, load_nodes
from api.paging import page_request
from api.runs.events import (
    RunError,
    RunEventConnection,
    RunLogConnection,
    RunLogLine,
    error_view,
    event_view,
)
from domain.errors import InvalidInput
from domain.identity.models import Viewer
from domain.runs import models

MAX_LATEST_LOGS = 20
LOG_CURSOR = "RunLogLine"
EVENT_CURSOR = "RunEvent"


@strawberry.type(description="What a run of a task gets unless its start says otherwise.")
class TaskDefaults:
    timeout_seconds: float = strawberry.field(description="Longest one attempt may take.")
    max_attempts: int = strawberry.field(description="Tries before a run fails for good.")
    backoff_seconds: float = strawberry.field(
        description="Wait before the first retry; each later one waits up to twice as long."
    )
    priority: models.Priority = strawberry.field(description="The lane runs wait in.")


@strawberry.type(description="A kind of work that workers can run.")
class Task:
    name: str = strawberry.field(description='Unique, dotted by area, e.g. "demo.count".')
    description: str = strawberry.field(description="What the task does, for people.")
    params_schema: JSON = strawberry.field(
        description="JSON Schema of the parameters, to draw a form and check input."
    )
    defaults: TaskDefaults = strawberry.field(description="What its runs get unless told.")
    registered_at: datetime = strawberry.field(description="When a worker last registered it.")

    @classmethod
    def from_domain(cls, task: models.Task) -> Self:
        """View of a domain task."""
        d = task.defaults
        return cls(
            name=task.name,
            description=task.description,
            params_schema=JSON(task.params_schema),
            defaults=TaskDefaults(
                timeout_seconds=d.timeout_seconds,
                max_attempts=d.max_attempts,
                backoff_seconds=d.backoff_seconds,
                priority=d.priority,
            ),
            registered_at=task.registered_at,
        )


@strawberry.type(description="How far a run got, as it last reported.")
class RunProgress:
    fraction: float = strawberry.field(description="From 0 to 1.")
    message: str | None = strawberry.field(description="What the run is doing, in words.")


@strawberry.type(description="One try at a run, on one worker.")
class RunAttempt:
    number: int = strawberry.field(description="Counts from 1.")
    worker_id: str = strawberry.field(description="The worker process that ran it.")
    started_at: datetime
    finished_at: datetime | None = strawberry.field(description="Null while it runs.")
    outcome: models.AttemptOutcome | None = strawberry.field(description="Null while it runs.")
    error: RunError | None = strawberry.field(description="Why it failed, if it did.")

    @classmethod
    def from_domain(cls, attempt: models.RunAttempt) -> Self:
        """View of a domain run attempt."""
        return cls(
            number=attempt.number,
            worker_id=attempt.worker_id,
            started_at=attempt.started_at,
            finished_at=attempt.finished_at,
            outcome=attempt.outcome,
            error=error_view(attempt.error),
        )


def _progress(run: models.Run) -> RunProgress | None:
    if run.progress is None:
        return None
    return RunProgress(fraction=run.progress, message=run.progress_message)


@strawberry.type(description="One execution of a task with given parameters.")
class Run(SignedInNode):
    id: relay.NodeID[str]
    task_name: str = strawberry.field(description="The task's name, even once it is gone.")
    params: JSON = strawberry.field(description="The parameters the run was started with.")
    status: models.RunStatus
    priority: models.Priority = strawberry.field(description="The lane the run waits in.")
    idempotency_key: str | None = strawberry.field(description="The key it was started with.")
    created_at: datetime = strawberry.field(description="When it was started (queued).")
    started_at: datetime | None = strawberry.field(description="When the latest attempt began.")
    finished_at: datetime | None = strawberry.field(description="When it ended, if it has.")
    not_before: datetime | None = strawberry.field(
        description="A queued retry does not start before this."
    )
    attempt: int = strawberry.field(description="Attempts started so far; 0 while never run.")
    max_attempts: int = strawberry.field(description="Tries before the run fails for good.")
    timeout_seconds: float = strawberry.field(description="Longest one attempt may take.")
    backoff_seconds: float = strawberry.field(description="Wait before the first retry.")
    progress: RunProgress | None = strawberry.field(description="As last reported; or null.")
    result: JSON | None = strawberry.field(description="What the task returned, once SUCCEEDED.")
    error: RunError | None = strawberry.field(description="Why the run failed, once it has.")
    cancel_requested_at: datetime | None = strawberry.field(
        description="When a cancel was asked for while the run was running."
    )
    last_seq: int = strawberry.field(
        description="Sequence number of the latest event; subscribe with afterSeq to follow on."
    )
    domain: strawberry.Private[models.Run]

    @classmethod
    def from_domain(cls, run: models.Run) -> Self:
        """View of a domain run."""
        return cls(
            id=str(run.id),
            task_name=run.task_name,
            params=JSON(run.params),
            status=run.status,
            priority=run.priority,
            idempotency_key=run.idempotency_key,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            not_before=run.not_before,
            attempt=run.attempt,
            max_attempts=run.max_attempts,
            timeout_seconds=run.timeout_seconds,
            backoff_seconds=run.backoff_seconds,
            progress=_progress(run),
            result=run.result,
            error=error_view(run.error),
            cancel_requested_at=run.cancel_requested_at,
            last_seq=run.last_seq,
            domain=run,
        )

    @strawberry.field(description="The task; null if no worker registers it any more.")
    async def task(self, info: Info) -> Task | None:
        task = await info.context.load.tasks.load(self.task_name)
        return Task.from_domain(task) if task else None

    @strawberry.field(description="Who started the run; null if that user is gone.")
    async def created_by(self, info: Info) -> User | None:
        if self.domain.created_by is None:
            return None
        user = await info.context.load.users.load(self.domain.created_by)
        return User.from_domain(user) if user else None

    @strawberry.field(description="The run this one retries, if you may see it.")
    async def retry_of(self, info: Info) -> "Run | None":
        if self.domain.retry_of is None:
            return None
        run = await info.context.load.runs.load(self.domain.retry_of)
        return Run.from_domain(run) if run else None

    @strawberry.field(description="Every attempt, oldest first.")
    async def attempts(self, info: Info) -> list[RunAttempt]:
        found = await info.context.load.attempts.load(self.domain.id)
        return [RunAttempt.from_domain(a) for a in found]

    @strawberry.field(description=f"The newest log lines, oldest first; count 1-{MAX_LATEST_LOGS}.")
    async def latest_logs(self, info: Info, count: int = 3) -> list[RunLogLine]:
        if not 1 <= count <= MAX_LATEST_LOGS:
            raise InvalidInput(f"count must be between 1 and {MAX_LATEST_LOGS}", path=["count"])
        found = await info.context.load.latest_logs.load((self.domain.id, count))
        return [RunLogLine.from_domain(e) for e in found]

    @strawberry.field(description="The run's log lines, oldest first; give first or last.")
    async def logs(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> RunLogConnection:
        request = page_request(LOG_CURSOR, first=first, after=after, last=last, before=before)
        page = await info.context.services.runs.page_logs(
            viewer=info.context.require_viewer(), run_id=self.domain.id, request=request
        )
        return connection_of(RunLogConnection, LOG_CURSOR, page, RunLogLine.from_domain)

    @strawberry.field(
        description="The run's events in sequence order, for clients that cannot subscribe."
    )
    async def events(self, info: Info, first: int, after: str | None = None) -> RunEventConnection:
        request = page_request(EVENT_CURSOR, first=first, after=after)
        page = await info.context.services.runs.page_events(
            viewer=info.context.require_viewer(), run_id=self.domain.id, request=request
        )
        return connection_of(RunEventConnection, EVENT_CURSOR, page, event_view)

    @classmethod
    async def resolve_visible(
        cls, info: Info, viewer: Viewer, node_ids: list[str]
    ) -> list[Self | None]:
        """Runs by ID, with the same visibility as `run(id)`."""
        found = await load_nodes(info.context.load.runs, node_ids)
        return [cls.from_domain(run) if run else None for run in found]


@strawberry.type(name="RunConnection", description="A page of runs.")
class RunConnection(Connection[Run]):
    pass

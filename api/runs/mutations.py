"""Run mutations: start, cancel and retry; each returns a payload with its userErrors."""

import uuid
from collections.abc import Awaitable
from typing import Protocol, TypeVar

import strawberry
from strawberry import relay

from api.context import Context, Info
from api.errors import UserError, run_mutation
from api.nodes import object_uuid
from api.runs.inputs import StartRunInput
from api.runs.types import Run
from domain.identity.models import RequestMeta, Viewer
from domain.runs import models
from domain.runs.services import RUN_TARGET, RunAction


class RunChange(Protocol):
    """A service method that changes one run on behalf of a viewer."""

    def __call__(
        self, *, viewer: Viewer, meta: RequestMeta, run_id: uuid.UUID
    ) -> Awaitable[models.Run]: ...


@strawberry.type(description="The result of startRun.")
class StartRunPayload:
    run: Run | None = strawberry.field(
        default=None, description="The run; an earlier one for a repeated idempotency key."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="The result of cancelRun.")
class CancelRunPayload:
    run: Run | None = strawberry.field(default=None, description="The run as cancelling left it.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="The result of retryRun.")
class RetryRunPayload:
    run: Run | None = strawberry.field(default=None, description="The new run.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _changed(context: Context, run: models.Run) -> Run:
    # Later fields of this request must see the run as the change left it.
    context.load.prime_runs([run])
    return Run.from_domain(run)


# The payloads of mutations that change one run by its ID.
Changed = TypeVar("Changed", CancelRunPayload, RetryRunPayload)


async def _change_run(
    context: Context,
    payload: type[Changed],
    action: RunAction,
    run_id: relay.GlobalID,
    change: RunChange,
) -> Changed:
    """Change one run by its ID through `change`; the payload holds the run as it left it."""

    async def act() -> Changed:
        viewer = await context.viewer_for(action, RUN_TARGET)
        target = object_uuid(run_id, RUN_TARGET, path=["id"])
        run = await change(viewer=viewer, meta=context.meta, run_id=target)
        return payload(run=_changed(context, run))

    return await run_mutation(act, payload, root=())


@strawberry.type
class RunsMutation:
    @strawberry.mutation(description="Start a run of a task; it is queued at once.")
    async def start_run(self, info: Info, input: StartRunInput) -> StartRunPayload:
        context = info.context

        async def act() -> StartRunPayload:
            run = await context.services.runs.start_run(
                viewer=await context.viewer_for(RunAction.START, RUN_TARGET),
                meta=context.meta,
                task=input.task,
                params=input.params,
                priority=input.priority,
                idempotency_key=input.idempotency_key,
            )
            return StartRunPayload(run=_changed(context, run))

        return await run_mutation(act, StartRunPayload)

    @strawberry.mutation(
        description="Cancel a run: a queued one at once, a running one as soon as it stops."
    )
    async def cancel_run(self, info: Info, id: relay.GlobalID) -> CancelRunPayload:
        cancel = info.context.services.runs.cancel_run
        return await _change_run(info.context, CancelRunPayload, RunAction.CANCEL, id, cancel)

    @strawberry.mutation(description="Start a new run of an ended run's task and parameters.")
    async def retry_run(self, info: Info, id: relay.GlobalID) -> RetryRunPayload:
        retry = info.context.services.runs.retry_run
        return await _change_run(info.context, RetryRunPayload, RunAction.RETRY, id, retry)

"""Live runs: one run's events, and changes to the runs a viewer may see."""

from collections.abc import AsyncGenerator
from contextlib import aclosing

import strawberry
from strawberry import relay

from api.context import Info
from api.nodes import object_uuid
from api.runs.events import RUN_TYPE, RunEvent, event_view
from api.runs.inputs import RunFilter, run_filter
from api.runs.types import Run


@strawberry.type
class RunsSubscription:
    @strawberry.subscription(
        description="A run's events after afterSeq (all if omitted), replayed then live, "
        "without gaps or duplicates; completes after the final RunResultEvent. To resume "
        "after a drop, subscribe again with the last seq received."
    )
    async def run_events(
        self, info: Info, run_id: relay.GlobalID, after_seq: int | None = None
    ) -> AsyncGenerator[RunEvent, None]:
        viewer = info.context.require_viewer()
        events = info.context.services.runs.gen_events(
            viewer=viewer,
            run_id=object_uuid(run_id, RUN_TYPE, path=["runId"]),
            after_seq=after_seq,
        )
        # Closed on leaving, not when collected, so that its live watch ends with the client's.
        async with aclosing(events) as stream:
            async for event in stream:
                yield event_view(event)

    @strawberry.subscription(
        description="Each run you may see that matches the filter, as it is after a change."
    )
    async def runs_updated(
        self, info: Info, filter: RunFilter | None = None
    ) -> AsyncGenerator[Run, None]:
        context = info.context
        updates = context.services.runs.gen_updates(
            viewer=context.require_viewer(), run_filter=run_filter(filter)
        )
        async with aclosing(updates) as stream:
            async for update in stream:
                context.load.forget_runs()
                run = await context.load.runs.load(update.run_id)
                if run is not None:
                    yield Run.from_domain(run)

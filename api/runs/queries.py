"""Queries of the task catalog and of runs."""

import strawberry
from strawberry import relay

from api.connections import connection_of
from api.context import Info
from api.nodes import object_uuid
from api.paging import page_request
from api.runs.events import RUN_TYPE
from api.runs.inputs import RunFilter, RunOrder, run_filter, run_order
from api.runs.types import Run, RunConnection, Task

RUN_CURSOR = RUN_TYPE


@strawberry.type
class RunsQuery:
    @strawberry.field(description="Every task that workers can run, by name.")
    async def tasks(self, info: Info) -> list[Task]:
        found = await info.context.services.runs.list_tasks(viewer=info.context.require_viewer())
        return [Task.from_domain(t) for t in found]

    @strawberry.field(description="One task by name; null if no worker registers it.")
    async def task(self, info: Info, name: str) -> Task | None:
        found = await info.context.services.runs.list_tasks(viewer=info.context.require_viewer())
        return next((Task.from_domain(t) for t in found if t.name == name), None)

    @strawberry.field(description="One run; null if it does not exist or is not yours to see.")
    async def run(self, info: Info, id: relay.GlobalID) -> Run | None:
        found = await info.context.load.runs.load(object_uuid(id, RUN_TYPE, path=["id"]))
        return Run.from_domain(found) if found else None

    @strawberry.field(description="The runs you may see: yours, or all for administrators.")
    async def runs(
        self,
        info: Info,
        filter: RunFilter | None = None,
        order_by: RunOrder | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> RunConnection:
        page = await info.context.services.runs.page_runs(
            viewer=info.context.require_viewer(),
            run_filter=run_filter(filter),
            order=run_order(order_by),
            request=page_request(RUN_CURSOR, first=first, after=after, last=last, before=before),
        )
        info.context.load.prime_runs(page.items)
        return connection_of(RunConnection, RUN_CURSOR, page, Run.from_domain)

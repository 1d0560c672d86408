"""Tasks: what a run executes. A task is an async function declared with `@task`:

    class Params(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
        to: int

    @task("acme.count", params=Params, defaults=TaskDefaults(max_attempts=5))
    async def count(ctx: TaskContext[Params]) -> dict[str, int]:
        \"\"\"Count to `to`.\"\"\"
        ...

The docstring becomes the catalog's description and the model's JSON Schema its form.
See `workers.tasks.catalog` for how a deployment adds a package of its own tasks.
"""

from domain.runs.models import LogLevel, Priority, TaskDefaults
from workers.tasks.context import TaskContext
from workers.tasks.errors import PermanentFailure, RunCancelled, TaskFailure
from workers.tasks.spec import TaskSpec, task

__all__ = [
    "LogLevel",
    "PermanentFailure",
    "Priority",
    "RunCancelled",
    "TaskContext",
    "TaskDefaults",
    "TaskFailure",
    "TaskSpec",
    "task",
]

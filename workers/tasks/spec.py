"""Declaring a task: a dotted name, a parameter model, defaults and an async function."""

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import msgspec

from domain.runs.execution import Claim
from domain.runs.models import Task, TaskDefaults
from workers.tasks.context import RunReporter, Saver, TaskContext, save_once
from workers.tasks.errors import InvalidParams

P = TypeVar("P", bound=msgspec.Struct)
TaskFunction = Callable[[TaskContext[P]], Awaitable[Any]]
# Lower-case words joined by dots, at least two: `demo.count`, `billing.invoices.send`.
TASK_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
MAX_TASK_NAME = 100


@dataclass(frozen=True, slots=True)
class TaskSpec(Generic[P]):
    """One task a worker can run, as declared with `@task`."""

    name: str
    description: str
    params: type[P]
    defaults: TaskDefaults
    function: TaskFunction[P]

    def params_schema(self) -> dict[str, Any]:
        """The parameters' JSON Schema, self-contained, with the model itself at the root."""
        return params_schema(self.params)

    def describe(self, registered_at: datetime) -> Task:
        """The catalog entry for this task."""
        return Task(
            name=self.name,
            description=self.description,
            params_schema=self.params_schema(),
            defaults=self.defaults,
            registered_at=registered_at,
        )

    def parse(self, raw: Any) -> P:
        """The run's JSON parameters as the task's model, or `InvalidParams`."""
        try:
            return msgspec.convert(raw, self.params)
        except msgspec.ValidationError as exc:
            raise InvalidParams(str(exc)) from None

    async def execute(self, claim: Claim, reporter: RunReporter, save: Saver = save_once) -> Any:
        """Run the task's function for this attempt and return what it returns."""
        params = self.parse(claim.run.params)
        return await self.function(
            TaskContext(claim=claim, params=params, reporter=reporter, save=save)
        )


def params_schema(model: type[msgspec.Struct]) -> dict[str, Any]:
    """msgspec's JSON Schema of `model`, with the model's own definition as the root.

    A frontend can read the fields off the root; nested models stay in `$defs`, which the
    `#/$defs/...` references inside still point at.
    """
    schema = msgspec.json.schema(model)
    definitions: dict[str, Any] = schema.pop("$defs", {})
    reference = schema.get("$ref", "")
    root: dict[str, Any] = dict(definitions.pop(reference.rpartition("/")[2], schema))
    if definitions:
        root["$defs"] = definitions
    return root


def task(
    name: str,
    *,
    params: type[P],
    description: str | None = None,
    defaults: TaskDefaults = TaskDefaults(),  # noqa: B008 - frozen, so safe to share
) -> Callable[[TaskFunction[P]], TaskSpec[P]]:
    """Declare an async function of a `TaskContext` as a task; its docstring describes it."""
    if len(name) > MAX_TASK_NAME or not TASK_NAME.fullmatch(name):
        raise ValueError(f"task name {name!r} must be dotted lower-case words, e.g. demo.count")

    def declare(function: TaskFunction[P]) -> TaskSpec[P]:
        text = description or inspect.getdoc(function)
        if not text:
            raise ValueError(f"task {name} needs a description or a docstring")
        return TaskSpec(name, text.strip(), params, defaults, function)

    return declare

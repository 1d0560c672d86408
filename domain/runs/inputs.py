"""Checks of what a caller asks for when starting a run; every problem is reported at once."""

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from domain.errors import InvalidFields, InvalidInput
from domain.runs.models import Priority, Task
from domain.runs.policy import RunPolicy
from domain.runs.ports import ParamsValidator
from domain.runs.rules import json_size

MAX_TASK_NAME = 200
# Visible ASCII only: keys come from clients' scripts and must compare and log unambiguously.
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True, slots=True)
class StartRequest:
    """What a start asks for; None parameters mean none, None priority the task's default."""

    task: str
    params: Any = None
    priority: Priority | None = None
    idempotency_key: str | None = None
    # The ended run that this start retries.
    retry_of: uuid.UUID | None = None

    @property
    def params_or_empty(self) -> Any:
        """The parameters, with None meaning an empty object."""
        return {} if self.params is None else self.params


def is_plausible_task_name(name: str) -> bool:
    """Whether `name` could name a task at all, so that looking it up is worth a query."""
    return 0 < len(name) <= MAX_TASK_NAME


def task_problems(name: str, task: Task | None) -> list[InvalidInput]:
    """The task named by a start must be registered."""
    if task is not None:
        return []
    shown = name if is_plausible_task_name(name) else name[:MAX_TASK_NAME] + "…"
    return [InvalidInput(f"no task named {shown!r} is registered", path=["task"])]


def idempotency_key_problems(key: str | None, policy: RunPolicy) -> list[InvalidInput]:
    """An idempotency key is 1 to `max_idempotency_key` visible ASCII characters."""
    if key is None:
        return []
    if len(key) > policy.max_idempotency_key or not _IDEMPOTENCY_KEY.fullmatch(key):
        message = (
            f"idempotency key must be 1 to {policy.max_idempotency_key} visible ASCII "
            "characters, without spaces"
        )
        return [InvalidInput(message, path=["idempotencyKey"])]
    return []


def params_problems(
    task: Task | None, params: Any, validator: ParamsValidator, policy: RunPolicy
) -> list[InvalidInput]:
    """Parameters are plain JSON within the size bound and match the task's schema.

    Every field that breaks the schema is reported, each with its own path.
    """
    try:
        size = json_size(params)
    except ValueError:
        return [InvalidInput("parameters must be plain JSON", path=["params"])]
    if size > policy.max_params_bytes:
        message = f"parameters are {size} bytes as JSON; at most {policy.max_params_bytes}"
        return [InvalidInput(message, path=["params"])]
    if task is None:
        return []
    return [
        InvalidInput(message, path=["params", *path])
        for path, message in validator.errors(task.params_schema, params)
    ]


def raise_problems(problems: Sequence[InvalidInput]) -> NoReturn:
    """Refuse with the one problem found, or with all of them together."""
    if len(problems) == 1:
        raise problems[0]
    raise InvalidFields(f"{len(problems)} inputs are invalid", problems=problems)


def check_start(
    request: StartRequest, task: Task | None, validator: ParamsValidator, policy: RunPolicy
) -> Task:
    """The task to run, once every part of the request passed; else every problem at once."""
    problems = [
        *task_problems(request.task, task),
        *idempotency_key_problems(request.idempotency_key, policy),
        *params_problems(task, request.params_or_empty, validator, policy),
    ]
    # An unknown task is itself a problem, so this refuses it too.
    if problems or task is None:
        raise_problems(problems)
    return task

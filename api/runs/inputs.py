"""GraphQL inputs of runs, and the domain values they stand for."""

import enum
from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from api.nodes import object_uuid
from api.runs import enums  # noqa: F401 - registers the enums these inputs use
from domain.runs import models


@strawberry.input(description="Narrows a list of runs; every field given must match.")
class RunFilter:
    status: list[models.RunStatus] | None = strawberry.field(
        default=None, description="Any of these statuses."
    )
    task: str | None = strawberry.field(default=None, description="A task name, exactly.")
    created_by: relay.GlobalID | None = strawberry.field(default=None, description="A User ID.")
    created_after: datetime | None = strawberry.field(default=None, description="Inclusive.")
    created_before: datetime | None = strawberry.field(default=None, description="Exclusive.")
    search: str | None = strawberry.field(
        default=None,
        description="Part of the task name, idempotency key or error message, any case.",
    )


@strawberry.enum(description="What a list of runs is sorted by.")
class RunOrderField(enum.Enum):
    CREATED_AT = "created_at"


@strawberry.enum(description="Which way a list is sorted.")
class OrderDirection(enum.Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.input(description="How a list of runs is sorted; ties go by ID the same way.")
class RunOrder:
    field: RunOrderField = strawberry.field(
        default=RunOrderField.CREATED_AT, description="What to sort by."
    )
    direction: OrderDirection = strawberry.field(
        default=OrderDirection.DESC, description="Newest first unless ASC."
    )


@strawberry.input(description="What to run, with what, and how urgently.")
class StartRunInput:
    task: str = strawberry.field(description="The name of a registered task.")
    params: JSON | None = strawberry.field(
        default=None, description="Parameters matching the task's paramsSchema; {} if omitted."
    )
    priority: models.Priority | None = strawberry.field(
        default=None, description="The lane; the task's default if omitted."
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="A second start with the same key within 24 hours returns the first run.",
    )


def run_filter(f: RunFilter | None) -> models.RunFilter:
    """The domain filter an input stands for; a creator ID of another type is refused."""
    if f is None:
        return models.RunFilter()
    creator = f.created_by
    return models.RunFilter(
        statuses=frozenset(f.status) if f.status is not None else None,
        task_name=f.task,
        created_by=object_uuid(creator, "User", path=["filter", "createdBy"]) if creator else None,
        created_after=f.created_after,
        created_before=f.created_before,
        search=f.search,
    )


def run_order(order: RunOrder | None) -> models.RunOrder:
    """The domain order an input stands for; newest first unless asked otherwise."""
    if order is not None and order.direction is OrderDirection.ASC:
        return models.RunOrder.CREATED_AT_ASC
    return models.RunOrder.CREATED_AT_DESC

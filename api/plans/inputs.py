"""Inputs of the plan mutations and of the users list."""

import strawberry

from domain.identity.models import Role
from domain.plans import models
from domain.runs.models import Priority


@strawberry.input(description="A new plan.")
class CreatePlanInput:
    name: str = strawberry.field(description="A slug: 2-32 of a-z, 0-9, - and _.")
    display_name: str
    runs_per_day: int = strawberry.field(description="From 1 to 10,000,000.")
    max_concurrent: int = strawberry.field(description="From 1 to 10,000.")
    default_priority: Priority = Priority.LOW
    max_priority: Priority = Priority.NORMAL


@strawberry.input(description="New values for a plan's settings; those left out stay.")
class UpdatePlanInput:
    name: str = strawberry.field(description="The plan to change.")
    display_name: str | None = None
    runs_per_day: int | None = None
    max_concurrent: int | None = None
    default_priority: Priority | None = None
    max_priority: Priority | None = None

    def changes(self) -> models.PlanChanges:
        """The changes this input asks for."""
        return models.PlanChanges(
            display_name=self.display_name,
            runs_per_day=self.runs_per_day,
            max_concurrent=self.max_concurrent,
            default_priority=self.default_priority,
            max_priority=self.max_priority,
        )


@strawberry.input(description="Narrows the users list; every field given must match.")
class UserFilter:
    plan: str | None = None
    role: Role | None = None
    search: str | None = strawberry.field(
        default=None, description="Part of the email or display name, any case."
    )


def user_filter(f: UserFilter | None) -> models.UserFilter:
    """The domain filter of a users filter input."""
    if f is None:
        return models.UserFilter()
    return models.UserFilter(plan=f.plan, role=f.role, search=f.search)

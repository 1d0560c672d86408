"""GraphQL views of plans, quotas, usage and notifications, built from domain objects."""

from datetime import datetime
from typing import Self

import strawberry
from strawberry.scalars import JSON

from api.connections import Connection
from api.errors import UserError
from api.identity.types import User
from domain.plans import models
from domain.runs.models import Priority

strawberry.enum(
    models.Severity, name="NotificationSeverity", description="How urgent a notification is."
)


@strawberry.type(description="What a plan's users may run: per day, at once, and in which lanes.")
class Plan:
    name: str = strawberry.field(description="The plan's slug, such as free or pro.")
    display_name: str
    runs_per_day: int = strawberry.field(description="Runs a user may start per quota day.")
    max_concurrent: int = strawberry.field(description="Runs of a user that may run at once.")
    default_priority: Priority = strawberry.field(description="The lane of a start naming none.")
    max_priority: Priority = strawberry.field(description="The highest lane a start may ask.")
    created_at: datetime

    @classmethod
    def from_domain(cls, plan: models.Plan) -> Self:
        """View of a domain plan."""
        return cls(
            name=plan.name,
            display_name=plan.display_name,
            runs_per_day=plan.runs_per_day,
            max_concurrent=plan.max_concurrent,
            default_priority=plan.default_priority,
            max_priority=plan.max_priority,
            created_at=plan.created_at,
        )


@strawberry.type(description="Where a user stands against their plan right now.")
class Quota:
    runs_today: int = strawberry.field(description="Runs started this quota day.")
    limit: int = strawberry.field(description="Runs the plan allows per quota day.")
    resets_at: datetime = strawberry.field(
        description="When the quota day ends: the next midnight in the quota time zone."
    )
    running: int = strawberry.field(description="Runs of the user running now.")
    max_concurrent: int = strawberry.field(description="Runs the plan allows at once.")

    @classmethod
    def from_domain(cls, quota: models.Quota) -> Self:
        """View of a domain quota."""
        return cls(
            runs_today=quota.runs_today,
            limit=quota.limit,
            resets_at=quota.resets_at,
            running=quota.running,
            max_concurrent=quota.max_concurrent,
        )


@strawberry.type(description="How much one plan's users use today.")
class PlanUsage:
    plan: Plan
    users: int = strawberry.field(description="Users on the plan.")
    runs_today: int = strawberry.field(description="Runs its users started this quota day.")
    running: int = strawberry.field(description="Runs of its users running now.")

    @classmethod
    def from_domain(cls, usage: models.PlanUsage) -> Self:
        """View of a plan's usage."""
        return cls(
            plan=Plan.from_domain(usage.plan),
            users=usage.users,
            runs_today=usage.runs_today,
            running=usage.running,
        )


@strawberry.type(description="Something you should know about, such as a quota nearly used up.")
class Notification:
    id: strawberry.ID
    kind: str = strawberry.field(description="What it is about, e.g. quota.warning.")
    severity: models.Severity
    message: str
    data: JSON = strawberry.field(description="Details for whoever routes or shows it.")
    created_at: datetime

    @classmethod
    def from_domain(cls, notification: models.Notification) -> Self:
        """View of a domain notification."""
        return cls(
            id=strawberry.ID(str(notification.id)),
            kind=notification.kind,
            severity=notification.severity,
            message=notification.message,
            data=JSON(notification.data),
            created_at=notification.created_at,
        )


@strawberry.type(name="NotificationConnection", description="A page of notifications.")
class NotificationConnection(Connection[Notification]):
    pass


@strawberry.type(name="UserConnection", description="A page of users.")
class UserConnection(Connection[User]):
    pass


@strawberry.type(description="The result of createPlan or updatePlan.")
class PlanPayload:
    plan: Plan | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="The result of deletePlan.")
class DeletePlanPayload:
    deleted_name: str | None = strawberry.field(default=None, description="The deleted plan.")
    moved_users: int | None = strawberry.field(
        default=None, description="Users moved to reassignTo."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="The result of setUserPlan.")
class SetUserPlanPayload:
    user: User | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)

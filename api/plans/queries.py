"""Queries of plans, their usage, users by plan, and the viewer's notifications."""

import strawberry

from api.connections import connection_of
from api.context import Info
from api.identity.types import User
from api.paging import page_request
from api.plans.inputs import UserFilter, user_filter
from api.plans.types import Notification, NotificationConnection, Plan, PlanUsage, UserConnection

USER_CURSOR = "User"
NOTIFICATION_CURSOR = "Notification"


@strawberry.type
class PlansQuery:
    @strawberry.field(description="Every plan, smallest daily limit first. Administrators only.")
    async def plans(self, info: Info) -> list[Plan]:
        found = await info.context.services.plans.list_plans(viewer=info.context.require_viewer())
        return [Plan.from_domain(plan) for plan in found]

    @strawberry.field(description="Each plan's users and their runs today. Administrators only.")
    async def plan_usage(self, info: Info) -> list[PlanUsage]:
        found = await info.context.services.plans.plan_usage(viewer=info.context.require_viewer())
        return [PlanUsage.from_domain(usage) for usage in found]

    @strawberry.field(description="Users by email. Administrators only.")
    async def users(
        self,
        info: Info,
        filter: UserFilter | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> UserConnection:
        page = await info.context.services.plans.page_users(
            viewer=info.context.require_viewer(),
            user_filter=user_filter(filter),
            request=page_request(USER_CURSOR, first=first, after=after, last=last, before=before),
        )
        return connection_of(UserConnection, USER_CURSOR, page, User.from_domain)

    @strawberry.field(description="Your notifications, newest first.")
    async def notifications(
        self, info: Info, first: int, after: str | None = None
    ) -> NotificationConnection:
        page = await info.context.services.plans.page_notifications(
            viewer=info.context.require_viewer(),
            request=page_request(NOTIFICATION_CURSOR, first=first, after=after),
        )
        return connection_of(
            NotificationConnection, NOTIFICATION_CURSOR, page, Notification.from_domain
        )

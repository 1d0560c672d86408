"""Live notifications of the viewer."""

from collections.abc import AsyncGenerator
from contextlib import aclosing

import strawberry

from api.context import Info
from api.plans.types import Notification


@strawberry.type
class PlansSubscription:
    @strawberry.subscription(
        description="Your new notifications as they happen; earlier ones are in notifications."
    )
    async def notifications(self, info: Info) -> AsyncGenerator[Notification, None]:
        found = info.context.services.plans.gen_notifications(viewer=info.context.require_viewer())
        # Closed on leaving, so that its live watch ends with the client's.
        async with aclosing(found) as stream:
            async for notification in stream:
                yield Notification.from_domain(notification)

"""The queue ping: proves API → Redis → worker → result."""

import strawberry

from api.context import Info
from api.errors import run_mutation
from api.system.types import PingReply, SystemPingInput, SystemPingPayload
from domain.system import PING_ACTION, ping


@strawberry.type
class SystemMutation:
    @strawberry.mutation(description="Send a message through the job queue to a worker and back.")
    async def system_ping(
        self, info: Info, input: SystemPingInput | None = None
    ) -> SystemPingPayload:
        context, services = info.context, info.context.services
        message = input.message if input is not None else "ping"

        async def act() -> SystemPingPayload:
            reply = await ping(
                services.auditor,
                services.queue,
                viewer=await context.viewer_for(PING_ACTION),
                meta=context.meta,
                message=message,
                timeout=services.settings.ping_timeout,
            )
            return SystemPingPayload(reply=PingReply.from_domain(reply))

        return await run_mutation(act, SystemPingPayload)

"""The queue ping: proves API → Redis → worker → result."""

import strawberry

from api.context import Context
from api.errors import run_mutation
from api.system.types import PingReply, SystemPingInput, SystemPingPayload
from domain.system import ping_worker


@strawberry.type
class SystemMutation:
    @strawberry.mutation(description="Send a message through the job queue to a worker and back.")
    async def system_ping(
        self, info: strawberry.Info[Context, None], input: SystemPingInput | None = None
    ) -> SystemPingPayload:
        services = info.context.services
        message = input.message if input is not None else "ping"

        async def ping() -> SystemPingPayload:
            reply = await ping_worker(
                services.queue, message, timeout=services.settings.ping_timeout
            )
            return SystemPingPayload(reply=PingReply.from_domain(reply))

        return await run_mutation(ping, lambda errors: SystemPingPayload(user_errors=errors))

"""Live health, for monitor pages."""

import asyncio
from collections.abc import AsyncGenerator

import strawberry

from api.context import Info
from api.system.types import Health
from domain.errors import InvalidInput
from domain.health import check_health

MIN_INTERVAL, MAX_INTERVAL = 1, 300


@strawberry.type
class SystemSubscription:
    @strawberry.subscription(
        description=f"The platform's health now, then every intervalSeconds "
        f"({MIN_INTERVAL}-{MAX_INTERVAL}). Signed-in callers only."
    )
    async def health(self, info: Info, interval_seconds: int = 5) -> AsyncGenerator[Health, None]:
        info.context.require_viewer()
        if not MIN_INTERVAL <= interval_seconds <= MAX_INTERVAL:
            raise InvalidInput(
                f"intervalSeconds must be {MIN_INTERVAL} to {MAX_INTERVAL}",
                path=["intervalSeconds"],
            )
        services = info.context.services
        while True:
            report = await check_health(services.probes, timeout=services.settings.health_timeout)
            yield Health.from_domain(report)
            await asyncio.sleep(interval_seconds)

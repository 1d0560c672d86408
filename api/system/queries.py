"""Health and version queries."""

import strawberry

from api.context import Info
from api.system.types import Health
from domain.health import check_health
from infra.version import taskyard_version


@strawberry.type
class SystemQuery:
    @strawberry.field(description="Health of the platform and each of its dependencies.")
    async def health(self, info: Info) -> Health:
        services = info.context.services
        report = await check_health(services.probes, timeout=services.settings.health_timeout)
        return Health.from_domain(report)

    @strawberry.field(description="The running Taskyard version.")
    def version(self) -> str:
        return taskyard_version()

"""GraphQL views of health and ping results."""

import strawberry

from api.errors import UserError
from domain import health, system

# Exposed as is: the GraphQL enum is a view of the domain's, not a copy of it.
strawberry.enum(
    health.HealthStatus, description="How well a component, or the whole platform, works."
)


@strawberry.type(description="One dependency's answer to a health check.")
class ComponentHealth:
    name: str
    status: health.HealthStatus
    latency_ms: float
    detail: str | None

    @classmethod
    def from_domain(cls, component: health.ComponentHealth) -> "ComponentHealth":
        """View of a domain component health."""
        return cls(
            name=component.name,
            status=component.status,
            latency_ms=component.latency_ms,
            detail=component.detail,
        )


@strawberry.type(description="The platform's health: the worst of its components.")
class Health:
    status: health.HealthStatus
    components: list[ComponentHealth]

    @classmethod
    def from_domain(cls, report: health.HealthReport) -> "Health":
        """View of a domain health report."""
        return cls(
            status=report.status,
            components=[ComponentHealth.from_domain(c) for c in report.components],
        )


@strawberry.input(description="What to send through the queue.")
class SystemPingInput:
    message: str = strawberry.field(
        default="ping", description=f"Echoed back; at most {system.MAX_PING_MESSAGE} characters."
    )


@strawberry.type(description="A worker's echo of a ping.")
class PingReply:
    message: str
    worker: str = strawberry.field(description="Hostname and process ID of the worker.")
    round_trip_ms: float

    @classmethod
    def from_domain(cls, reply: system.PingReply) -> "PingReply":
        """View of a domain ping reply."""
        return cls(message=reply.message, worker=reply.worker, round_trip_ms=reply.round_trip_ms)


@strawberry.type
class SystemPingPayload:
    reply: PingReply | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)

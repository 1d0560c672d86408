"""Liveness and readiness endpoints for orchestrators and load balancers."""

from typing import Any

from litestar import Request, Response, get

from domain.health import HealthStatus, check_health
from infra.bootstrap import Services


@get("/healthz", sync_to_thread=False, include_in_schema=False)
def healthz() -> dict[str, str]:
    """The process is up and serving; nothing else is checked."""
    return {"status": "ok"}


@get("/readyz", include_in_schema=False)
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Every dependency is usable: 200 when none is down, 503 naming the one that is."""
    services: Services = request.app.state.services
    report = await check_health(services.probes, timeout=services.settings.health_timeout)
    body: dict[str, Any] = {
        "status": report.status.value,
        "components": {
            c.name: {"status": c.status.value, "latencyMs": c.latency_ms, "detail": c.detail}
            for c in report.components
        },
    }
    return Response(body, status_code=503 if report.status is HealthStatus.DOWN else 200)

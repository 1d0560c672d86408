"""Health of the platform: what each component reports and how they add up."""

import asyncio
import enum
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class HealthStatus(enum.Enum):
    """How well a component, or the whole platform, works."""

    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    """One component's answer to a health check."""

    name: str
    status: HealthStatus
    latency_ms: float
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class HealthReport:
    """Every component's health and the overall verdict."""

    status: HealthStatus
    components: tuple[ComponentHealth, ...]


class HealthProbe(Protocol):
    """A port that checks one dependency; it raises or returns a detail string."""

    name: str

    async def probe(self) -> str | None:
        """Check the dependency; raise on failure, return an optional detail."""
        ...


class DegradedError(Exception):
    """Raised by a probe whose component works, but not fully."""


def overall_status(components: Sequence[ComponentHealth]) -> HealthStatus:
    """The worst status of all components, or OK when there are none."""
    if any(c.status is HealthStatus.DOWN for c in components):
        return HealthStatus.DOWN
    if any(c.status is HealthStatus.DEGRADED for c in components):
        return HealthStatus.DEGRADED
    return HealthStatus.OK


async def _run_probe(probe: HealthProbe, timeout: float) -> ComponentHealth:
    started = time.perf_counter()
    status, detail = HealthStatus.OK, None
    try:
        async with asyncio.timeout(timeout):
            detail = await probe.probe()
    except DegradedError as exc:
        status, detail = HealthStatus.DEGRADED, str(exc)
    except TimeoutError:
        status, detail = HealthStatus.DOWN, f"no answer within {timeout:g}s"
    except Exception as exc:  # noqa: BLE001 - any failure of a dependency means it is down
        # The first line is enough to name the fault; SQL and parameters stay in the logs.
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        status, detail = HealthStatus.DOWN, f"{type(exc).__name__}: {first_line}"[:200]
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    return ComponentHealth(probe.name, status, latency_ms, detail)


async def check_health(probes: Sequence[HealthProbe], *, timeout: float) -> HealthReport:
    """Run every probe at once, each bounded by `timeout` seconds."""
    results = await asyncio.gather(*(_run_probe(p, timeout) for p in probes))
    return HealthReport(overall_status(results), tuple(results))

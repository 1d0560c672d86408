"""How component checks become a health report: timeouts, degradation and failures."""

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from domain.health import (
    ComponentHealth,
    DegradedError,
    HealthStatus,
    check_health,
    overall_status,
)

SEVERITY = [HealthStatus.OK, HealthStatus.DEGRADED, HealthStatus.DOWN]


class FakeProbe:
    """A probe that answers with `detail`, or raises `error`, after `delay` seconds."""

    def __init__(
        self,
        name: str,
        *,
        detail: str | None = None,
        error: Exception | None = None,
        delay: float = 0,
    ) -> None:
        self.name = name
        self.detail = detail
        self.error = error
        self.delay = delay

    async def probe(self) -> str | None:
        """Answer as configured."""
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.detail


def component(status: HealthStatus) -> ComponentHealth:
    """A component in `status`."""
    return ComponentHealth(name=status.value, status=status, latency_ms=0.0)


def test_no_components_means_ok() -> None:
    assert overall_status([]) is HealthStatus.OK


@given(st.lists(st.sampled_from(SEVERITY)))
def test_overall_status_is_the_worst_component(statuses: list[HealthStatus]) -> None:
    worst = max(statuses, key=SEVERITY.index, default=HealthStatus.OK)
    assert overall_status([component(s) for s in statuses]) is worst


async def test_a_healthy_probe_reports_its_detail() -> None:
    report = await check_health([FakeProbe("database", detail="at 0002")], timeout=1)
    assert report.status is HealthStatus.OK
    [result] = report.components
    assert (result.name, result.status, result.detail) == ("database", HealthStatus.OK, "at 0002")
    assert result.latency_ms >= 0


async def test_a_slow_probe_is_down_once_its_time_is_up() -> None:
    slow = FakeProbe("redis", delay=30)
    report = await asyncio.wait_for(check_health([slow], timeout=0.05), timeout=5)
    [result] = report.components
    assert result.status is HealthStatus.DOWN
    assert result.detail == "no answer within 0.05s"
    assert report.status is HealthStatus.DOWN


async def test_a_degraded_component_degrades_the_whole() -> None:
    probes = [FakeProbe("database"), FakeProbe("worker", error=DegradedError("no heartbeat"))]
    report = await check_health(probes, timeout=1)
    assert report.status is HealthStatus.DEGRADED
    assert [(c.status, c.detail) for c in report.components] == [
        (HealthStatus.OK, None),
        (HealthStatus.DEGRADED, "no heartbeat"),
    ]


async def test_a_failing_probe_is_down_with_only_the_first_line_of_its_error() -> None:
    error = RuntimeError("connection refused\nSELECT secret FROM somewhere\nparameters: (1,)")
    report = await check_health([FakeProbe("database", error=error)], timeout=1)
    [result] = report.components
    assert result.status is HealthStatus.DOWN
    assert result.detail == "RuntimeError: connection refused"


class RendezvousProbe:
    """A probe that answers only once every probe of its group has started."""

    def __init__(self, name: str, started: list[str], everyone: asyncio.Event, size: int) -> None:
        self.name = name
        self._started, self._everyone, self._size = started, everyone, size

    async def probe(self) -> str | None:
        """Wait for the whole group."""
        self._started.append(self.name)
        if len(self._started) == self._size:
            self._everyone.set()
        await self._everyone.wait()
        return None


async def test_probes_run_concurrently_and_keep_their_order() -> None:
    names = ["database", "redis", "migrations"]
    started: list[str] = []
    everyone = asyncio.Event()
    probes = [RendezvousProbe(name, started, everyone, len(names)) for name in names]
    report = await check_health(probes, timeout=1)
    assert [(c.name, c.status) for c in report.components] == [
        (name, HealthStatus.OK) for name in names
    ]

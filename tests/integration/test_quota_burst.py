"""Ten free users fire 50 starts each at once: quotas and concurrency hold exactly.

Through the GraphQL API in-process, with two real arq workers on the test's PostgreSQL and
Redis. The RUNNING runs of each user are sampled from PostgreSQL every 50 ms throughout.
"""

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import pytest
from arq.worker import Worker
from sqlalchemy import text

from infra.bootstrap import Services
from infra.settings import Settings
from tests.conftest import ClientFactory, sign_in
from workers.settings import cancel_until_done, worker_settings
from workers.tasks.catalog import load_catalog

pytestmark = pytest.mark.slow

USERS = 10
STARTS_EACH = 50
FREE_RUNS_PER_DAY = 20
FREE_MAX_CONCURRENT = 2
WORKERS = 2
# Enough slots that only the plans, never the workers, keep runs waiting.
SLOTS_EACH = 30
FINISH_WITHIN = 120.0
SAMPLE_EVERY = 0.05

START = """
mutation($input: StartRunInput!) {
  startRun(input: $input) { run { id status } userErrors { code message path } }
}
"""
RUN_INPUT = {"task": "demo.count", "params": {"to": 2, "delayMs": 150}}
RUNNING_BY_USER = text(
    "SELECT created_by, count(*) FROM runs WHERE status = 'running' GROUP BY created_by"
)
UNFINISHED = text("SELECT count(*) FROM runs WHERE status IN ('queued', 'running')")
STATUSES = text("SELECT status, count(*) FROM runs GROUP BY status")
COUNTED = text("SELECT user_id, runs FROM quota_usage")


@asynccontextmanager
async def workers(settings: Settings, count: int) -> AsyncIterator[None]:
    """`count` real arq workers in this event loop."""
    assert settings.database_url is not None
    assert settings.redis_url is not None
    roomy = msgspec.structs.replace(settings, worker_concurrency=SLOTS_EACH)
    started: list[tuple[Worker, asyncio.Task[None]]] = []
    for _ in range(count):
        options = worker_settings(
            roomy, database_url=settings.database_url, redis_url=settings.redis_url
        )
        arq_worker = Worker(**{**options, "handle_signals": False})
        started.append((arq_worker, asyncio.create_task(arq_worker.main())))
    try:
        yield
    finally:
        for arq_worker, main in started:
            await cancel_until_done(main)
            await arq_worker.close()


class RunningSampler:
    """Reads each user's RUNNING runs from PostgreSQL every 50 ms and keeps the peaks."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self.peaks: defaultdict[uuid.UUID, int] = defaultdict(int)
        self.samples = 0

    async def sample_forever(self) -> None:
        """Sample until cancelled."""
        while True:
            async with self._services.engine.connect() as connection:
                rows = (await connection.execute(RUNNING_BY_USER)).all()
            for user_id, running in rows:
                self.peaks[user_id] = max(self.peaks[user_id], int(running))
            self.samples += 1
            await asyncio.sleep(SAMPLE_EVERY)


@pytest.fixture
async def tasks(services: Services) -> None:
    """The built-in tasks registered, as a worker registers them when it starts."""
    await services.runs.register_tasks(load_catalog().tasks(datetime.now(UTC)))


async def start_run(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    """One startRun of a short count; its payload."""
    response = await http.post(
        "/graphql",
        json={"query": START, "variables": {"input": RUN_INPUT}},
        headers={"Authorization": f"Bearer {token}"},
    )
    payload: dict[str, Any] = response.json()["data"]["startRun"]
    return payload


def outcome(payload: dict[str, Any]) -> str:
    """ACCEPTED, or the code of the one user error."""
    if payload["run"] is not None:
        return "ACCEPTED"
    [error] = payload["userErrors"]
    return str(error["code"])


async def burst(http: httpx.AsyncClient, tokens: list[str], each: int) -> list[Counter[str]]:
    """Every user fires `each` starts, all users at once; outcomes per user."""
    calls = [start_run(http, token) for token in tokens for _ in range(each)]
    payloads = await asyncio.gather(*calls)
    return [
        Counter(outcome(p) for p in payloads[i * each : (i + 1) * each]) for i in range(len(tokens))
    ]


async def scalar(services: Services, query: Any) -> int:
    async with services.engine.connect() as connection:
        return int((await connection.execute(query)).scalar_one())


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.2)


async def statuses(services: Services) -> dict[str, int]:
    async with services.engine.connect() as connection:
        return {status: int(n) for status, n in (await connection.execute(STATUSES)).all()}


@pytest.mark.usefixtures("tasks")
@pytest.mark.parametrize("flush_midway", [False, True], ids=["steady", "redis-flushed-midway"])
async def test_ten_free_users_get_exactly_their_quota_and_never_more_than_two_at_once(
    services: Services, settings: Settings, make_client: ClientFactory, flush_midway: bool
) -> None:
    tokens = [await sign_in(services) for _ in range(USERS)]
    sampler = RunningSampler(services)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(workers(settings, WORKERS))
        http = await stack.enter_async_context(make_client(rate_limit_per_minute=1_000_000))
        sampling = asyncio.create_task(sampler.sample_forever())
        try:
            outcomes = await burst(http, tokens, STARTS_EACH)
            if flush_midway:
                await until(
                    lambda: has_running(services), "runs to be running", timeout=FINISH_WITHIN
                )
                await services.redis.flushdb()
                # After the loss every user's quota is still spent: nobody gains a run.
                again = await burst(http, tokens, 5)
                assert again == [Counter({"QUOTA_EXCEEDED": 5})] * USERS
            await until(
                lambda: nothing_unfinished(services), "every run to end", timeout=FINISH_WITHIN
            )
        finally:
            sampling.cancel()

    expected = Counter({"ACCEPTED": FREE_RUNS_PER_DAY, "QUOTA_EXCEEDED": 30})
    assert outcomes == [expected] * USERS
    assert await statuses(services) == {"succeeded": USERS * FREE_RUNS_PER_DAY}
    async with services.engine.connect() as connection:
        counted = [int(runs) for _, runs in (await connection.execute(COUNTED)).all()]
    assert counted == [FREE_RUNS_PER_DAY] * USERS
    assert sampler.samples > 20
    assert max(sampler.peaks.values()) == FREE_MAX_CONCURRENT, sampler.peaks
    assert all(peak <= FREE_MAX_CONCURRENT for peak in sampler.peaks.values()), sampler.peaks


async def has_running(services: Services) -> bool:
    async with services.engine.connect() as connection:
        return bool((await connection.execute(RUNNING_BY_USER)).all())


async def nothing_unfinished(services: Services) -> bool:
    return await scalar(services, UNFINISHED) == 0


@pytest.mark.usefixtures("tasks")
async def test_a_refusal_shows_the_limit_the_usage_and_when_it_resets(
    services: Services, make_client: ClientFactory
) -> None:
    token = await sign_in(services)
    async with make_client(rate_limit_per_minute=1_000_000) as http:
        await burst(http, [token], FREE_RUNS_PER_DAY)
        refused = await start_run(http, token)
    [error] = refused["userErrors"]
    assert error["code"] == "QUOTA_EXCEEDED"
    assert "20 of 20 runs used today on the free plan" in error["message"]
    assert "resets at" in error["message"]

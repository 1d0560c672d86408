"""What the plan checks add to startRun: the same start with and without them, side by side.

Run: .venv/bin/python bench/quota_overhead.py

Two run services share one process, one database, one Redis and one user; they differ only
in whether plans apply (the quota upsert, the plan read and the lane choice, in the start's
own transaction). Calls alternate between them, so the machine's noise is shared. The user's
plan allows ten million runs a day, so every start is counted and none is refused.
"""

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from domain.identity.models import RequestMeta, Role, Viewer
from domain.runs.models import Priority
from domain.runs.services import RunService
from infra.bootstrap import Services, build_services, run_policy
from infra.clock import SystemClock
from infra.db import migrations
from infra.params import JsonSchemaParamsValidator
from infra.settings import Settings
from workers.tasks.catalog import load_catalog

SERVER = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
META = RequestMeta(ip="127.0.0.1", request_id="bench")
PASSWORD = "bench password " + "x" * 12
PARAMS = {"to": 1, "delayMs": 0}
TARGET_MS = 2.0


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(SERVER)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """A database of its own, migrated to head and dropped afterwards."""
    name = f"taskyard_bench_{uuid.uuid4().hex[:10]}"
    await _admin(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(SERVER)._replace(path=f"/{name}"))
    try:
        await asyncio.to_thread(migrations.upgrade, url)
        yield url
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def without_plans(services: Services) -> RunService:
    """The run service as `services` builds it, but with no plan checks."""
    return RunService(
        uow=services.uow,
        queue=services.run_queue,
        bus=services.bus,
        validator=JsonSchemaParamsValidator(),
        clock=SystemClock(),
        policy=run_policy(services.settings),
    )


async def signed_in(services: Services, role: Role) -> Viewer:
    """A new user of `role`, signed in."""
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    await services.identity.create_user(
        actor=None, meta=META, email=email, password=PASSWORD, role=role
    )
    signed = await services.identity.login(email=email, password=PASSWORD, meta=META)
    return await services.identity.authenticate(signed.access_token)


async def unlimited_users(services: Services, count: int) -> list[Viewer]:
    """Operators on a plan that never refuses a start."""
    admin = await signed_in(services, Role.ADMIN)
    await services.plans.create_plan(
        viewer=admin,
        meta=META,
        name="bench",
        display_name="Bench",
        runs_per_day=10_000_000,
        max_concurrent=10_000,
        default_priority=Priority.NORMAL,
        max_priority=Priority.HIGH,
    )
    users = [await signed_in(services, Role.OPERATOR) for _ in range(count)]
    for user in users:
        await services.plans.set_user_plan(
            viewer=admin, meta=META, user_id=user.user.id, plan="bench"
        )
    return users


async def client(
    variants: dict[str, RunService], viewer: Viewer, calls: int, samples: dict[str, list[float]]
) -> None:
    """Start `calls` runs through each variant, alternating, timing each start."""
    names = list(variants)
    for i in range(calls):
        # Rotate who goes first, so neither always follows the other's commit.
        for name in names[i % len(names) :] + names[: i % len(names)]:
            began = time.perf_counter()
            await variants[name].start_run(
                viewer=viewer, meta=META, task="demo.count", params=PARAMS
            )
            samples[name].append((time.perf_counter() - began) * 1000)


def quantile(values: list[float], q: int) -> float:
    """The q-th percentile."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report(title: str, samples: dict[str, list[float]]) -> None:
    """p50, p90 and p99 of each variant, and what the plan checks add at each."""
    print(title)
    print(f"{'variant':<14}{'calls':>7}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}")
    for name, values in samples.items():
        p50, p90, p99 = (quantile(values, q) for q in (50, 90, 99))
        print(f"{name:<14}{len(values):>7}{p50:>9.2f}{p90:>9.2f}{p99:>9.2f}")
    added = {q: quantile(samples["plans"], q) - quantile(samples["no plans"], q) for q in (50, 99)}
    verdict = "met" if added[99] < TARGET_MS else "MISSED"
    print(
        f"plans add {added[50]:+.2f} ms at p50, {added[99]:+.2f} ms at p99 "
        f"(target < {TARGET_MS:g} ms at p99: {verdict})\n"
    )


async def concurrently(
    variants: dict[str, RunService], viewers: list[Viewer], calls: int
) -> dict[str, list[float]]:
    """One client per viewer at once, `calls` starts per variant in all."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    each = calls // len(viewers)
    await asyncio.gather(*(client(variants, viewer, each, samples) for viewer in viewers))
    return samples


async def run(calls: int, clients: int) -> None:
    """Warm up; measure one client, then clients of one user, then of as many users."""
    async with fresh_database() as url:
        settings = Settings(env="test", secret_key="bench-" + "k" * 40, log_level="WARNING")
        services = build_services(settings, database_url=url, redis_url=REDIS)
        try:
            await services.redis.flushdb()
            await services.runs.register_tasks(load_catalog().tasks(datetime.now(UTC)))
            users = await unlimited_users(services, clients)
            variants = {"plans": services.runs, "no plans": without_plans(services)}
            await client(variants, users[0], 50, {name: [] for name in variants})
            one: dict[str, list[float]] = {name: [] for name in variants}
            await client(variants, users[0], calls, one)
            report(f"one client: {calls} starts per variant", one)
            same = await concurrently(variants, [users[0]] * clients, calls)
            report(f"{clients} clients of one user at once: starts wait for its counter", same)
            apart = await concurrently(variants, users, calls)
            report(f"{clients} clients of {clients} users at once", apart)
        finally:
            await services.redis.flushdb()
            await services.close()


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="starts per variant")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients, one user")
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.clients))


if __name__ == "__main__":
    main()

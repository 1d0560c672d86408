"""No-op runs per second on one worker, against bare arq jobs on the same Redis.

Run: .venv/bin/python bench/runs_throughput.py

Each round queues N jobs while no worker runs, then starts one worker process in arq's
burst mode, which works through the backlog and exits. `bare` jobs are arq jobs whose
function does nothing, on a worker with Taskyard's arq options (concurrency, polling,
msgpack, no kept results) and nothing else. `runs` are runs of the task `bench.noop`,
started through the run service and executed by Taskyard's own worker (claim, attempt,
result, events and their publishing), whose catalog gains `bench.noop` from this module
the way a deployment adds its own task modules. The worker times itself from the end
of its start-up to the end of the backlog.
"""

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from arq.worker import Worker, func
from runs_support import (
    META,
    ROOT,
    Column,
    DatabaseCpu,
    access_token,
    add_service_options,
    bench_settings,
    database_name,
    flush_redis,
    new_user,
    print_table,
    scratch_database,
    services_for,
)
from sqlalchemy import text

from domain.identity.models import Role, Viewer
from infra.bootstrap import Services
from infra.settings import Settings
from workers.context import JobContext
from workers.settings import worker_settings
from workers.tasks import TaskContext, task
from workers.tasks.catalog import Catalog, installed_modules, load_catalog

NOOP_TASK = "bench.noop"
BARE_JOB = "noop"
BARE_QUEUE = "bench:bare"
KINDS = ("bare", "runs")
# Starts in flight at once while queueing runs; the API would see as many callers.
STARTS_AT_ONCE = 16


class NoParams(msgspec.Struct, forbid_unknown_fields=True):
    """No parameters."""


@task(NOOP_TASK, params=NoParams)
async def noop(ctx: TaskContext[NoParams]) -> None:
    """Do nothing, so that a run costs only what the platform adds to a task."""


async def bare_noop(ctx: JobContext, payload: dict[str, Any]) -> None:
    """An arq job that does nothing, with a run job's payload."""


def bench_catalog() -> Catalog:
    """The installed tasks and `bench.noop`, as a deployment's own task module adds it."""
    return load_catalog([*installed_modules(), sys.modules[__name__]])


# -- the worker process -------------------------------------------------------------------


@dataclass(slots=True)
class Clock:
    """When the worker finished starting up: wall time, its CPU, and PostgreSQL's."""

    db: DatabaseCpu
    wall: float = 0.0
    cpu: float = 0.0

    def mark(self) -> None:
        """Note now."""
        self.wall, self.cpu = time.monotonic(), time.process_time()
        self.db.start()


def worker_options(kind: str, settings: Settings, clock: Clock) -> dict[str, Any]:
    """arq Worker arguments for a burst over the backlog, marking the end of start-up."""
    url, redis = settings.database_url or "", settings.redis_url or ""
    options = worker_settings(settings, database_url=url, redis_url=redis, catalog=bench_catalog())
    startup = options["on_startup"] if kind == "runs" else None
    pool = options["redis_pool"]

    async def on_startup(ctx: JobContext) -> None:
        if startup is not None:
            await startup(ctx)
        clock.mark()

    async def close_pool(ctx: JobContext) -> None:
        await pool.aclose()

    options |= {"on_startup": on_startup, "burst": True, "handle_signals": False}
    if kind == "bare":
        options |= {
            "functions": (func(bare_noop, name=BARE_JOB),),
            "queue_name": BARE_QUEUE,
            "on_shutdown": close_pool,
        }
    return options


async def work(kind: str, settings: Settings) -> dict[str, float]:
    """Work through the backlog once and say how many jobs took how long."""
    clock = Clock(DatabaseCpu(database_name(settings.database_url or "")))
    worker = Worker(**worker_options(kind, settings, clock))
    try:
        await worker.main()
        seconds, cpu = time.monotonic() - clock.wall, time.process_time() - clock.cpu
        # Read while the worker's own connections are still open.
        db_cpu = clock.db.seconds()
    finally:
        await worker.close()
    return {
        "complete": worker.jobs_complete,
        "failed": worker.jobs_failed,
        "retried": worker.jobs_retried,
        "seconds": seconds,
        "cpu": cpu,
        "db_cpu": db_cpu,
    }


# -- the driver ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Burst:
    """One worker's pass over a backlog."""

    jobs: int
    seconds: float
    worker_cpu: float
    db_cpu: float
    # Passes arq made again later: a run held back by its plan, or not yet due.
    retries: int

    @property
    def rate(self) -> float:
        """Jobs per second."""
        return self.jobs / self.seconds


async def queue_bare(services: Services, jobs: int) -> None:
    """Queue `jobs` bare jobs."""
    for _ in range(jobs):
        run_id = str(uuid.uuid4())
        await services.redis.enqueue_job(
            BARE_JOB, {"run_id": run_id}, _job_id=run_id, _queue_name=BARE_QUEUE
        )


async def queue_runs(services: Services, viewers: list[Viewer], jobs: int) -> None:
    """Start `jobs` runs of `bench.noop` through the run service, the users taking turns."""

    async def start(number: int) -> None:
        viewer = viewers[number % len(viewers)]
        await services.runs.start_run(viewer=viewer, meta=META, task=NOOP_TASK, params={})

    for first in range(0, jobs, STARTS_AT_ONCE):
        await asyncio.gather(*(start(n) for n in range(first, min(first + STARTS_AT_ONCE, jobs))))


async def unfinished_runs(services: Services) -> int:
    """Runs that have not SUCCEEDED."""
    async with services.engine.connect() as connection:
        query = text("SELECT count(*) FROM runs WHERE status <> 'succeeded'")
        return int((await connection.execute(query)).scalar_one())


def run_worker(kind: str, settings: Settings, concurrency: int) -> dict[str, float]:
    """One burst of a worker process; what it reports of itself."""
    command = [
        sys.executable,
        __file__,
        "--work",
        kind,
        "--database",
        settings.database_url or "",
        "--redis",
        settings.redis_url or "",
        "--concurrency",
        str(concurrency),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"the {kind} worker failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    if result["failed"]:
        print(done.stderr[-5000:], file=sys.stderr)
    return result


async def one_burst(
    kind: str, services: Services, viewers: list[Viewer], concurrency: int, jobs: int
) -> Burst:
    """Queue a backlog, let a worker process clear it, and check that it all ran."""
    await services.redis.flushdb()
    await (queue_bare(services, jobs) if kind == "bare" else queue_runs(services, viewers, jobs))
    result = await asyncio.to_thread(run_worker, kind, services.settings, concurrency)
    if (result["complete"], result["failed"]) != (jobs, 0):
        raise SystemExit(f"the {kind} worker did not complete every job: {result}")
    if kind == "runs" and (left := await unfinished_runs(services)):
        raise SystemExit(f"{left} runs did not succeed")
    return Burst(jobs, result["seconds"], result["cpu"], result["db_cpu"], int(result["retried"]))


async def operator(services: Services, number: int) -> Viewer:
    """A new operator, signed in."""
    user = await new_user(services, Role.OPERATOR, f"operator-{number}")
    return await services.identity.authenticate(await access_token(services, user))


async def bench(settings: Settings, args: argparse.Namespace) -> dict[tuple[int, str], list[Burst]]:
    """Alternate bare and run bursts at every concurrency, for the rounds asked."""
    await flush_redis(settings.redis_url or "")
    services = services_for(settings)
    try:
        await services.runs.register_tasks(bench_catalog().tasks(datetime.now(UTC)))
        viewers = [await operator(services, n) for n in range(args.users)]
        results: dict[tuple[int, str], list[Burst]] = {}
        for round_ in range(args.rounds):
            for concurrency in args.concurrency:
                order = KINDS if round_ % 2 == 0 else tuple(reversed(KINDS))
                for kind in order:
                    burst = await one_burst(kind, services, viewers, concurrency, args.jobs)
                    results.setdefault((concurrency, kind), []).append(burst)
        return results
    finally:
        await services.close()


def report(results: dict[tuple[int, str], list[Burst]], args: argparse.Namespace) -> None:
    """Print each kind's median rate and CPU per job, and the ratio per concurrency."""
    print(
        f"{args.rounds} rounds of {args.jobs} jobs per kind and concurrency, one worker "
        f"process; runs by {args.users} users taking turns"
    )
    columns = [
        Column("concurrency", 12, left=True),
        Column("kind", 6, left=True),
        Column("jobs/s", 9),
        Column("min", 9),
        Column("max", 9),
        Column("worker/job", 12),
        Column("db/job", 10),
        Column("retries", 9),
    ]
    rows = []
    for (concurrency, kind), bursts in results.items():
        rates = [b.rate for b in bursts]
        worker = statistics.median(b.worker_cpu / b.jobs for b in bursts)
        db = statistics.median(b.db_cpu / b.jobs for b in bursts)
        rows.append(
            [
                str(concurrency),
                kind,
                f"{statistics.median(rates):,.0f}",
                f"{min(rates):,.0f}",
                f"{max(rates):,.0f}",
                f"{worker * 1e6:,.0f}us",
                f"{db * 1e6:,.0f}us",
                f"{statistics.median(b.retries for b in bursts):,.0f}",
            ]
        )
    print_table(columns, rows)
    for concurrency in args.concurrency:
        bare, runs = (statistics.median(b.rate for b in results[concurrency, k]) for k in KINDS)
        bare_cpu, runs_cpu = (
            statistics.median(b.worker_cpu / b.jobs for b in results[concurrency, k]) for k in KINDS
        )
        print(
            f"ratio runs/bare at concurrency {concurrency}: {runs / bare:.2f} by jobs/s, "
            f"{bare_cpu / runs_cpu:.2f} by worker CPU per job  (target >= 0.8)"
        )


def main() -> None:
    """Parse the options, then benchmark on a scratch database, or work (internally)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_service_options(parser)
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per burst (default: 1000)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds (default: 2)")
    parser.add_argument(
        "--users",
        type=int,
        default=50,
        help="users whose runs take turns in the queue (default: 50)",
    )
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[10],
        help="comma-separated worker concurrencies (default: 10, as deployed)",
    )
    parser.add_argument("--work", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.work:
        settings = bench_settings(args.database, args.redis, worker_concurrency=args.concurrency[0])
        print(json.dumps(asyncio.run(work(args.work, settings))))
        return
    with scratch_database(args.postgres) as database_url:
        results = asyncio.run(bench(bench_settings(database_url, args.redis), args))
    report(results, args)


if __name__ == "__main__":
    main()

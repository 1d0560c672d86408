"""The frontend's run list over GraphQL, against a hand-written SQL floor and a loader-less schema.

Run: .venv/bin/python bench/runs_list.py

One uvicorn process serves Taskyard's own app with two more paths mounted beside /graphql:
`/unbatched` runs the same schema with loaders that fetch one key at a time and cache
nothing (each resolver fetches its relation per object), and `/floor` answers the same
JSON from one hand-written SQL statement through a plain Litestar route. The three are
loaded in turn, in interleaved rounds, from a closed-loop client in this process.
"""

import argparse
import asyncio
import statistics
import tempfile
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import psutil
import uvicorn
from http_load import Target, measure
from litestar import Response, get
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send
from runs_support import (
    Column,
    DatabaseCpu,
    access_token,
    add_service_options,
    bench_settings,
    database_name,
    flush_redis,
    free_port,
    new_user,
    print_table,
    scratch_database,
    services_for,
    spawn,
    stop,
    wait_for_port,
)
from sqlalchemy import event
from strawberry import relay
from strawberry.dataloader import DataLoader

import api.context
from api.app import create_app
from api.loaders import Loaders, build_loaders
from api.paging import encode_cursor
from domain.identity.models import Role, Viewer
from domain.runs import journal, lifecycle
from domain.runs.models import LogLevel, Priority, Run, RunStatus
from infra.bootstrap import Services
from infra.logging import configure_logging
from workers.tasks.catalog import load_catalog

LIST_QUERY = """
query RunList {
  runs(first: 50) {
    totalCount
    edges {
      cursor
      node {
        id status task { name } createdBy { displayName }
        latestLogs(count: 3) { seq message }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""
PAGE_SIZE, LATEST_LOGS = 50, 3
NAMES = ("graphql", "unbatched", "floor")
PATHS = {"graphql": "/graphql", "unbatched": "/unbatched", "floor": "/floor"}
STATEMENTS_PATH = "/statements"
STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.RUNNING, RunStatus.QUEUED)

# -- the data -----------------------------------------------------------------------------


def seeded_run(number: int, owner: uuid.UUID, task: str, now: datetime) -> Run:
    """The `number`th run of the seed: one a second back from `now`, of several statuses."""
    status = STATUSES[number % len(STATUSES)]
    return Run(
        id=uuid.uuid4(),
        task_name=task,
        params={"to": number + 1},
        status=status,
        priority=Priority.NORMAL,
        created_by=owner,
        created_at=now - timedelta(seconds=number),
        max_attempts=3,
        timeout_seconds=300.0,
        backoff_seconds=2.0,
        attempt=0 if status is RunStatus.QUEUED else 1,
    )


async def seed(services: Services, *, runs: int, users: int, logs: int) -> str:
    """Register the built-in tasks, add `runs` runs by `users` users with `logs` log lines
    each, and return the access token of an administrator, who sees them all."""
    now = datetime.now(UTC)
    await services.runs.register_tasks(load_catalog().tasks(now))
    tasks = load_catalog().names
    owners = [await new_user(services, Role.OPERATOR, f"operator-{n}") for n in range(users)]
    async with services.uow() as uow:
        for number in range(runs):
            task = tasks[number % len(tasks)]
            run = seeded_run(number, owners[number % users].id, task, now)
            await uow.runs.add(run)
            lines = [
                lifecycle.log_event(run, now, LogLevel.INFO, f"line {line} of run {number}")
                for line in range(1, logs + 1)
            ]
            await journal.append(uow, run, [lifecycle.status_event(run, now), *lines])
        await uow.commit()
    return await access_token(services, await new_user(services, Role.ADMIN, "bench-admin"))


# -- the server ---------------------------------------------------------------------------

# Set for requests to /unbatched: their context gets one-key, cache-less loaders.
UNBATCHED: ContextVar[bool] = ContextVar("unbatched", default=False)


def one_at_a_time(loaders: Loaders) -> Loaders:
    """The same loaders, except that each fetches one key per call and remembers nothing."""
    for field in fields(loaders):
        loader: DataLoader[Any, Any] = getattr(loaders, field.name)
        setattr(loaders, field.name, DataLoader(loader.load_fn, max_batch_size=1, cache=False))
    return loaders


def switched_loaders(services: Services, viewer: Callable[[], Viewer]) -> Loaders:
    """Production loaders, or one-at-a-time ones while serving /unbatched."""
    loaders = build_loaders(services, viewer)
    return one_at_a_time(loaders) if UNBATCHED.get() else loaders


# One statement: the page (one row more, to tell whether another page follows) with each
# run's task, creator and newest log lines, and the total.
FLOOR_SQL = """
SELECT r.id, r.status, r.created_at, t.name AS task, u.display_name,
       (SELECT count(*) FROM runs) AS total,
       (SELECT coalesce(json_agg(json_build_object('seq', l.seq, 'message', l.data->>'message')
                                 ORDER BY l.seq), '[]')
          FROM (SELECT e.seq, e.data FROM run_events e
                 WHERE e.run_id = r.id AND e.kind = 'log'
                 ORDER BY e.seq DESC LIMIT $2) AS l) AS logs
  FROM runs r
  LEFT JOIN tasks t ON t.name = r.task_name
  LEFT JOIN users u ON u.id = r.created_by
 ORDER BY r.created_at DESC, r.id DESC
 LIMIT $1
"""


def floor_edge(row: asyncpg.Record) -> dict[str, Any]:
    """One edge of the list, as GraphQL would render it, from a row of `FLOOR_SQL`."""
    task, creator = row["task"], row["display_name"]
    return {
        "cursor": encode_cursor("Run", f"{row['created_at'].isoformat()}|{row['id']}"),
        "node": {
            "id": relay.to_base64("Run", str(row["id"])),
            "status": row["status"].upper(),
            "task": {"name": task} if task is not None else None,
            "createdBy": {"displayName": creator} if creator is not None else None,
            "latestLogs": msgspec.json.decode(row["logs"]),
        },
    }


def floor_body(rows: list[asyncpg.Record]) -> dict[str, Any]:
    """The whole response of the list query, from up to one row more than a page."""
    edges = [floor_edge(row) for row in rows[:PAGE_SIZE]]
    return {
        "data": {
            "runs": {
                "totalCount": rows[0]["total"] if rows else 0,
                "edges": edges,
                "pageInfo": {
                    "hasNextPage": len(rows) > PAGE_SIZE,
                    "endCursor": edges[-1]["cursor"] if edges else None,
                },
            }
        }
    }


@dataclass(slots=True)
class StatementCount:
    """SQL statements this process has sent, through SQLAlchemy or the floor's pool."""

    count: int = 0

    def add(self, *_: Any) -> None:
        """Count one statement (an SQLAlchemy event listener)."""
        self.count += 1


def bench_routes(database_url: str, counter: StatementCount) -> list[Any]:
    """The floor route and the statement counter, for mounting beside /graphql."""
    pools: list[asyncpg.Pool] = []
    lock = asyncio.Lock()

    async def pool() -> asyncpg.Pool:
        async with lock:
            if not pools:
                pools.append(await asyncpg.create_pool(database_url, min_size=10, max_size=10))
        return pools[0]

    @get(PATHS["floor"])
    async def floor() -> Response[bytes]:
        async with (await pool()).acquire() as connection:
            rows = await connection.fetch(FLOOR_SQL, PAGE_SIZE + 1, LATEST_LOGS)
        counter.add()
        body = msgspec.json.encode(floor_body(rows))
        return Response(body, media_type="application/json")

    @get(STATEMENTS_PATH)
    async def statements() -> dict[str, int]:
        return {"count": counter.count}

    return [floor, statements]


def with_unbatched_path(app: ASGIApp) -> ASGIApp:
    """`app`, with /unbatched served as /graphql under one-at-a-time loaders."""

    async def routed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"] != PATHS["unbatched"]:
            await app(scope, receive, send)
            return
        token = UNBATCHED.set(True)
        try:
            graphql = {**scope, "path": PATHS["graphql"], "raw_path": PATHS["graphql"].encode()}
            await app(graphql, receive, send)  # type: ignore[arg-type]
        finally:
            UNBATCHED.reset(token)

    return routed


def serve(database_url: str, redis_url: str, port: int) -> None:
    """Serve the app with the two bench paths until terminated."""
    settings = bench_settings(database_url, redis_url)
    services = services_for(settings)
    counter = StatementCount()
    event.listen(services.engine.sync_engine, "before_cursor_execute", counter.add)
    # The context module builds each request's loaders; only this process is patched.
    setattr(api.context, "build_loaders", switched_loaders)  # noqa: B010 - not re-exported
    configure_logging(level=settings.log_level, text=settings.text_logs)
    app = create_app(settings, services)
    for route in bench_routes(database_url, counter):
        app.register(route)
    uvicorn.run(
        with_unbatched_path(app),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
    )


# -- the client ---------------------------------------------------------------------------


def list_request(path: str, token: str) -> bytes:
    """The keep-alive request for one path: the list query, or a GET of the floor."""
    body = msgspec.json.encode({"query": LIST_QUERY}) if path != PATHS["floor"] else b""
    lines = [
        f"{'GET' if not body else 'POST'} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Accept: application/json",
        f"Authorization: Bearer {token}",
    ]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _call(port: int, name: str, token: str) -> Any:
    url = f"http://127.0.0.1:{port}{PATHS[name]}"
    headers = {"Authorization": f"Bearer {token}"}
    if name == "floor":
        return httpx.get(url, headers=headers).json()
    return httpx.post(url, json={"query": LIST_QUERY}, headers=headers).json()


def first_difference(ours: Any, theirs: Any, path: str = "$") -> str:
    """Where two JSON values first differ, and how, for a short error message."""
    if isinstance(ours, dict) and isinstance(theirs, dict) and ours.keys() == theirs.keys():
        for key in ours:
            if ours[key] != theirs[key]:
                return first_difference(ours[key], theirs[key], f"{path}.{key}")
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        for index, (mine, other) in enumerate(zip(ours, theirs, strict=True)):
            if mine != other:
                return first_difference(mine, other, f"{path}[{index}]")
    return f"{path}: {ours!r:.200} != {theirs!r:.200}"


def statements_per_request(port: int, token: str) -> dict[str, int]:
    """SQL statements one request of each path sends, after checking their data agree.

    The reference is /graphql's answer; a variant that answered otherwise would be a
    benchmark of something else.
    """
    reference = _call(port, "graphql", token)
    assert "errors" not in reference, reference
    assert len(reference["data"]["runs"]["edges"]) == PAGE_SIZE, reference
    counts = {}
    for name in NAMES:
        before = httpx.get(f"http://127.0.0.1:{port}{STATEMENTS_PATH}").json()["count"]
        answer = _call(port, name, token)
        after = httpx.get(f"http://127.0.0.1:{port}{STATEMENTS_PATH}").json()["count"]
        # Only `data` counts: GraphQL answers also carry the query's cost in `extensions`.
        if answer["data"] != reference["data"]:
            where = first_difference(answer["data"], reference["data"])
            raise SystemExit(f"{name} answered differently from /graphql at {where}")
        counts[name] = after - before
    return counts


@dataclass(frozen=True, slots=True)
class Sample:
    """One path's throughput over one window, and the CPU the server and PostgreSQL burnt."""

    rate: float
    server_cpu: float
    db_cpu: float


async def rounds(
    targets: list[Target], server: psutil.Process, database: str, args: argparse.Namespace
) -> dict[str, list[Sample]]:
    """Load each path in turn, rotating the order every round so that noise is shared."""
    results: dict[str, list[Sample]] = {t.name: [] for t in targets}
    db = DatabaseCpu(database)
    for target in targets:
        await measure(target, connections=args.connections, seconds=1.0)  # warm-up
    for round_ in range(args.rounds):
        order = targets[round_ % len(targets) :] + targets[: round_ % len(targets)]
        for target in order:
            cpu = server.cpu_times()
            db.start()
            rate, failures = await measure(
                target, connections=args.connections, seconds=args.seconds
            )
            if failures:
                raise SystemExit(f"{target.name} answered other than 200: {failures}")
            after = server.cpu_times()
            server_cpu = after.user + after.system - cpu.user - cpu.system
            db_cpu = db.seconds()
            results[target.name].append(Sample(rate, server_cpu / args.seconds, db_cpu))
    return results


def report(
    results: dict[str, list[Sample]], statements: dict[str, int], args: argparse.Namespace
) -> None:
    """Print rates, CPU per request and the ratios against their targets."""
    print(
        f"{args.runs} runs by {args.users} users, {args.logs} log lines each; "
        f"{args.rounds} rounds of {args.seconds:g} s per path, {args.connections} connections"
    )
    columns = [
        Column("path", 11, left=True),
        Column("req/s", 9),
        Column("min", 9),
        Column("max", 9),
        Column("server CPU", 12),
        Column("server/req", 12),
        Column("db/req", 10),
        Column("SQL/req", 9),
    ]
    rate = {name: statistics.median(s.rate for s in runs) for name, runs in results.items()}
    cpu = {
        name: statistics.median(s.server_cpu / s.rate for s in runs)
        for name, runs in results.items()
    }
    rows = []
    for name, runs in results.items():
        rates = [s.rate for s in runs]
        share = statistics.median(s.server_cpu for s in runs)
        db_per_request = sum(s.db_cpu for s in runs) / (sum(rates) * args.seconds)
        rows.append(
            [
                name,
                f"{rate[name]:,.0f}",
                f"{min(rates):,.0f}",
                f"{max(rates):,.0f}",
                f"{share:.0%}",
                f"{cpu[name] * 1000:.2f}ms",
                f"{db_per_request * 1000:.2f}ms",
                str(statements[name]),
            ]
        )
    print_table(columns, rows)
    for other, target in (("floor", "target >= 0.5"), ("unbatched", "target >= 3")):
        print(
            f"ratio graphql/{other}: {rate['graphql'] / rate[other]:.2f} by req/s, "
            f"{cpu[other] / cpu['graphql']:.2f} by server CPU per request  ({target})"
        )


async def prepare(database_url: str, args: argparse.Namespace) -> str:
    """Seed the scratch database and return the administrator's token."""
    await flush_redis(args.redis)
    services = services_for(bench_settings(database_url, args.redis))
    try:
        return await seed(services, runs=args.runs, users=args.users, logs=args.logs)
    finally:
        await services.close()


def bench(database_url: str, args: argparse.Namespace) -> None:
    """Seed, start the server, check its three answers agree, measure and report."""
    token = asyncio.run(prepare(database_url, args))
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="runs-list-", suffix=".log")[1])
    server = spawn(
        [
            __file__,
            "--serve",
            "--port",
            str(port),
            "--database",
            database_url,
            "--redis",
            args.redis,
        ],
        log=log,
    )
    try:
        wait_for_port(port, server, log)
        statements = statements_per_request(port, token)
        targets = [Target(name, port, list_request(PATHS[name], token)) for name in NAMES]
        process = psutil.Process(server.pid)
        results = asyncio.run(rounds(targets, process, database_name(database_url), args))
        report(results, statements, args)
    finally:
        stop(server)
        log.unlink(missing_ok=True)


def main() -> None:
    """Parse the options, then benchmark on a scratch database, or serve (internally)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_service_options(parser)
    parser.add_argument("--runs", type=int, default=200, help="runs to seed (default: 200)")
    parser.add_argument("--users", type=int, default=5, help="users who own them (default: 5)")
    parser.add_argument("--logs", type=int, default=5, help="log lines per run (default: 5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default: 3)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per path and round")
    parser.add_argument(
        "--connections", type=int, default=8, help="client connections (default: 8)"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.database, args.redis, args.port)
        return
    with scratch_database(args.postgres) as database_url:
        bench(database_url, args)


if __name__ == "__main__":
    main()

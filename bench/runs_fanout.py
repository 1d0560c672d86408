"""One event of a run broadcast to N subscribers held by one API process.

Run: .venv/bin/python bench/runs_fanout.py

This process is the API process: it serves Taskyard's app with uvicorn and holds every
subscriber of one RUNNING run. Some subscribers are real WebSocket subscriptions to
`runEvents`, opened by a client process (sockets x subscriptions each); the rest follow
the run in this process through `services.runs.gen_events`, the generator behind the
`runEvents` resolver, without a socket. Events are then appended to the run's store and
published on the event bus one at a time, each once every subscriber got the one
before; a subscriber's latency runs from just before the publish to its receipt.
"""

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import uvicorn
from runs_support import (
    Column,
    access_token,
    add_service_options,
    bench_settings,
    flush_redis,
    free_port,
    ms,
    new_user,
    percentile,
    scratch_database,
    services_for,
    signed_in_socket,
    subscribe,
    table_row,
)
from websockets.asyncio.client import ClientConnection

from api.app import create_app
from api.runs.events import run_global_id
from domain.identity.models import Role, Viewer
from domain.runs import journal, lifecycle
from domain.runs.models import LogLevel, Priority, Run, RunStatus
from infra.bootstrap import Services
from workers.settings import cancel_until_done

RUN_EVENTS = "subscription($runId: ID!) { runEvents(runId: $runId) { seq } }"
# Subscribers that start following at once; the rest wait, so the pool is not flooded.
SUBSCRIBE_AT_ONCE = 200
EVENT_WITHIN = 60.0
# A pause between events, so that one broadcast's tail never overlaps the next.
GAP_SECONDS = 0.05

Arrivals = dict[int, list[float]]


class LevelFailed(Exception):
    """The subscribers of a level could not all be held or served."""


# -- the WebSocket clients (a process of their own) ---------------------------------------


class Next(msgspec.Struct):
    """A `graphql-transport-ws` message, as far as the clients read it."""

    type: str
    payload: dict[str, Any] | None = None


@dataclass(slots=True)
class Tally:
    """Arrival times per sequence number across every subscription of the clients."""

    expected: int
    arrivals: Arrivals = field(default_factory=lambda: defaultdict(list))

    def note(self, raw: str | bytes) -> None:
        """Record one message; say so on stdout once every subscription got its event."""
        at = time.monotonic()
        message = msgspec.json.decode(raw, type=Next)
        if message.type != "next" or message.payload is None:
            return
        seq = message.payload["data"]["runEvents"]["seq"]
        got = self.arrivals[seq]
        got.append(at)
        if len(got) == self.expected:
            print(f"seq {seq}", flush=True)


async def read_socket(ws: ClientConnection, tally: Tally) -> None:
    """Note every message of one socket until it closes."""
    async for raw in ws:
        tally.note(raw)


async def clients(args: argparse.Namespace) -> None:
    """Open the sockets and subscriptions, report arrivals, and dump them on `stop`."""
    tally = Tally(args.sockets * args.per_socket)
    sockets = [await signed_in_socket(args.url, args.token) for _ in range(args.sockets)]
    readers = [asyncio.create_task(read_socket(ws, tally)) for ws in sockets]
    for ws in sockets:
        for op in range(args.per_socket):
            await subscribe(ws, str(op), RUN_EVENTS, runId=args.run_id)
    await asyncio.to_thread(sys.stdin.readline)
    for ws in sockets:
        await ws.close()
    await asyncio.gather(*readers, return_exceptions=True)
    print(json.dumps(tally.arrivals), flush=True)


# -- the API process ----------------------------------------------------------------------


async def running_run(services: Services, owner: uuid.UUID) -> Run:
    """A RUNNING run with its first event stored, for subscribers to follow."""
    now = datetime.now(UTC)
    run = Run(
        id=uuid.uuid4(),
        task_name="demo.count",
        params={"to": 1},
        status=RunStatus.RUNNING,
        priority=Priority.NORMAL,
        created_by=owner,
        created_at=now,
        max_attempts=1,
        timeout_seconds=3600.0,
        backoff_seconds=1.0,
        attempt=1,
        started_at=now,
    )
    async with services.uow() as uow:
        await uow.runs.add(run)
        await journal.append(uow, run, [lifecycle.status_event(run, now)])
        await uow.commit()
    return run


async def publish_log_line(services: Services, run: Run, text: str) -> tuple[int, float]:
    """Store a log line of the run, then publish it: its seq and when the publish began."""
    async with services.uow() as uow:
        [stored] = await journal.append(
            uow, run, [lifecycle.log_event(run, datetime.now(UTC), LogLevel.INFO, text)]
        )
        await uow.commit()
    published = time.monotonic()
    await services.bus.publish(stored)
    return stored.seq, published


@dataclass(slots=True)
class Watchers:
    """Subscribers in this process, each a task reading `gen_events`."""

    services: Services
    viewer: Viewer
    run_id: uuid.UUID
    arrivals: Arrivals = field(default_factory=lambda: defaultdict(list))
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def follow(self) -> None:
        """One subscriber: note when each event arrives."""
        events = self.services.runs.gen_events(
            viewer=self.viewer, run_id=self.run_id, after_seq=None
        )
        async for event in events:
            self.arrivals[event.seq].append(time.monotonic())

    async def start(self, count: int) -> None:
        """Start `count` subscribers, some at a time, each once the replay reached the last."""
        while len(self.tasks) < count:
            batch = min(SUBSCRIBE_AT_ONCE, count - len(self.tasks))
            self.tasks += [asyncio.create_task(self.follow()) for _ in range(batch)]
            await self.until(1, len(self.tasks))

    async def until(self, seq: int, count: int) -> None:
        """Wait until `count` subscribers got event `seq`; fail if any of them ended."""
        deadline = time.monotonic() + EVENT_WITHIN
        while len(self.arrivals[seq]) < count:
            if ended := [task for task in self.tasks if task.done()]:
                error = ended[0].exception()
                raise LevelFailed(f"{len(ended)} subscribers ended, the first with {error!r}")
            if time.monotonic() > deadline:
                raise LevelFailed(f"only {len(self.arrivals[seq])} of {count} got event {seq}")
            await asyncio.sleep(0.001)

    async def stop(self) -> None:
        """End every subscriber, for sure: Python 3.11 can lose a cancel (see the helper)."""
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=1)
        for task in self.tasks:
            await cancel_until_done(task)
        await asyncio.gather(*self.tasks, return_exceptions=True)


@dataclass(frozen=True, slots=True)
class Level:
    """One level's outcome: latencies of every delivery and of each event's last one."""

    subscribers: int
    sockets: int
    setup: float
    deliveries: list[float]
    last: list[float]
    cpu_per_event: float


class ClientProcess:
    """The WebSocket clients' process, and the lines it reports."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(
        cls, args: argparse.Namespace, url: str, token: str, run: Run
    ) -> "ClientProcess":
        """Start the clients for this level's run."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--clients",
            "--url",
            url,
            "--token",
            token,
            "--run-id",
            str(run_global_id(run.id)),
            "--sockets",
            str(args.sockets),
            "--per-socket",
            str(args.per_socket),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=2**30,
        )
        return cls(process)

    async def line(self) -> str:
        """The next line the clients print."""
        assert self.process.stdout is not None
        try:
            raw = await asyncio.wait_for(self.process.stdout.readline(), EVENT_WITHIN)
        except TimeoutError:
            raise LevelFailed("the WebSocket clients reported nothing for a minute") from None
        if not raw:
            raise LevelFailed("the WebSocket clients exited early")
        return raw.decode().strip()

    async def until(self, seq: int) -> None:
        """Wait until every WebSocket subscription got event `seq`."""
        if (line := await self.line()) != f"seq {seq}":
            raise LevelFailed(f"the clients reported {line!r} while waiting for event {seq}")

    async def arrivals(self) -> Arrivals:
        """Close the sockets and collect every arrival time."""
        assert self.process.stdin is not None
        self.process.stdin.write(b"stop\n")
        await self.process.stdin.drain()
        decoded = json.loads(await self.line())
        await self.process.wait()
        return {int(seq): times for seq, times in decoded.items()}

    async def end(self) -> None:
        """Stop the clients if they still run."""
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def hold_and_publish(
    services: Services,
    run: Run,
    watchers: Watchers,
    client: ClientProcess | None,
    n: int,
    args: argparse.Namespace,
) -> Level:
    """Subscribe everyone, publish the events one by one, and collect the latencies."""
    local = n - args.sockets * args.per_socket
    began = time.monotonic()
    if client is not None:
        await client.until(1)
    await watchers.start(local)
    setup = time.monotonic() - began
    published: dict[int, float] = {}
    cpu = time.process_time()
    for number in range(args.events):
        seq, published[seq] = await publish_log_line(services, run, f"line {number}")
        await watchers.until(seq, local)
        if client is not None:
            await client.until(seq)
        await asyncio.sleep(GAP_SECONDS)
    cpu_per_event = (time.process_time() - cpu) / args.events
    await watchers.stop()
    arrivals = dict(watchers.arrivals)
    if client is not None:
        for seq, times in (await client.arrivals()).items():
            arrivals.setdefault(seq, []).extend(times)
    deliveries = [at - t0 for seq, t0 in published.items() for at in arrivals[seq]]
    last = [max(arrivals[seq]) - t0 for seq, t0 in published.items()]
    assert len(deliveries) == n * args.events, (len(deliveries), n * args.events)
    return Level(n, args.sockets, setup, deliveries, last, cpu_per_event)


async def one_level(
    services: Services, viewer: Viewer, url: str, token: str, n: int, args: argparse.Namespace
) -> Level:
    """Hold `n` subscribers on a new run, broadcast the events, and collect latencies."""
    run = await running_run(services, viewer.user.id)
    level_args = argparse.Namespace(
        **vars(args) | {"sockets": min(n // args.per_socket, args.sockets)}
    )
    watchers = Watchers(services, viewer, run.id)
    client = None
    try:
        if level_args.sockets:
            client = await ClientProcess.start(level_args, url, token, run)
        return await hold_and_publish(services, run, watchers, client, n, level_args)
    finally:
        await watchers.stop()
        if client is not None:
            await client.end()


async def serve_and_measure(database_url: str, redis_url: str, args: argparse.Namespace) -> None:
    """Serve the app on loopback and measure every level, printing each as it ends."""
    await flush_redis(redis_url)
    settings = bench_settings(database_url, redis_url, ws_max_subscriptions=args.per_socket)
    services = services_for(settings)
    user = await new_user(services, Role.OPERATOR, "bench")
    token = await access_token(services, user)
    viewer = await services.identity.authenticate(token)
    port = free_port()
    app = create_app(settings, services)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            done, _ = await asyncio.wait([serving], timeout=0.01)
            if done:
                raise SystemExit("uvicorn stopped before it started")
        url = f"ws://127.0.0.1:{port}/graphql"
        print_heading(args)
        for n in args.subscribers:
            try:
                print_level(await one_level(services, viewer, url, token, n, args), args)
            except LevelFailed as exc:
                # More subscribers would fail the same way.
                print(f"{n:<12,} failed: {exc}", flush=True)
                break
        print_footer()
    finally:
        server.should_exit = True
        await serving
        await services.close()


COLUMNS = [
    Column("subscribers", 12, left=True),
    Column("over WS", 8),
    Column("setup s", 9),
    Column("p50", 8),
    Column("p99", 8),
    Column("last p50", 10),
    Column("last p99", 10),
    Column("last max", 10),
    Column("CPU/event", 11),
]


def print_heading(args: argparse.Namespace) -> None:
    """What was measured, and the table's headings."""
    print(
        f"{args.events} events per level, one run; WebSocket subscribers on up to "
        f"{args.sockets} sockets of {args.per_socket} subscriptions, the rest in-process; ms"
    )
    print(table_row(COLUMNS, [c.heading for c in COLUMNS]))


def print_level(level: Level, args: argparse.Namespace) -> None:
    """One level's row."""
    row = [
        f"{level.subscribers:,}",
        f"{level.sockets * args.per_socket:,}",
        f"{level.setup:.1f}",
        ms(percentile(level.deliveries, 0.5)),
        ms(percentile(level.deliveries, 0.99)),
        ms(percentile(level.last, 0.5)),
        ms(percentile(level.last, 0.99)),
        ms(max(level.last)),
        ms(level.cpu_per_event),
    ]
    print(table_row(COLUMNS, row), flush=True)


def print_footer() -> None:
    """How to read the table, and the target."""
    print("p50/p99: of every delivery; last: of the time until the last subscriber got an event")
    print("target: 10,000 subscribers with p99 < 100 ms")


def main() -> None:
    """Parse the options, then benchmark on a scratch database, or be the clients."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_service_options(parser)
    parser.add_argument(
        "--subscribers",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1000, 5000],
        help="comma-separated subscriber counts (default: 1000,5000; try 10000)",
    )
    parser.add_argument("--events", type=int, default=10, help="events per level (default: 10)")
    parser.add_argument("--sockets", type=int, default=50, help="WebSockets (default: 50)")
    parser.add_argument(
        "--per-socket", type=int, default=20, help="subscriptions per WebSocket (default: 20)"
    )
    parser.add_argument("--clients", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--run-id", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.clients:
        asyncio.run(clients(args))
        return
    with scratch_database(args.postgres) as database_url:
        asyncio.run(serve_and_measure(database_url, args.redis, args))


if __name__ == "__main__":
    main()

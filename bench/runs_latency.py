"""Latency from `startRun` over HTTP to a run's events at a WebSocket subscriber.

Run: .venv/bin/python bench/runs_latency.py

`taskyard serve` and `taskyard worker` run as processes, as an operator starts them. One
client starts runs of `demo.count {to: 1, delayMs: 0}` one at a time: it posts `startRun`,
then subscribes to `runEvents` for the run on a WebSocket it holds open, and notes when
the first event (the QUEUED status, replayed from the store), the worker's RUNNING status
and the final result arrive, each counted from just before the `startRun` request.
"""

import argparse
import asyncio
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
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
    print_table,
    scratch_database,
    services_for,
    signed_in_socket,
    stop,
    subscribe,
    taskyard,
)
from websockets.asyncio.client import ClientConnection

from domain.identity.models import Role
from infra.settings import Settings

START = """
mutation { startRun(input: {task: "demo.count", params: {to: 1, delayMs: 0}}) {
  run { id } userErrors { code message } } }
"""
RUN_EVENTS = """
subscription($runId: ID!) {
  runEvents(runId: $runId) { __typename seq ... on RunStatusEvent { status } }
}
"""
WARM_UP_RUNS = 5
READY_WITHIN = 30.0
EVENT_WITHIN = 30.0


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds from just before `startRun` to each milestone of one run."""

    started: float
    first_event: float
    running: float
    result: float


class Message(msgspec.Struct):
    """A `graphql-transport-ws` message from the server, as far as this client reads it."""

    type: str
    id: str | None = None
    payload: dict[str, object] | None = None


async def wait_until_ready(http: httpx.AsyncClient) -> None:
    """Return once /readyz says every dependency, a worker included, is up."""
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        try:
            if (await http.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"the server was not ready within {READY_WITHIN:g} s")


async def start_run(http: httpx.AsyncClient, token: str) -> str:
    """Start a run over HTTP and return its ID."""
    response = await http.post(
        "/graphql", json={"query": START}, headers={"Authorization": f"Bearer {token}"}
    )
    payload = response.json()["data"]["startRun"]
    if payload["userErrors"]:
        raise SystemExit(f"startRun refused: {payload['userErrors']}")
    run_id: str = payload["run"]["id"]
    return run_id


async def follow(ws: ClientConnection, op_id: str, begun: float, started: float) -> Timing:
    """Read one subscription's events until it completes, noting when each milestone came."""
    first = running = result = None
    while True:
        raw = await asyncio.wait_for(ws.recv(), EVENT_WITHIN)
        at = time.monotonic() - begun
        message = msgspec.json.decode(raw, type=Message)
        if message.type == "complete" and message.id == op_id:
            break
        if message.type != "next" or message.payload is None:
            raise SystemExit(f"unexpected message: {raw!r}")
        event = message.payload["data"]["runEvents"]  # type: ignore[index]
        first = first if first is not None else at
        if event.get("status") == "RUNNING":
            running = at
        if event["__typename"] == "RunResultEvent":
            result = at
    if first is None or running is None or result is None:
        raise SystemExit(f"run {op_id} ended without all of its events")
    return Timing(started, first, running, result)


async def measure(base_url: str, token: str, runs: int) -> list[Timing]:
    """Warm up, then time `runs` runs one after another."""
    timings = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        await wait_until_ready(http)
        ws = await signed_in_socket(base_url.replace("http", "ws", 1) + "/graphql", token)
        try:
            for number in range(WARM_UP_RUNS + runs):
                # A random pause, so that starts fall at every point of the worker's poll cycle.
                await asyncio.sleep(random.uniform(0.0, 0.1))
                begun = time.monotonic()
                run_id = await start_run(http, token)
                started = time.monotonic() - begun
                await subscribe(ws, str(number), RUN_EVENTS, runId=run_id)
                timing = await follow(ws, str(number), begun, started)
                if number >= WARM_UP_RUNS:
                    timings.append(timing)
        finally:
            await ws.close()
    return timings


def report(timings: list[Timing], settings: Settings) -> None:
    """Print the percentiles of each milestone."""
    print(
        f"{len(timings)} runs of demo.count {{to: 1, delayMs: 0}}, one at a time; "
        f"worker concurrency {settings.worker_concurrency}, latencies in ms from startRun"
    )
    columns = [Column("milestone", 34, left=True)] + [Column(h, 9) for h in ("p50", "p99", "max")]
    milestones = {
        "startRun answered (HTTP)": [t.started for t in timings],
        "first event (QUEUED, replayed)": [t.first_event for t in timings],
        "RUNNING (claimed by the worker)": [t.running for t in timings],
        "RESULT (run finished)": [t.result for t in timings],
    }
    rows = [
        [name, ms(percentile(v, 0.5)), ms(percentile(v, 0.99)), ms(max(v))]
        for name, v in milestones.items()
    ]
    print_table(columns, rows)


async def prepare(settings: Settings) -> str:
    """An operator's access token, on a flushed Redis database."""
    await flush_redis(settings.redis_url or "")
    services = services_for(settings)
    try:
        return await access_token(services, await new_user(services, Role.OPERATOR, "bench"))
    finally:
        await services.close()


def bench(database_url: str, args: argparse.Namespace) -> None:
    """Start the server and a worker, time the runs, print the table."""
    settings = bench_settings(database_url, args.redis)
    token = asyncio.run(prepare(settings))
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="runs-latency-", suffix=".log")[1])
    server = taskyard("serve", settings, log=log, port=port)
    worker = taskyard("worker", settings, log=log)
    try:
        timings = asyncio.run(measure(f"http://127.0.0.1:{port}", token, args.runs))
        report(timings, settings)
    finally:
        stop(worker)
        stop(server)
        log.unlink(missing_ok=True)


def main() -> None:
    """Parse the options and benchmark on a scratch database."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_service_options(parser)
    parser.add_argument("--runs", type=int, default=200, help="runs to time (default: 200)")
    args = parser.parse_args()
    with scratch_database(args.postgres) as database_url:
        bench(database_url, args)


if __name__ == "__main__":
    main()

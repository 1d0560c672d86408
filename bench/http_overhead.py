"""HTTP cost of `{ __typename }` on our /graphql, a plain Litestar route and the stock controller.

Run: .venv/bin/python bench/http_overhead.py

Four uvicorn servers (one worker each, the same settings as `taskyard serve`; ours twice,
with and without rate-limit leases) are started as subprocesses and driven in turn, in
interleaved rounds, so that the machine's noise is shared. Only one server is loaded at a
time; the client runs in this process.
"""

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psutil
import uvicorn
from http_load import Target, build_request, measure
from litestar import Litestar, get
from strawberry.litestar import make_graphql_controller

from api.app import create_app
from api.schema import build_schema
from infra.bootstrap import Services, build_services
from infra.logging import configure_logging
from infra.ratelimit import LeasedRateLimiter, RedisRateLimiter
from infra.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TYPENAME = msgspec.json.encode({"query": "{ __typename }"})
PLAIN_PATH = "/plain"


def plain_app() -> Litestar:
    """The baseline: one Litestar JSON route, with nothing else."""

    @get(PLAIN_PATH, sync_to_thread=False)
    def plain() -> dict[str, Any]:
        return {"data": {"__typename": "Query"}}

    return Litestar([plain], openapi_config=None, logging_config=None)


def _services() -> tuple[Settings, Services]:
    # `{ __typename }` never reaches the database, so nothing needs to listen there. Redis is
    # real: every request is admitted through the rate limiter, as in production, with a
    # budget so large that no machine serves fast enough to exhaust it.
    settings = Settings(
        env="test",
        log_format="json",
        database_url="postgresql://127.0.0.1:9/none",
        redis_url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        anonymous_rate_limit_per_minute=1_000_000_000,
        secret_key="bench-" + "k" * 40,
    )
    services = build_services(
        settings, database_url=settings.database_url or "", redis_url=settings.redis_url or ""
    )
    return settings, services


class OneTokenLeases(LeasedRateLimiter):
    """Leases of one token: how callers whose limit is under 1,200 a minute are admitted."""

    LEASE_DIVISOR = 2**62


def _taskyard_app(settings: Settings, services: Services) -> Litestar:
    configure_logging(level=settings.log_level, text=settings.text_logs)
    return create_app(settings, services)


def ours_app() -> Litestar:
    """Taskyard's own application and JSON request log, as `taskyard serve` builds them."""
    return _taskyard_app(*_services())


def unleased_app() -> Litestar:
    """Taskyard's application admitting each request with its own Redis round trip."""
    settings, services = _services()
    services.rate_limiter = OneTokenLeases(RedisRateLimiter(services.redis))
    return _taskyard_app(settings, services)


def stock_app() -> Litestar:
    """Strawberry's stock Litestar controller on the same schema and services."""
    settings, services = _services()

    # The stock controller insists on a dict (or its own BaseContext) as the context.
    async def context() -> dict[str, Any]:
        return {"services": services, "request_id": None}

    controller = make_graphql_controller(
        build_schema(settings), path="/graphql", context_getter=context
    )
    return Litestar([controller], openapi_config=None, logging_config=None)


APPS: dict[str, Callable[[], Litestar]] = {
    "plain": plain_app,
    "ours": ours_app,
    "unleased": unleased_app,
    "stock": stock_app,
}
REQUESTS = {
    name: build_request("GET", PLAIN_PATH)
    if name == "plain"
    else build_request("POST", "/graphql", TYPENAME)
    for name in APPS
}


def serve(name: str, port: int) -> None:
    """Serve one of the apps until terminated."""
    uvicorn.run(
        APPS[name](),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start(name: str) -> tuple[subprocess.Popen[bytes], Target]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", name, "--port", str(port)],
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return process, Target(name, port, REQUESTS[name])
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the {name} server did not start")


def _check(target: Target) -> None:
    # A benchmark of error responses would be worthless: make sure each one really answers.
    path = PLAIN_PATH if target.name == "plain" else "/graphql"
    url = f"http://127.0.0.1:{target.port}{path}"
    response = (
        httpx.get(url)
        if target.name == "plain"
        else httpx.post(url, content=TYPENAME, headers={"content-type": "application/json"})
    )
    assert response.json()["data"] == {"__typename": "Query"}, response.text


@dataclass(frozen=True, slots=True)
class Sample:
    """One server's throughput over one measurement window, and the CPU it burnt."""

    rate: float
    cpu_share: float

    @property
    def cpu_us(self) -> float:
        """Server CPU time per request in microseconds: steady even when the machine is busy."""
        return self.cpu_share / self.rate * 1e6


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def _rounds(
    targets: list[Target], processes: list[psutil.Process], args: argparse.Namespace
) -> dict[str, list[Sample]]:
    results: dict[str, list[Sample]] = {t.name: [] for t in targets}
    for target in targets:
        await measure(target, connections=args.connections, seconds=1.0)  # warm-up
    for round_ in range(args.rounds):
        # Rotate who goes first so that no server always follows the same neighbour.
        order = targets[round_ % len(targets) :] + targets[: round_ % len(targets)]
        for target in order:
            process = processes[targets.index(target)]
            before = _cpu_seconds(process)
            rate, failures = await measure(
                target, connections=args.connections, seconds=args.seconds
            )
            share = (_cpu_seconds(process) - before) / args.seconds
            if failures:
                raise SystemExit(f"{target.name} answered other than 200: {failures}")
            results[target.name].append(Sample(rate, share))
    return results


def _report(results: dict[str, list[Sample]], args: argparse.Namespace) -> None:
    rate = {name: statistics.median(s.rate for s in runs) for name, runs in results.items()}
    cpu_us = {name: statistics.median(s.cpu_us for s in runs) for name, runs in results.items()}
    print(f"{args.rounds} rounds of {args.seconds:g} s per server, {args.connections} connections")
    print(f"{'server':<8}{'req/s':>10}{'min':>10}{'max':>10}{'server CPU':>12}{'CPU/req':>12}")
    for name, runs in results.items():
        rates = [s.rate for s in runs]
        share = statistics.median(s.cpu_share for s in runs)
        print(
            f"{name:<8}{rate[name]:>10,.0f}{min(rates):>10,.0f}{max(rates):>10,.0f}"
            f"{share:>11.0%}{cpu_us[name]:>10.0f}us"
        )
    for name in [name for name in APPS if name != "plain"]:
        print(
            f"ratio {name}/plain: {rate[name] / rate['plain']:.2f} by req/s, "
            f"{cpu_us['plain'] / cpu_us[name]:.2f} by server CPU per request"
            + ("  (target >= 0.25)" if name == "ours" else "")
        )


def main() -> None:
    """Start the three servers, measure them in interleaved rounds, print rates and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--serve", choices=APPS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    started = [_start(name) for name in APPS]
    try:
        targets = [target for _, target in started]
        for target in targets:
            _check(target)
        processes = [psutil.Process(p.pid) for p, _ in started]
        _report(asyncio.run(_rounds(targets, processes, args)), args)
    finally:
        for process, _ in started:
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    main()

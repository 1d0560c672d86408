"""What the runs benchmarks share: a database of their own, Redis DB 6, users, servers, tables."""

import argparse
import asyncio
import math
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec
import psutil
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from domain.identity.models import RequestMeta, Role, User
from infra.bootstrap import Services, build_services
from infra.db import migrations
from infra.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
# The benchmarks own this Redis database and flush it; the test suites use others.
DEFAULT_REDIS = "redis://127.0.0.1:6379/6"
SECRET_KEY = "bench-signing-key-" + "k" * 32
PASSWORD = "correct horse battery staple"  # noqa: S105 - bench users only
META = RequestMeta(ip="127.0.0.1", request_id="bench")
# The built-in plan whose daily quota and concurrency no benchmark reaches.
PLAN = "enterprise"
# A budget no machine spends: the benchmarks measure work, not the rate limiter's refusals.
UNLIMITED = 1_000_000


def add_service_options(parser: argparse.ArgumentParser) -> None:
    """The PostgreSQL server and Redis database options every runs benchmark takes."""
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_SERVER),
        help="PostgreSQL server to create a scratch database on (default: %(default)s)",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS),
        help="Redis database the benchmark owns and flushes (default: %(default)s)",
    )


def bench_settings(database_url: str, redis_url: str, **overrides: Any) -> Settings:
    """Production-like settings (JSON request log included) with no rate limit in the way."""
    values: dict[str, Any] = {
        "env": "test",
        "log_format": "json",
        "database_url": database_url,
        "redis_url": redis_url,
        "secret_key": SECRET_KEY,
        "rate_limit_per_minute": UNLIMITED,
        "anonymous_rate_limit_per_minute": UNLIMITED,
    }
    return Settings(**(values | overrides))


def services_for(settings: Settings) -> Services:
    """The process's services over the settings' own URLs."""
    return build_services(
        settings, database_url=settings.database_url or "", redis_url=settings.redis_url or ""
    )


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def _admin(server: str, statement: str) -> None:
    connection = await asyncpg.connect(server)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def scratch_database(server: str) -> Iterator[str]:
    """A new database migrated to head, dropped afterwards whatever happens."""
    name = f"taskyard_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        url = _with_database(server, name)
        migrations.upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def flush_redis(url: str) -> None:
    """Empty the benchmark's Redis database."""
    redis = Redis.from_url(url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


async def new_user(services: Services, role: Role, name: str) -> User:
    """A new user of `role` whose display name is `name`, on the plan with the most room."""
    return await services.identity.create_user(
        actor=None,
        meta=META,
        email=f"{name}-{uuid.uuid4().hex[:6]}@example.com",
        password=PASSWORD,
        display_name=name,
        role=role,
        plan=PLAN,
    )


async def access_token(services: Services, user: User) -> str:
    """An access token of `user`, from a password sign-in."""
    signed = await services.identity.login(email=user.email, password=PASSWORD, meta=META)
    return signed.access_token


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once something listens on `port`; fail, showing its log, if `process` dies."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"a server exited with code {process.returncode}:\n{_tail(log)}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"nothing listened on port {port} within 30 s:\n{_tail(log)}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a process this benchmark started, killing it if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def taskyard_env(settings: Settings, port: int | None = None) -> dict[str, str]:
    """The environment of a `taskyard` process with exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKYARD_")}
    for name in Settings.__struct_fields__:
        value = getattr(settings, name)
        if value is not None:
            text = str(value)
            env[f"TASKYARD_{name.upper()}"] = text.lower() if isinstance(value, bool) else text
    if port is not None:
        env["TASKYARD_PORT"] = str(port)
    return env


def spawn(
    args: Sequence[str], *, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A child Python process of this checkout, writing its output to `log`."""
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )


def _backend_cpu(database: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving `database`, by process ID."""
    found = {}
    for process in psutil.process_iter(["name", "cmdline", "cpu_times"]):
        title = " ".join(process.info["cmdline"] or ())
        times = process.info["cpu_times"]
        if (process.info["name"] or "").startswith("postgres") and f" {database} " in title:
            found[process.pid] = times.user + times.system
    return found


@dataclass(slots=True)
class DatabaseCpu:
    """CPU that PostgreSQL spends on one database, read from its backends' process times.

    A backend that ends within the window takes its CPU with it, so this is a lower bound.
    """

    database: str
    _start: dict[int, float] = field(default_factory=dict)

    def start(self) -> None:
        """Begin a window."""
        self._start = _backend_cpu(self.database)

    def seconds(self) -> float:
        """CPU seconds since `start` of the backends alive now."""
        now = _backend_cpu(self.database)
        return sum(cpu - self._start.get(pid, 0.0) for pid, cpu in now.items())


def database_name(url: str) -> str:
    """The database a PostgreSQL URL names."""
    return urlsplit(url).path.lstrip("/")


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of `values` (fraction from 0 to 1)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a printed table: its heading, width and alignment."""

    heading: str
    width: int
    left: bool = False


def table_row(columns: Sequence[Column], cells: Sequence[str]) -> str:
    """One line of a table: the cells padded to their columns' widths."""
    return "".join(
        f"{cell:<{c.width}}" if c.left else f"{cell:>{c.width}}"
        for c, cell in zip(columns, cells, strict=True)
    )


def print_table(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
    """Rows under headings, padded to the columns' widths."""
    print(table_row(columns, [c.heading for c in columns]))
    for row in rows:
        print(table_row(columns, row))


def ms(seconds: float) -> str:
    """Seconds shown as milliseconds with one decimal."""
    return f"{seconds * 1000:.1f}"


def taskyard(
    command: str, settings: Settings, *, log: Path, port: int | None = None
) -> subprocess.Popen[bytes]:
    """`taskyard serve` or `taskyard worker` as an operator runs it, with these settings."""
    return spawn(["-m", "taskyard", command], log=log, env=taskyard_env(settings, port))


async def signed_in_socket(url: str, token: str) -> ClientConnection:
    """A `graphql-transport-ws` connection past its `connection_init`."""
    ws = await connect(url, subprotocols=[Subprotocol("graphql-transport-ws")], max_queue=None)
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
    await ws.send(msgspec.json.encode(init).decode())
    reply = msgspec.json.decode(await ws.recv())
    if reply != {"type": "connection_ack"}:
        raise SystemExit(f"the WebSocket was not acknowledged: {reply}")
    return ws


async def subscribe(ws: ClientConnection, op_id: str, query: str, **variables: Any) -> None:
    """Start a subscription under `op_id`."""
    payload = {"query": query, "variables": variables}
    message = {"id": op_id, "type": "subscribe", "payload": payload}
    await ws.send(msgspec.json.encode(message).decode())

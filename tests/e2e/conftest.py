"""The real server and worker processes, started as an operator would, on the test services."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from infra.bootstrap import build_services
from infra.settings import Settings
from tests.conftest import TEST_SECRET_KEY, sign_in
from tests.live import free_port

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class RunningServer:
    """A `taskyard serve` and a `taskyard worker` process, and where to find them."""

    base_url: str
    server: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    workdir: Path
    token: str = ""

    @property
    def graphql_url(self) -> str:
        """The GraphQL endpoint over HTTP."""
        return f"{self.base_url}/graphql"

    @property
    def websocket_url(self) -> str:
        """The GraphQL endpoint over WebSocket."""
        return self.graphql_url.replace("http://", "ws://", 1)

    def log(self, command: str) -> str:
        """Everything `taskyard <command>` has written so far."""
        return (self.workdir / f"{command}.log").read_text()


def _environment(database_url: str, redis_url: str, port: int) -> dict[str, str]:
    # The developer's own TASKYARD_* variables must not leak into the processes under test.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("TASKYARD_")}
    return inherited | {
        "TASKYARD_ENV": "test",
        "TASKYARD_PORT": str(port),
        "TASKYARD_DATABASE_URL": database_url,
        "TASKYARD_REDIS_URL": redis_url,
        "TASKYARD_SECRET_KEY": TEST_SECRET_KEY,
        "TASKYARD_LOG_FORMAT": "json",
    }


def _spawn(command: str, env: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    # The working directory holds no `.env`, so only the variables above apply.
    with (workdir / f"{command}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "taskyard", command],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _wait_healthy(running: RunningServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        for command, process in (("serve", running.server), ("worker", running.worker)):
            if process.poll() is not None:
                pytest.fail(f"taskyard {command} exited early:\n{running.log(command)}")
        try:
            if httpx.get(f"{running.base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the server did not answer /healthz in {STARTUP_TIMEOUT} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def _operator_token(database_url: str, redis_url: str) -> str:
    settings = Settings(database_url=database_url, redis_url=redis_url, secret_key=TEST_SECRET_KEY)
    services = build_services(settings, database_url=database_url, redis_url=redis_url)
    try:
        return await sign_in(services)
    finally:
        await services.close()


@pytest.fixture(scope="package")
def running_server(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """`taskyard serve` and `taskyard worker` as real processes, stopped after the e2e tests."""
    workdir = tmp_path_factory.mktemp("server")
    port = free_port()
    env = _environment(database_url, redis_url, port)
    server, worker = _spawn("serve", env, workdir), _spawn("worker", env, workdir)
    running = RunningServer(f"http://127.0.0.1:{port}", server, worker, workdir)
    try:
        _wait_healthy(running)
        yield replace(running, token=asyncio.run(_operator_token(database_url, redis_url)))
    finally:
        _stop(server)
        _stop(worker)

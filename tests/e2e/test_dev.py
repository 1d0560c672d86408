"""`taskyard dev` end to end: embedded servers, migrations, the API and a worker, supervised."""

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from redis import Redis

from tests.live import (
    TASKYARD,
    alive,
    assert_one_line_error,
    free_port,
    run_taskyard,
    shared_tmp_dir,
    sql,
    taskyard_env,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


@dataclass
class Dev:
    """A running `taskyard dev` and how to reach it."""

    process: subprocess.Popen[bytes]
    env: dict[str, str]
    cwd: Path
    output: Path

    @property
    def base_url(self) -> str:
        """Where its API listens."""
        return f"http://127.0.0.1:{self.env['TASKYARD_PORT']}"

    @property
    def database_url(self) -> str:
        """Its embedded PostgreSQL."""
        return f"postgresql://postgres@127.0.0.1:{self.env['TASKYARD_EMBEDDED_POSTGRES_PORT']}/postgres"

    @property
    def redis(self) -> Redis:
        """A client of its embedded Redis."""
        port = int(self.env["TASKYARD_EMBEDDED_REDIS_PORT"])
        return Redis(port=port, socket_timeout=2, decode_responses=True)

    def log(self) -> str:
        """Everything it printed so far."""
        return self.output.read_text(errors="replace")

    def child(self, name: str) -> psutil.Process:
        """Its direct child named `name`, or running `taskyard <name>`."""
        for child in psutil.Process(self.process.pid).children():
            if child.name() == name or child.cmdline()[-2:] == ["taskyard", name]:
                return child
        raise AssertionError(f"taskyard dev has no child process {name!r}")

    def get(self, path: str) -> httpx.Response:
        """GET on its API."""
        return httpx.get(self.base_url + path, timeout=5)

    def graphql(self, query: str) -> dict[str, Any]:
        """POST a query; the JSON answer."""
        response = httpx.post(self.base_url + "/graphql", json={"query": query}, timeout=5)
        answer: dict[str, Any] = response.json()
        return answer


def start_dev(env: dict[str, str], cwd: Path, name: str) -> Dev:
    """Start `taskyard dev` and wait until it prints the GraphiQL URL."""
    output = cwd / f"{name}.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [*TASKYARD, "dev"], env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT
        )
    dev = Dev(process, env, cwd, output)

    def announced() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"taskyard dev exited with {process.returncode}:\n{dev.log()}")
        return f"GraphiQL: {dev.base_url}/graphql" in dev.log()

    try:
        wait_until("taskyard dev to print the GraphiQL URL", announced, START_TIMEOUT)
    except AssertionError:
        stop_dev(dev)
        raise
    return dev


def stop_dev(dev: Dev) -> float:
    """Send SIGINT as Ctrl-C would; seconds until it exited (killed if it does not)."""
    started = time.monotonic()
    if dev.process.poll() is None:
        dev.process.send_signal(signal.SIGINT)
    try:
        dev.process.wait(STOP_TIMEOUT + 5)
    except subprocess.TimeoutExpired:
        dev.process.kill()
        dev.process.wait()
    return time.monotonic() - started


@pytest.fixture(scope="module")
def dev() -> Iterator[Dev]:
    """One `taskyard dev` on its own data directory and ports, shared by this module."""
    with shared_tmp_dir() as root:
        ports = {"port": free_port(), "postgres_port": free_port(), "redis_port": free_port()}
        running = start_dev(taskyard_env(root / "data", **ports), root, "dev")
        yield running
        stop_dev(running)


def _health_ok(dev: Dev) -> bool:
    return dev.graphql("{ health { status } }").get("data") == {"health": {"status": "OK"}}


def _redis_down(dev: Dev) -> bool:
    response = dev.get("/readyz")
    return (
        response.status_code == 503 and response.json()["components"]["redis"]["status"] == "down"
    )


def test_dev_serves_the_api_and_a_worker(dev: Dev) -> None:
    assert dev.get("/healthz").status_code == 200
    # OK needs every component, the worker's heartbeat included.
    wait_until("health to be OK", lambda: _health_ok(dev), 30)
    assert dev.get("/readyz").status_code == 200


def test_a_second_dev_on_the_same_data_dir_is_refused(dev: Dev) -> None:
    result = run_taskyard("dev", env=dev.env, cwd=dev.cwd, timeout=30)
    assert_one_line_error(result, "in use by another taskyard process", f"pid {dev.process.pid}")
    assert dev.process.poll() is None
    wait_until("the first dev to stay healthy", lambda: _health_ok(dev), 15)


def test_a_killed_redis_is_restarted_and_the_api_recovers_by_itself(dev: Dev) -> None:
    wait_until("readiness", lambda: dev.get("/readyz").status_code == 200, 30)
    api, redis = dev.child("serve"), dev.child("redis-server")

    redis.kill()
    killed_at = time.monotonic()
    try:
        wait_until("/readyz to report Redis down", lambda: _redis_down(dev), 5, every=0.02)
        remaining = 15 - (time.monotonic() - killed_at)
        wait_until(
            "/readyz to be 200 again", lambda: dev.get("/readyz").status_code == 200, remaining
        )
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}; /readyz: {dev.get('/readyz').text}\n{dev.log()[-3000:]}"
        ) from None

    assert dev.child("serve").pid == api.pid
    assert dev.child("redis-server").pid != redis.pid


def test_dev_starts_under_a_directory_only_its_owner_may_enter() -> None:
    # A clone in `mktemp -d` or a home directory sits under a private (0700) directory. As
    # root, the embedded PostgreSQL runs as a service account that must still reach its data.
    with shared_tmp_dir() as root:
        private = root / "private"
        private.mkdir(mode=0o700)
        ports = {"port": free_port(), "postgres_port": free_port(), "redis_port": free_port()}
        dev = start_dev(taskyard_env(private / "data", **ports), private, "private")
        try:
            wait_until("health to be OK", lambda: _health_ok(dev), 30)
        finally:
            stop_dev(dev)


def test_sigint_stops_everything_and_a_restart_finds_the_data() -> None:
    with shared_tmp_dir() as root, ExitStack() as cleanup:
        ports = {"port": free_port(), "postgres_port": free_port(), "redis_port": free_port()}
        env = taskyard_env(root / "data", **ports)
        first = start_dev(env, root, "first")
        cleanup.callback(stop_dev, first)
        sql(
            first.database_url,
            "CREATE TABLE kept (v text)",
            "INSERT INTO kept VALUES ('pg')",
            "SELECT 1",
        )
        first.redis.set("kept", "redis")
        family = psutil.Process(first.process.pid).children(recursive=True)
        names = {p.name() for p in family}
        assert {"postgres", "redis-server"} <= names, names

        assert stop_dev(first) < STOP_TIMEOUT
        assert alive(family) == []

        second = start_dev(env, root, "second")
        cleanup.callback(stop_dev, second)
        assert [r["v"] for r in sql(second.database_url, "SELECT v FROM kept")] == ["pg"]
        assert second.redis.get("kept") == "redis"

"""/readyz and `health` report each dependency, and follow them down and back up."""

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from infra.db import migrations
from tests.conftest import ClientFactory

HEALTH = "{ health { status components { name status latencyMs detail } } }"


async def ready(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    """The status code and body of /readyz."""
    response = await client.get("/readyz")
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def wait_for_readiness(
    client: httpx.AsyncClient, status: str, timeout: float
) -> tuple[int, dict[str, Any]]:
    """Poll /readyz until its overall status is `status`, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        code, body = await ready(client)
        if body["status"] == status:
            return code, body
        if time.monotonic() > deadline:
            raise AssertionError(f"/readyz not {status} after {timeout:g}s: {code} {body}")
        await asyncio.sleep(0.1)


def down(body: dict[str, Any]) -> set[str]:
    """The components /readyz reports as down."""
    return {name for name, c in body["components"].items() if c["status"] == "down"}


async def health(client: httpx.AsyncClient) -> dict[str, Any]:
    """The `health` query's answer."""
    response = await client.post("/graphql", json={"query": HEALTH})
    answer: dict[str, Any] = response.json()["data"]["health"]
    return answer


def assert_mirrors(answer: dict[str, Any], body: dict[str, Any]) -> None:
    """The GraphQL health answer says what /readyz said, component by component."""
    assert answer["status"] == body["status"].upper()
    assert {c["name"]: c["status"].lower() for c in answer["components"]} == {
        name: c["status"] for name, c in body["components"].items()
    }


async def test_ready_when_every_dependency_and_a_worker_answer(
    client: httpx.AsyncClient, worker: None
) -> None:
    code, body = await wait_for_readiness(client, "ok", timeout=10)
    assert code == 200
    assert set(body["components"]) == {"database", "redis", "migrations", "worker"}
    assert down(body) == set()
    assert body["components"]["migrations"]["detail"] == f"at {migrations.head_revision()}"
    answer = await health(client)
    assert_mirrors(answer, body)
    assert all(c["latencyMs"] >= 0 for c in answer["components"])


async def test_unreachable_redis_is_named(
    make_client: ClientFactory, unused_port: Callable[[], int]
) -> None:
    async with make_client(redis_url=f"redis://127.0.0.1:{unused_port()}/0") as client:
        code, body = await ready(client)
        answer = await health(client)
    assert code == 503
    assert body["status"] == "down"
    assert down(body) == {"redis"}
    assert body["components"]["redis"]["detail"]
    assert_mirrors(answer, body)


async def test_a_database_without_schema_fails_the_migrations_check(
    make_client: ClientFactory, empty_database_url: str
) -> None:
    async with make_client(database_url=empty_database_url) as client:
        code, body = await ready(client)
    assert code == 503
    assert "migrations" in down(body)
    assert body["components"]["database"]["status"] == "ok"


async def test_a_database_behind_head_is_named_with_both_revisions(
    make_client: ClientFactory, empty_database_url: str
) -> None:
    await asyncio.to_thread(migrations.upgrade, empty_database_url)
    await asyncio.to_thread(migrations.downgrade, empty_database_url, "-1")
    async with make_client(database_url=empty_database_url) as client:
        code, body = await ready(client)
        answer = await health(client)
    assert code == 503
    assert down(body) == {"migrations"}
    detail = body["components"]["migrations"]["detail"]
    assert f"code expects {migrations.head_revision()}" in detail
    assert_mirrors(answer, body)


class RedisServer:
    """A redis-server of the test's own, on a fixed port, that the test may kill and restart."""

    def __init__(self, port: int, directory: Path) -> None:
        self.port = port
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where clients find it."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it and wait until it answers PING."""
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        with redis.Redis(port=self.port, socket_connect_timeout=0.5) as client:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL it, as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis(tmp_path: Path, unused_port: Callable[[], int]) -> Iterator[RedisServer]:
    """A running redis-server that only this test uses."""
    server = RedisServer(unused_port(), tmp_path)
    server.start()
    yield server
    server.kill()


async def test_readiness_follows_redis_down_and_back_without_a_restart(
    make_client: ClientFactory, worker: None, own_redis: RedisServer
) -> None:
    async with make_client(redis_url=own_redis.url) as client:
        assert (await wait_for_readiness(client, "ok", timeout=10))[0] == 200
        own_redis.kill()
        code, body = await wait_for_readiness(client, "down", timeout=10)
        assert (code, down(body)) == (503, {"redis"})
        await asyncio.to_thread(own_redis.start)
        assert (await wait_for_readiness(client, "ok", timeout=15))[0] == 200

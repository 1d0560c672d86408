"""Shared fixtures: real PostgreSQL and Redis, a fresh database per run, clean state per test."""

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import msgspec
import pytest
from arq.worker import Worker
from litestar import Litestar
from sqlalchemy import select, text

from api.app import create_app
from domain.identity.models import RequestMeta, Role
from infra.bootstrap import Services, build_services
from infra.db import migrations
from infra.db.engine import create_engine
from infra.db.models import Base
from infra.embedded import ServiceUrls, service_urls
from infra.settings import Settings
from tests.live import free_port, shared_tmp_dir
from workers.settings import cancel_until_done, worker_settings
from workers.tasks.catalog import load_catalog

LOCAL_DATABASE = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
TEST_SECRET_KEY = "test-signing-key-" + "x" * 32
TEST_PASSWORD = "correct horse battery staple"
# The test suite owns this Redis database number and flushes it between tests; runs of the
# suite side by side on one Redis each need their own (TASKYARD_TEST_REDIS_DB).
TEST_REDIS_DB = int(os.environ.get("TASKYARD_TEST_REDIS_DB", "13"))


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 1):
            return True
    except OSError:
        return False


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _with_redis_db(url: str, db: int) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


@pytest.fixture(scope="session")
def server_urls() -> Iterator[ServiceUrls]:
    """Test URLs from the environment, else local services, else embedded ones."""
    database = os.environ.get("TASKYARD_TEST_DATABASE_URL")
    redis = os.environ.get("TASKYARD_TEST_REDIS_URL")
    database = database or (LOCAL_DATABASE if _reachable(LOCAL_DATABASE) else None)
    redis = redis or (LOCAL_REDIS if _reachable(LOCAL_REDIS) else None)
    if database and redis:
        yield ServiceUrls(database, redis)
        return
    # The embedded PostgreSQL may run as another account, which must reach the directory.
    with shared_tmp_dir() as data_dir:
        embedded = Settings(
            database_url=database,
            redis_url=redis,
            data_dir=str(data_dir),
            embedded_postgres_port=free_port(),
            embedded_redis_port=free_port(),
        )
        with service_urls(embedded) as urls:
            yield urls


async def _admin(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextmanager
def _new_database(server: str) -> Iterator[str]:
    name = f"taskyard_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(server, name)
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


SeededRows = dict[str, list[dict[str, Any]]]


async def _seeded(url: str) -> SeededRows:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            return {
                table.name: [dict(row) for row in rows]
                for table in Base.metadata.sorted_tables
                if (rows := (await connection.execute(select(table))).mappings().all())
            }
    finally:
        await engine.dispose()


@dataclass(frozen=True, slots=True)
class MigratedDatabase:
    """The run's database, and the rows its migrations seed (the built-in plans)."""

    url: str
    seeded: SeededRows


@pytest.fixture(scope="session")
def migrated_database(server_urls: ServiceUrls) -> Iterator[MigratedDatabase]:
    """A database created for this test run, migrated to head, dropped at the end.

    What the migrations seed is read at once, before any test can write, so that every
    reset puts back exactly that.
    """
    with _new_database(server_urls.database_url) as url:
        migrations.upgrade(url)
        yield MigratedDatabase(url, asyncio.run(_seeded(url)))


@pytest.fixture(scope="session")
def database_url(migrated_database: MigratedDatabase) -> str:
    """The URL of the run's migrated database."""
    return migrated_database.url


@pytest.fixture
def empty_database_url(server_urls: ServiceUrls) -> Iterator[str]:
    """A database of this test's own with no schema at all, dropped afterwards."""
    with _new_database(server_urls.database_url) as url:
        yield url


@pytest.fixture
def unused_port() -> Callable[[], int]:
    """Returns a TCP port on 127.0.0.1 that nothing listens on, at each call."""
    return free_port


@pytest.fixture(scope="session")
def redis_url(server_urls: ServiceUrls) -> str:
    """A Redis database number that belongs to the tests."""
    return _with_redis_db(server_urls.redis_url, TEST_REDIS_DB)


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    """Settings pointing at the test services."""
    return Settings(
        env="test", database_url=database_url, redis_url=redis_url, secret_key=TEST_SECRET_KEY
    )


@pytest.fixture
async def services(
    settings: Settings, database_url: str, redis_url: str, migrated_database: MigratedDatabase
) -> AsyncIterator[Services]:
    """Adapters on clean state: tables as migrated and an empty Redis database."""
    built = build_services(settings, database_url=database_url, redis_url=redis_url)
    await built.redis.flushdb()
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with built.engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} CASCADE"))
        for table in Base.metadata.sorted_tables:
            if rows := migrated_database.seeded.get(table.name):
                await connection.execute(table.insert(), rows)
    yield built
    await built.close()


@pytest.fixture
def app(settings: Settings, services: Services) -> Litestar:
    """The API application over the test's services."""
    return create_app(settings, services)


@asynccontextmanager
async def _client_for(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    # Litestar types its ASGI callable more narrowly than httpx's generic signature.
    transport = httpx.ASGITransport(app=cast(Any, app))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process."""
    async with _client_for(app) as http:
        yield http


ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def make_client(settings: Settings, database_url: str, redis_url: str) -> ClientFactory:
    """Builds a client over an app of its own, with other URLs or settings than `client`'s.

    Call it as `async with make_client(redis_url=..., ping_timeout=0.2) as http:`;
    keyword arguments other than the two URLs replace settings.
    """

    @asynccontextmanager
    async def make(
        *, database_url: str = database_url, redis_url: str = redis_url, **overrides: Any
    ) -> AsyncIterator[httpx.AsyncClient]:
        custom = msgspec.structs.replace(settings, **overrides)
        built = build_services(custom, database_url=database_url, redis_url=redis_url)
        try:
            async with _client_for(create_app(custom, built)) as http:
                yield http
        finally:
            await built.close()

    return make


@pytest.fixture
async def worker(
    settings: Settings, database_url: str, redis_url: str, services: Services
) -> AsyncIterator[None]:
    """A real arq worker running in this event loop for the test's duration.

    It depends on `services` so that the clean-up of state happens before its first heartbeat.
    """
    options = worker_settings(settings, database_url=database_url, redis_url=redis_url)
    # Signal handlers would be installed on the test loop and swallow Ctrl-C.
    arq_worker = Worker(**{**options, "handle_signals": False})
    task = asyncio.create_task(arq_worker.main())
    yield
    await cancel_until_done(task)
    await arq_worker.close()


async def sign_in(services: Services, role: Role = Role.OPERATOR, email: str | None = None) -> str:
    """Create a user of `role` and return an access token for it."""
    address = email or f"{role.value}-{uuid.uuid4().hex[:8]}@example.com"
    meta = RequestMeta(ip="127.0.0.1", request_id="test-setup")
    await services.identity.create_user(
        actor=None, meta=meta, email=address, password=TEST_PASSWORD, role=role
    )
    signed = await services.identity.login(email=address, password=TEST_PASSWORD, meta=meta)
    return signed.access_token


async def register_tasks(services: Services) -> None:
    """Register the built-in tasks, as a worker does when it starts."""
    await services.runs.register_tasks(load_catalog().tasks(datetime.now(UTC)))


@pytest.fixture
async def operator_token(services: Services) -> str:
    """An access token of a freshly made operator."""
    return await sign_in(services)


@pytest.fixture
def auth(operator_token: str) -> dict[str, str]:
    """Request headers that sign in as that operator."""
    return {"Authorization": f"Bearer {operator_token}"}

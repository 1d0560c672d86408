"""What each CLI command does; every expected failure is a `CommandError` with one line."""

import asyncio
import contextlib
import errno
import gc
import json
import logging
import socket
import sys
from pathlib import Path

import asyncpg
import uvicorn
from redis.asyncio import Redis
from redis.exceptions import RedisError

from infra.bootstrap import build_services
from infra.db import migrations
from infra.db.engine import create_engine
from infra.embedded import ServiceUrls, service_urls
from infra.logging import configure_logging
from infra.settings import Settings, effective_settings

logger = logging.getLogger("taskyard.worker")
MAX_RECONNECT_DELAY = 10.0


class CommandError(Exception):
    """A command cannot go on; the message is shown to the operator as is."""


def _logging(settings: Settings) -> None:
    configure_logging(level=settings.log_level, text=settings.text_logs)


def check_port_free(host: str, port: int) -> None:
    """Fail early and clearly when the HTTP port is taken, instead of deep inside the server."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"({exc.strerror})"
            raise CommandError(f"cannot listen on {host}:{port}: the port {reason}") from None


async def _check_database(url: str, timeout: float) -> None:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    try:
        connection = await asyncpg.connect(dsn, timeout=timeout)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise CommandError(f"cannot reach PostgreSQL: {type(exc).__name__}: {exc}") from None
    await connection.close()


async def _check_redis(url: str, timeout: float) -> None:
    client = Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means Redis is not usable
        raise CommandError(f"cannot reach Redis: {type(exc).__name__}: {exc}") from None
    finally:
        await client.aclose()


def preflight(urls: ServiceUrls, settings: Settings) -> None:
    """Make sure both dependencies answer before a long-running process starts."""

    async def check() -> None:
        await _check_database(urls.database_url, settings.db_connect_timeout)
        await _check_redis(urls.redis_url, settings.db_connect_timeout)

    asyncio.run(check())


def serve(settings: Settings) -> int:
    """Run the HTTP API until interrupted."""
    from api.app import create_app

    _logging(settings)
    check_port_free(settings.host, settings.port)
    with service_urls(settings) as urls:
        preflight(urls, settings)
        services = build_services(
            settings, database_url=urls.database_url, redis_url=urls.redis_url
        )
        app = create_app(settings, services)
        # Everything built so far lives as long as the process: moved out of the collector's
        # reach, it is no longer walked by every full collection during requests.
        gc.freeze()
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            ws_ping_interval=20,
            ws_ping_timeout=20,
            timeout_graceful_shutdown=5,
            server_header=False,
        )
        server = uvicorn.Server(config)
        server.run()
        return 0 if server.started else 1


def worker(settings: Settings) -> int:
    """Run one arq worker until interrupted."""
    from workers.settings import create_worker

    _logging(settings)
    with service_urls(settings) as urls:
        preflight(urls, settings)

        async def run_once() -> None:
            arq_worker = create_worker(
                settings, database_url=urls.database_url, redis_url=urls.redis_url
            )
            try:
                # async_run registers the task that arq cancels on SIGINT or SIGTERM.
                await arq_worker.async_run()
            except asyncio.CancelledError:
                pass
            finally:
                # close() re-raises the cancel of a job that a signal stopped; the process is
                # exiting either way, and a worker row left behind ages out of readiness.
                with contextlib.suppress(RedisError, OSError, asyncio.CancelledError):
                    await arq_worker.close()

        async def run() -> None:
            # arq gives up when Redis goes away; the worker waits for it to come back instead.
            delay = 1.0
            while True:
                try:
                    await run_once()
                    return
                except (RedisError, OSError) as exc:
                    logger.warning("lost Redis (%s); reconnecting in %.0fs", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_RECONNECT_DELAY)

        asyncio.run(run())
    return 0


def migrate(settings: Settings, action: str, revision: str | None) -> int:
    """Upgrade, downgrade or show the schema revision."""
    _logging(settings)
    with service_urls(settings) as urls:
        preflight(urls, settings)
        if action == "upgrade":
            migrations.upgrade(urls.database_url, revision or "head")
        elif action == "downgrade":
            migrations.downgrade(urls.database_url, revision or "base")
        else:
            current = asyncio.run(_current(urls.database_url))
            print(f"current: {current or 'base'}\nhead:    {migrations.head_revision()}")
    return 0


async def _current(url: str) -> str | None:
    engine = create_engine(url, pool_size=1)
    try:
        return await migrations.current_revision(engine)
    finally:
        await engine.dispose()


def config(settings: Settings) -> int:
    """Print the effective settings as JSON, secrets redacted."""
    print(json.dumps(effective_settings(settings), indent=2))
    return 0


def export_schema(settings: Settings, output: str | None) -> int:
    """Write the schema's SDL to `output`, or stdout."""
    from api.schema import build_schema

    sdl = build_schema(settings).as_str() + "\n"
    if output:
        Path(output).write_text(sdl)
    else:
        sys.stdout.write(sdl)
    return 0


def dev(settings: Settings) -> int:
    """Run the whole platform locally until Ctrl-C."""
    from taskyard.dev import run_dev

    return run_dev(settings)

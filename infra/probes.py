"""Health probes for each dependency, behind the domain's `HealthProbe` port."""

from datetime import UTC, datetime

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.health import DegradedError
from domain.workers import WorkerRegistry, is_fresh
from infra.db.migrations import head_revision


class DatabaseProbe:
    """PostgreSQL answers a query."""

    name = "database"

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def probe(self) -> str | None:
        """Run `SELECT 1`."""
        async with self._engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return None


class RedisProbe:
    """Redis answers a PING."""

    name = "redis"

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def probe(self) -> str | None:
        """Send PING."""
        await self._redis.ping()
        return None


class MigrationProbe:
    """The database schema is at the revision this code expects."""

    name = "migrations"

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._head = head_revision()

    async def probe(self) -> str | None:
        """Compare the database's revision with the code's head."""
        async with self._engine.connect() as connection:
            # Before the first migration the table does not exist: that is "base", not a fault.
            exists = await connection.scalar(text("SELECT to_regclass('alembic_version')"))
            current = (
                await connection.scalar(text("SELECT version_num FROM alembic_version LIMIT 1"))
                if exists
                else None
            )
        if current != self._head:
            raise RuntimeError(f"database at {current or 'base'}, code expects {self._head}")
        return f"at {current}"


class WorkerProbe:
    """At least one worker has sent a heartbeat recently."""

    name = "worker"

    def __init__(self, registry: WorkerRegistry, *, stale_after: float) -> None:
        self._registry = registry
        self._stale_after = stale_after

    async def probe(self) -> str | None:
        """Look at the freshest heartbeat."""
        beat = await self._registry.latest()
        if beat is None:
            raise DegradedError("no worker has ever sent a heartbeat")
        now = datetime.now(UTC)
        age = (now - beat.last_seen_at).total_seconds()
        if not is_fresh(beat, now=now, stale_after=self._stale_after):
            raise DegradedError(f"last heartbeat {age:.0f}s ago from {beat.hostname}")
        return f"{beat.hostname} pid {beat.pid}, {age:.1f}s ago"

"""The worker registry, kept in PostgreSQL."""

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.workers import WorkerBeat
from infra.db.models import WorkerRow


class SqlWorkerRegistry:
    """Heartbeats as upserts into the `workers` table."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def beat(self, beat: WorkerBeat) -> None:
        """Insert the worker or move its `last_seen_at` forward."""
        values = {
            "id": beat.id,
            "hostname": beat.hostname,
            "pid": beat.pid,
            "version": beat.version,
            "started_at": beat.started_at,
            "last_seen_at": beat.last_seen_at,
        }
        statement = insert(WorkerRow).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=[WorkerRow.id], set_={"last_seen_at": beat.last_seen_at}
        )
        async with self._sessions.begin() as session:
            await session.execute(statement)

    async def latest(self) -> WorkerBeat | None:
        """The freshest heartbeat of any worker, if any worker ever beat."""
        query = select(WorkerRow).order_by(WorkerRow.last_seen_at.desc()).limit(1)
        async with self._sessions() as session:
            row = (await session.execute(query)).scalar_one_or_none()
        if row is None:
            return None
        return WorkerBeat(
            id=row.id,
            hostname=row.hostname,
            pid=row.pid,
            version=row.version,
            started_at=row.started_at,
            last_seen_at=row.last_seen_at,
        )

    async def forget(self, worker_id: str) -> None:
        """Delete a worker's row after a clean shutdown."""
        async with self._sessions.begin() as session:
            await session.execute(delete(WorkerRow).where(WorkerRow.id == worker_id))

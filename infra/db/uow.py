"""The unit of work: one database transaction shared by every repository."""

import contextlib
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from infra.db.audit import SqlAuditRepository
from infra.db.errors import translate, translate_errors
from infra.db.identity import SqlApiTokenRepository, SqlSessionRepository, SqlUserRepository
from infra.db.plans import SqlNotificationRepository, SqlPlanRepository, SqlQuotaRepository
from infra.db.runs import SqlRunEventRepository, SqlRunRepository, SqlTaskRepository


class SqlUnitOfWork:
    """Repositories over one session; leaving without `commit` rolls everything back."""

    users: SqlUserRepository
    sessions: SqlSessionRepository
    tokens: SqlApiTokenRepository
    audit: SqlAuditRepository
    tasks: SqlTaskRepository
    runs: SqlRunRepository
    run_events: SqlRunEventRepository
    plans: SqlPlanRepository
    quotas: SqlQuotaRepository
    notifications: SqlNotificationRepository

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def __aenter__(self) -> Self:
        self._session = self._sessions()
        self.users = SqlUserRepository(self._session)
        self.sessions = SqlSessionRepository(self._session)
        self.tokens = SqlApiTokenRepository(self._session)
        self.audit = SqlAuditRepository(self._session)
        self.tasks = SqlTaskRepository(self._session)
        self.runs = SqlRunRepository(self._session)
        self.run_events = SqlRunEventRepository(self._session)
        self.plans = SqlPlanRepository(self._session)
        self.quotas = SqlQuotaRepository(self._session)
        self.notifications = SqlNotificationRepository(self._session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The connection may already be gone; closing the session still frees it.
        with contextlib.suppress(Exception):
            await self._session.rollback()
        await self._session.close()
        translated = translate(exc) if exc is not None else None
        if translated is not None:
            raise translated from exc

    async def commit(self) -> None:
        """Make every change of this unit durable at once."""
        with translate_errors():
            await self._session.commit()

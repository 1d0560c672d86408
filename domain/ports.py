"""Ports: what the domain needs from the outside world, as protocols."""

from collections.abc import Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from domain.audit import AuditEntry, AuditFilter
from domain.identity.ports import ApiTokenRepository, SessionRepository, UserRepository
from domain.paging import Page, PageRequest
from domain.plans.ports import NotificationRepository, PlanRepository, QuotaRepository
from domain.runs.ports import RunEventRepository, RunRepository, TaskRepository


class Clock(Protocol):
    """Tells the time, so that rules about time can be tested."""

    def now(self) -> datetime:
        """The current time, timezone-aware in UTC."""
        ...


class JobQueue(Protocol):
    """Hands work to the workers."""

    async def call(self, function: str, payload: Mapping[str, Any], *, timeout: float) -> Any:
        """Run `function` on a worker and wait for its result."""
        ...


class AuditRepository(Protocol):
    """The append-only audit trail."""

    async def add(self, entry: AuditEntry) -> None: ...
    async def page(self, audit_filter: AuditFilter, request: PageRequest) -> Page[AuditEntry]: ...


class UnitOfWork(Protocol):
    """One transaction over every repository; nothing is written until `commit`."""

    @property
    def users(self) -> UserRepository: ...
    @property
    def sessions(self) -> SessionRepository: ...
    @property
    def tokens(self) -> ApiTokenRepository: ...
    @property
    def audit(self) -> AuditRepository: ...
    @property
    def tasks(self) -> TaskRepository: ...
    @property
    def runs(self) -> RunRepository: ...
    @property
    def run_events(self) -> RunEventRepository: ...
    @property
    def plans(self) -> PlanRepository: ...
    @property
    def quotas(self) -> QuotaRepository: ...
    @property
    def notifications(self) -> NotificationRepository: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    """Opens a fresh unit of work."""

    def __call__(self) -> UnitOfWork: ...

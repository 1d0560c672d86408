"""The audit trail: who tried to change what, from where, and how it ended."""

import enum
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from domain.errors import DomainError

if TYPE_CHECKING:
    from domain.identity.models import RequestMeta, Viewer
    from domain.paging import Page, PageRequest
    from domain.ports import Clock, UnitOfWork, UnitOfWorkFactory


class Outcome(enum.Enum):
    """How an attempted change ended."""

    ALLOWED = "allowed"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One attempted change; entries are only ever added."""

    id: uuid.UUID
    at: datetime
    actor_id: uuid.UUID | None
    action: str
    target_type: str | None
    target_id: str | None
    outcome: Outcome
    reason: str | None
    ip: str | None
    user_agent: str | None
    request_id: str | None


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Narrows the audit trail for a reader."""

    actor_id: uuid.UUID | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    outcome: Outcome | None = None
    since: datetime | None = None
    until: datetime | None = None


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Attempt:
    """What is being attempted, by whom and from where."""

    action: str
    target_type: str | None
    actor: "Viewer | None"
    meta: "RequestMeta"
    target_id: str | None = None


class Auditor:
    """Runs a change in a unit of work and records the attempt, allowed or refused."""

    def __init__(self, uow: "UnitOfWorkFactory", clock: "Clock") -> None:
        self._uow = uow
        self._clock = clock

    async def run(
        self,
        attempt: Attempt,
        change: "Callable[[UnitOfWork], Awaitable[T]]",
        target_of: Callable[[T], str | None] = lambda _: None,
        *,
        refusal: Callable[[T], str | None] = lambda _: None,
    ) -> T:
        """Apply `change` and its audit row in one transaction; on refusal, record that.

        `refusal` names a result that is a refusal whose effects must still be kept.
        """
        try:
            async with self._uow() as uow:
                result = await change(uow)
                target = target_of(result) or attempt.target_id
                reason = refusal(result)
                outcome = Outcome.REFUSED if reason else Outcome.ALLOWED
                await uow.audit.add(self._entry(attempt, outcome, reason, target))
                await uow.commit()
                return result
        except DomainError as exc:
            await self.refuse(attempt, exc)
            raise

    async def refuse(self, attempt: Attempt, exc: DomainError) -> None:
        """Record an attempt that was refused before it could change anything."""
        async with self._uow() as uow:
            reason = f"{type(exc).__name__}: {exc.message}"
            await uow.audit.add(self._entry(attempt, Outcome.REFUSED, reason, attempt.target_id))
            await uow.commit()

    def _entry(
        self, attempt: Attempt, outcome: Outcome, reason: str | None, target: str | None
    ) -> AuditEntry:
        return AuditEntry(
            id=uuid.uuid4(),
            at=self._clock.now(),
            actor_id=attempt.actor.user.id if attempt.actor else None,
            action=attempt.action,
            target_type=attempt.target_type,
            target_id=target,
            outcome=outcome,
            reason=reason,
            ip=attempt.meta.ip,
            user_agent=attempt.meta.user_agent,
            request_id=attempt.meta.request_id,
        )


async def read_audit_log(
    uow: "UnitOfWorkFactory",
    *,
    viewer: "Viewer",
    audit_filter: AuditFilter,
    request: "PageRequest",
) -> "Page[AuditEntry]":
    """A page of the trail, newest first; administrators only."""
    from domain.identity.rules import require_admin

    require_admin(viewer)
    async with uow() as unit:
        return await unit.audit.page(audit_filter, request)

"""The audit trail in PostgreSQL, read newest first with keyset pagination."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.audit import AuditEntry, AuditFilter, Outcome
from domain.errors import InvalidInput
from domain.paging import Page, PageRequest
from infra.db.models import AuditLogRow


def _entry(row: AuditLogRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor_id=row.actor_id,
        action=row.action,
        target_type=row.target_type,
        target_id=row.target_id,
        outcome=Outcome(row.outcome),
        reason=row.reason,
        ip=row.ip,
        user_agent=row.user_agent,
        request_id=row.request_id,
    )


def _key(entry: AuditEntry) -> str:
    return f"{entry.at.isoformat()}|{entry.id}"


def _parse_key(key: str) -> tuple[datetime, uuid.UUID]:
    try:
        at, _, entry_id = key.partition("|")
        return datetime.fromisoformat(at), uuid.UUID(entry_id)
    except ValueError:
        raise InvalidInput("the cursor is not valid", path=["after"]) from None


def _filtered(query: Select[Any], f: AuditFilter) -> Select[Any]:
    conditions = [
        column == value
        for column, value in (
            (AuditLogRow.actor_id, f.actor_id),
            (AuditLogRow.action, f.action),
            (AuditLogRow.target_type, f.target_type),
            (AuditLogRow.target_id, f.target_id),
            (AuditLogRow.outcome, f.outcome.value if f.outcome else None),
        )
        if value is not None
    ]
    if f.since is not None:
        conditions.append(AuditLogRow.at >= f.since)
    if f.until is not None:
        conditions.append(AuditLogRow.at < f.until)
    return query.where(*conditions)


class SqlAuditRepository:
    """Appends and pages audit entries."""

    def __init__(self, session: AsyncSession) -> None:
        self._db = session

    async def add(self, entry: AuditEntry) -> None:
        """Append one entry."""
        self._db.add(
            AuditLogRow(
                id=entry.id,
                at=entry.at,
                actor_id=entry.actor_id,
                action=entry.action,
                target_type=entry.target_type,
                target_id=entry.target_id,
                outcome=entry.outcome.value,
                reason=entry.reason,
                ip=entry.ip,
                user_agent=entry.user_agent,
                request_id=entry.request_id,
            )
        )
        await self._db.flush()

    async def page(self, audit_filter: AuditFilter, request: PageRequest) -> Page[AuditEntry]:
        """Entries newest first, after the cursor position, and the total that match."""
        total = await self._db.scalar(
            _filtered(select(func.count()).select_from(AuditLogRow), audit_filter)
        )
        query = _filtered(select(AuditLogRow), audit_filter)
        if request.after is not None:
            at, entry_id = _parse_key(request.after)
            query = query.where(
                or_(AuditLogRow.at < at, and_(AuditLogRow.at == at, AuditLogRow.id < entry_id))
            )
        query = query.order_by(AuditLogRow.at.desc(), AuditLogRow.id.desc()).limit(request.size + 1)
        rows = (await self._db.scalars(query)).all()
        entries = [_entry(row) for row in rows[: request.size]]
        return Page(entries, [_key(e) for e in entries], len(rows) > request.size, int(total or 0))

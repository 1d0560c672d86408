"""Identity queries."""

import strawberry

from api.connections import connection_of
from api.context import Info
from api.identity.types import AuditEntry, AuditEntryConnection, AuditLogFilter, Viewer
from api.nodes import object_uuid
from api.paging import page_request
from domain.audit import AuditFilter, read_audit_log

AUDIT_CURSOR = "AuditEntry"


def _audit_filter(f: AuditLogFilter | None) -> AuditFilter:
    if f is None:
        return AuditFilter()
    return AuditFilter(
        actor_id=object_uuid(f.actor, "User", path=["filter", "actor"]) if f.actor else None,
        action=f.action,
        target_type=f.target_type,
        target_id=f.target_id,
        outcome=f.outcome,
        since=f.since,
        until=f.until,
    )


@strawberry.type
class IdentityQuery:
    @strawberry.field(description="The signed-in caller, or null when anonymous.")
    def viewer(self, info: Info) -> Viewer | None:
        viewer = info.context.viewer
        return Viewer.from_domain(viewer) if viewer else None

    @strawberry.field(description="Every attempted change, newest first. Administrators only.")
    async def audit_log(
        self,
        info: Info,
        first: int,
        after: str | None = None,
        filter: AuditLogFilter | None = None,
    ) -> AuditEntryConnection:
        request = page_request(AUDIT_CURSOR, first=first, after=after)
        page = await read_audit_log(
            info.context.services.uow,
            viewer=info.context.require_viewer(),
            audit_filter=_audit_filter(filter),
            request=request,
        )
        return connection_of(AuditEntryConnection, AUDIT_CURSOR, page, AuditEntry.from_domain)

"""GraphQL views of identities, built from domain objects."""

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Self

import strawberry
from strawberry import relay

from api.admission import rate_key
from api.connections import Connection
from api.context import Info
from api.errors import UserError
from api.nodes import SignedInNode, load_nodes, pick_nodes
from domain.audit import AuditEntry as DomainAuditEntry
from domain.audit import Outcome
from domain.identity import models
from domain.identity.rules import may_manage
from domain.paging import PageRequest

if TYPE_CHECKING:
    from api.plans.types import Plan, Quota
    from api.runs.types import Run

strawberry.enum(models.Role, name="Role", description="What a user may do.")
strawberry.enum(models.Scope, name="Scope", description="What a credential may do.")
strawberry.enum(Outcome, name="AuditOutcome", description="How an attempted change ended.")


async def _quota_of(
    info: Info, user_id: uuid.UUID
) -> Annotated["Quota", strawberry.lazy("api.plans.types")] | None:
    # Imported here: the plan types import this module for `User`.
    from api.plans.types import Quota

    found = await info.context.load.quotas.load(user_id)
    return Quota.from_domain(found) if found else None


@strawberry.type(description="A person or automation account.")
class User(SignedInNode):
    id: relay.NodeID[str]
    display_name: str
    role: models.Role
    plan: str
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None
    domain: strawberry.Private[models.User]

    @classmethod
    def from_domain(cls, user: models.User) -> Self:
        """View of a domain user."""
        return cls(
            id=str(user.id),
            display_name=user.display_name,
            role=user.role,
            plan=user.plan,
            is_active=user.is_active,
            created_at=user.created_at,
            last_login_at=user.last_login_at,
            domain=user,
        )

    @strawberry.field(description="Visible only to the user and to administrators.")
    def email(self, info: Info) -> str | None:
        viewer = info.context.viewer
        return self.domain.email if viewer and may_manage(viewer, self.domain.id) else None

    @strawberry.field(description="The user's newest runs that you may see, newest first.")
    async def runs(
        self, info: Info, first: int
    ) -> list[Annotated["Run", strawberry.lazy("api.runs.types")]]:
        # Imported here: the runs types import this module for `Run.createdBy`.
        from api.runs.types import Run

        limit = PageRequest(first=first).size  # the same 1-100 bound as every list
        found = await info.context.load.creator_runs.load((self.domain.id, limit))
        return [Run.from_domain(run) for run in found]

    @strawberry.field(
        description="Where the user stands against their plan now. Visible only to the user "
        "and to administrators."
    )
    async def quota(
        self, info: Info
    ) -> Annotated["Quota", strawberry.lazy("api.plans.types")] | None:
        return await _quota_of(info, self.domain.id)

    @classmethod
    async def resolve_visible(
        cls, info: Info, viewer: models.Viewer, node_ids: list[str]
    ) -> list[Self | None]:
        """Any user, to any signed-in caller."""
        found = await load_nodes(info.context.load.users, node_ids)
        return [cls.from_domain(user) if user else None for user in found]


@strawberry.type(description="A signed-in device.")
class Session(SignedInNode):
    id: relay.NodeID[str]
    user_agent: str | None
    ip: str | None
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    current: bool = strawberry.field(description="Whether this request uses this session.")

    @classmethod
    def from_domain(cls, session: models.Session, viewer: models.Viewer | None) -> Self:
        """View of a domain session, marked current for the viewer's own."""
        return cls(
            id=str(session.id),
            user_agent=session.user_agent,
            ip=session.ip,
            created_at=session.created_at,
            last_seen_at=session.last_seen_at,
            expires_at=session.expires_at,
            current=viewer is not None and viewer.session_id == session.id,
        )

    @classmethod
    async def resolve_visible(
        cls, info: Info, viewer: models.Viewer, node_ids: list[str]
    ) -> list[Self | None]:
        """Only the viewer's own active sessions."""
        own = await info.context.services.identity.sessions(viewer=viewer)
        return [cls.from_domain(s, viewer) if s else None for s in pick_nodes(node_ids, own)]


@strawberry.type(
    description="A long-lived credential for scripts; its secret is never shown again."
)
class ApiToken(SignedInNode):
    id: relay.NodeID[str]
    name: str
    prefix: str = strawberry.field(description="The start of the secret, to tell tokens apart.")
    scopes: list[models.Scope]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_domain(cls, token: models.ApiToken) -> Self:
        """View of a domain API token."""
        return cls(
            id=str(token.id),
            name=token.name,
            prefix=token.prefix,
            scopes=sorted(token.scopes, key=lambda s: s.value),
            created_at=token.created_at,
            expires_at=token.expires_at,
            last_used_at=token.last_used_at,
            revoked_at=token.revoked_at,
        )

    @classmethod
    async def resolve_visible(
        cls, info: Info, viewer: models.Viewer, node_ids: list[str]
    ) -> list[Self | None]:
        """Only the viewer's own tokens."""
        own = await info.context.services.identity.api_tokens(viewer=viewer)
        return [cls.from_domain(t) if t else None for t in pick_nodes(node_ids, own)]


@strawberry.type(description="One attempted change, allowed or refused.")
class AuditEntry:
    id: strawberry.ID
    at: datetime
    action: str
    target_type: str | None
    target_id: str | None
    outcome: Outcome
    reason: str | None
    ip: str | None
    user_agent: str | None
    request_id: str | None
    actor_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_domain(cls, entry: DomainAuditEntry) -> Self:
        """View of a domain audit entry."""
        return cls(
            id=strawberry.ID(str(entry.id)),
            at=entry.at,
            action=entry.action,
            target_type=entry.target_type,
            target_id=entry.target_id,
            outcome=entry.outcome,
            reason=entry.reason,
            ip=entry.ip,
            user_agent=entry.user_agent,
            request_id=entry.request_id,
            actor_id=entry.actor_id,
        )

    @strawberry.field(description="Who attempted it; null for anonymous attempts.")
    async def actor(self, info: Info) -> User | None:
        if self.actor_id is None:
            return None
        user = await info.context.load.users.load(self.actor_id)
        return User.from_domain(user) if user else None


@strawberry.type(
    name="AuditEntryConnection", description="A page of the audit trail, newest first."
)
class AuditEntryConnection(Connection[AuditEntry]):
    pass


@strawberry.input(description="Narrows the audit trail.")
class AuditLogFilter:
    actor: strawberry.ID | None = strawberry.field(default=None, description="A User ID.")
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    outcome: Outcome | None = None
    since: datetime | None = None
    until: datetime | None = None


@strawberry.type(description="The caller's request budget, refilled continuously.")
class RateLimit:
    limit: int = strawberry.field(description="Requests per minute, and the most at once.")
    remaining: int
    reset_at: datetime = strawberry.field(description="When the budget is full again.")


@strawberry.type(description="The signed-in caller.")
class Viewer:
    user: User
    scopes: list[models.Scope]
    domain: strawberry.Private[models.Viewer]

    @classmethod
    def from_domain(cls, viewer: models.Viewer) -> Self:
        """View of the domain viewer."""
        return cls(
            user=User.from_domain(viewer.user),
            scopes=sorted(viewer.scopes, key=lambda s: s.value),
            domain=viewer,
        )

    @strawberry.field(description="What is left of the viewer's request budget.")
    async def rate_limit(self, info: Info) -> RateLimit:
        context = info.context
        budget = context.budget or await context.services.rate_limiter.peek(
            rate_key(self.domain, context.meta.ip),
            per_minute=context.services.settings.rate_limit_per_minute,
        )
        return RateLimit(limit=budget.limit, remaining=budget.remaining, reset_at=budget.reset_at)

    @strawberry.field(description="The plan the viewer is on now.")
    async def plan(
        self, info: Info
    ) -> Annotated["Plan", strawberry.lazy("api.plans.types")] | None:
        # Imported here: the plan types import this module for `User`.
        from api.plans.types import Plan

        found = await info.context.services.plans.plan_of(viewer=self.domain)
        return Plan.from_domain(found) if found else None

    @strawberry.field(description="Where the viewer stands against their plan now.")
    async def quota(
        self, info: Info
    ) -> Annotated["Quota", strawberry.lazy("api.plans.types")] | None:
        return await _quota_of(info, self.domain.user.id)

    @strawberry.field(description="The viewer's active sessions, newest first.")
    async def sessions(self, info: Info) -> list[Session]:
        found = await info.context.services.identity.sessions(viewer=self.domain)
        return [Session.from_domain(s, self.domain) for s in found]

    @strawberry.field(description="The viewer's API tokens, newest first.")
    async def api_tokens(self, info: Info) -> list[ApiToken]:
        found = await info.context.services.identity.api_tokens(viewer=self.domain)
        return [ApiToken.from_domain(t) for t in found]


@strawberry.type
class SignInPayload:
    access_token: str | None = None
    access_token_expires_at: datetime | None = None
    refresh_token: str | None = strawberry.field(
        default=None, description="Use once with refreshSession; keep it secret."
    )
    viewer: Viewer | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class SessionPayload:
    session: Session | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RevokeOtherSessionsPayload:
    revoked_count: int = 0
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CreateApiTokenPayload:
    token: ApiToken | None = None
    secret: str | None = strawberry.field(default=None, description="Shown once; store it now.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ApiTokenPayload:
    token: ApiToken | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class UserPayload:
    user: User | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class LoginInput:
    email: str
    password: str


@strawberry.input
class RefreshSessionInput:
    refresh_token: str


@strawberry.input
class CreateApiTokenInput:
    name: str
    scopes: list[models.Scope]
    expires_at: datetime | None = None


@strawberry.input
class CreateUserInput:
    email: str
    password: str
    display_name: str | None = None
    role: models.Role = models.Role.VIEWER

"""Plain models of who acts on Taskyard."""

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime


class Role(enum.Enum):
    """What a user may do: admins everything, operators run work, viewers read."""

    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"


class Scope(enum.Enum):
    """What an API token may do, at most what its owner's role allows."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


def new_id() -> uuid.UUID:
    """A fresh random identifier."""
    return uuid.uuid4()


@dataclass(slots=True)
class User:
    """A person or automation account that signs in."""

    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    plan: str
    password_hash: str
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None = None


@dataclass(slots=True)
class Session:
    """One signed-in device: a family of refresh tokens, each used once."""

    id: uuid.UUID
    user_id: uuid.UUID
    user_agent: str | None
    ip: str | None
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


@dataclass(slots=True)
class RefreshToken:
    """One refresh token of a session, kept as a hash; a second use means it was stolen."""

    token_hash: str
    session_id: uuid.UUID
    created_at: datetime
    used_at: datetime | None = None


@dataclass(slots=True)
class ApiToken:
    """A long-lived secret for scripts and automation, stored only as a hash."""

    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    prefix: str
    secret_hash: str
    scopes: frozenset[Scope]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Viewer:
    """The authenticated caller of one request."""

    user: User
    scopes: frozenset[Scope]
    session_id: uuid.UUID | None = None
    token_id: uuid.UUID | None = None

    @property
    def is_admin(self) -> bool:
        """Whether the caller acts with full rights."""
        return self.user.role is Role.ADMIN and Scope.ADMIN in self.scopes


@dataclass(frozen=True, slots=True)
class RequestMeta:
    """Where a request came from, for sessions and the audit trail."""

    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None

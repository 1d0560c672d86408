"""Rules about identities that need no I/O."""

import re

from domain.errors import InvalidInput, PermissionDenied
from domain.identity.models import Role, Scope, Viewer

MAX_EMAIL = 254
MIN_PASSWORD = 12
MAX_PASSWORD = 256
MAX_DISPLAY_NAME = 100
# Deliberately permissive: one @, a dot in the domain, no spaces. Delivery proves the rest.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.ADMIN: frozenset({Scope.READ, Scope.WRITE, Scope.ADMIN}),
    Role.OPERATOR: frozenset({Scope.READ, Scope.WRITE}),
    Role.VIEWER: frozenset({Scope.READ}),
}


def normalize_email(email: str, *, path: str = "email") -> str:
    """The canonical, case-folded form of an email address, or `InvalidInput`."""
    cleaned = email.strip().lower()
    if len(cleaned) > MAX_EMAIL or not _EMAIL.match(cleaned):
        raise InvalidInput("enter a valid email address", path=[path])
    return cleaned


def check_password(password: str, *, path: str = "password") -> None:
    """Refuse passwords that are too short, too long or made of one repeated character."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD} characters", path=[path])
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"password must be at most {MAX_PASSWORD} characters", path=[path])
    if len(set(password)) < 4:
        raise InvalidInput("password is too easy to guess", path=[path])


def check_display_name(name: str, *, path: str = "displayName") -> str:
    """A trimmed display name of sensible length."""
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > MAX_DISPLAY_NAME:
        raise InvalidInput(f"display name must be 1 to {MAX_DISPLAY_NAME} characters", path=[path])
    return cleaned


def effective_scopes(role: Role, requested: frozenset[Scope] | None = None) -> frozenset[Scope]:
    """What a credential may do: the requested scopes, capped by the owner's role."""
    allowed = ROLE_SCOPES[role]
    return allowed if requested is None else requested & allowed


def require_scope(viewer: Viewer, scope: Scope) -> None:
    """Refuse a caller whose role or token lacks `scope`."""
    if scope not in viewer.scopes:
        raise PermissionDenied(f"this needs the {scope.value} permission")


def require_admin(viewer: Viewer) -> None:
    """Refuse anyone but an administrator."""
    if not viewer.is_admin:
        raise PermissionDenied("only administrators may do this")


def may_manage(viewer: Viewer, owner_id: object) -> bool:
    """Whether the caller may act on an object owned by `owner_id`."""
    return viewer.is_admin or viewer.user.id == owner_id

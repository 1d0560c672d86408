"""Repositories for users, sessions and API tokens."""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.identity.models import ApiToken, RefreshToken, Role, Scope, Session, User
from infra.db.models import ApiTokenRow, RefreshTokenRow, SessionRow, UserRow


def _user(row: UserRow) -> User:
    return User(
        id=row.id,
        email=row.email,
        display_name=row.display_name,
        role=Role(row.role),
        plan=row.plan,
        password_hash=row.password_hash,
        is_active=row.is_active,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
    )


def _user_values(user: User) -> dict[str, object]:
    return {
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "role": user.role.value,
        "plan": user.plan,
        "password_hash": user.password_hash,
        "is_active": user.is_active,
        "created_at": user.created_at,
        "last_login_at": user.last_login_at,
    }


class SqlUserRepository:
    """Users in the `users` table."""

    def __init__(self, session: AsyncSession) -> None:
        self._db = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        """One user by ID."""
        row = await self._db.get(UserRow, user_id)
        return _user(row) if row else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[User | None]:
        """Users in the order of `ids`, in one query."""
        rows = (await self._db.scalars(select(UserRow).where(UserRow.id.in_(ids)))).all()
        by_id = {row.id: _user(row) for row in rows}
        return [by_id.get(i) for i in ids]

    async def get_by_email(self, email: str) -> User | None:
        """One user by case-folded email."""
        row = await self._db.scalar(select(UserRow).where(UserRow.email == email.lower()))
        return _user(row) if row else None

    async def add(self, user: User) -> None:
        """Insert a new user."""
        self._db.add(UserRow(**_user_values(user)))
        await self._db.flush()

    async def save(self, user: User) -> None:
        """Write a changed user back."""
        values = _user_values(user)
        await self._db.execute(update(UserRow).where(UserRow.id == user.id).values(values))

    async def count(self) -> int:
        """How many users exist."""
        return int(await self._db.scalar(select(func.count()).select_from(UserRow)) or 0)


def _session(row: SessionRow) -> Session:
    return Session(
        id=row.id,
        user_id=row.user_id,
        user_agent=row.user_agent,
        ip=row.ip,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


class SqlSessionRepository:
    """Sessions and their refresh tokens."""

    def __init__(self, session: AsyncSession) -> None:
        self._db = session

    async def get(self, session_id: uuid.UUID) -> Session | None:
        """One session by ID."""
        row = await self._db.get(SessionRow, session_id)
        return _session(row) if row else None

    async def add(self, session: Session) -> None:
        """Insert a new session."""
        self._db.add(SessionRow(**_session_values(session)))
        await self._db.flush()

    async def save(self, session: Session) -> None:
        """Write a changed session back."""
        await self._db.execute(
            update(SessionRow).where(SessionRow.id == session.id).values(_session_values(session))
        )

    async def active_for_user(self, user_id: uuid.UUID, now: datetime) -> list[Session]:
        """Unrevoked, unexpired sessions of a user, newest first."""
        query = (
            select(SessionRow)
            .where(
                SessionRow.user_id == user_id,
                SessionRow.revoked_at.is_(None),
                SessionRow.expires_at > now,
            )
            .order_by(SessionRow.created_at.desc(), SessionRow.id.desc())
        )
        return [_session(row) for row in (await self._db.scalars(query)).all()]

    async def add_refresh_token(self, token: RefreshToken) -> None:
        """Insert a refresh token's hash."""
        self._db.add(
            RefreshTokenRow(
                token_hash=token.token_hash,
                session_id=token.session_id,
                created_at=token.created_at,
                used_at=token.used_at,
            )
        )
        await self._db.flush()

    async def use_refresh_token(self, token_hash: str, now: datetime) -> RefreshToken | None:
        """Mark a token used, atomically, and return it as it was before."""
        # Row lock first: two concurrent refreshes with one token must not both succeed.
        row = await self._db.scalar(
            select(RefreshTokenRow)
            .where(RefreshTokenRow.token_hash == token_hash)
            .with_for_update()
        )
        if row is None:
            return None
        before = RefreshToken(row.token_hash, row.session_id, row.created_at, row.used_at)
        if row.used_at is None:
            row.used_at = now
            await self._db.flush()
        return before


def _session_values(session: Session) -> dict[str, object]:
    return {
        "id": session.id,
        "user_id": session.user_id,
        "user_agent": session.user_agent,
        "ip": session.ip,
        "created_at": session.created_at,
        "last_seen_at": session.last_seen_at,
        "expires_at": session.expires_at,
        "revoked_at": session.revoked_at,
    }


def _token(row: ApiTokenRow) -> ApiToken:
    return ApiToken(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        prefix=row.prefix,
        secret_hash=row.secret_hash,
        scopes=frozenset(Scope(s) for s in row.scopes),
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _token_values(token: ApiToken) -> dict[str, object]:
    return {
        "id": token.id,
        "user_id": token.user_id,
        "name": token.name,
        "prefix": token.prefix,
        "secret_hash": token.secret_hash,
        "scopes": sorted(s.value for s in token.scopes),
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


class SqlApiTokenRepository:
    """API tokens in the `api_tokens` table."""

    def __init__(self, session: AsyncSession) -> None:
        self._db = session

    async def get(self, token_id: uuid.UUID) -> ApiToken | None:
        """One token by ID."""
        row = await self._db.get(ApiTokenRow, token_id)
        return _token(row) if row else None

    async def get_by_hash(self, secret_hash: str) -> ApiToken | None:
        """The token whose secret hashes to `secret_hash`."""
        row = await self._db.scalar(
            select(ApiTokenRow).where(ApiTokenRow.secret_hash == secret_hash)
        )
        return _token(row) if row else None

    async def add(self, token: ApiToken) -> None:
        """Insert a new token."""
        self._db.add(ApiTokenRow(**_token_values(token)))
        await self._db.flush()

    async def save(self, token: ApiToken) -> None:
        """Write a changed token back."""
        await self._db.execute(
            update(ApiTokenRow).where(ApiTokenRow.id == token.id).values(_token_values(token))
        )

    async def for_user(self, user_id: uuid.UUID) -> list[ApiToken]:
        """A user's tokens, newest first."""
        query = (
            select(ApiTokenRow)
            .where(ApiTokenRow.user_id == user_id)
            .order_by(ApiTokenRow.created_at.desc())
        )
        return [_token(row) for row in (await self._db.scalars(query)).all()]

"""Identity services: sign-in, sessions, API tokens and users, every change audited."""

import asyncio
import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.audit import Attempt, Auditor
from domain.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from domain.identity import rules
from domain.identity.models import (
    ApiToken,
    RefreshToken,
    RequestMeta,
    Role,
    Scope,
    Session,
    User,
    Viewer,
    new_id,
)
from domain.identity.ports import AccessTokenCodec, PasswordHasher, RevocationList
from domain.identity.secrets import (
    API_TOKEN_PREFIX,
    REFRESH_TOKEN_PREFIX,
    VISIBLE_PREFIX_LENGTH,
    hash_secret,
    new_secret,
)
from domain.limits import LoginThrottle
from domain.ports import Clock, UnitOfWork, UnitOfWorkFactory


class IdentityAction(enum.StrEnum):
    """Names of identity changes in the audit trail."""

    CREATE_USER = "user.create"
    LOGIN = "session.login"
    REFRESH = "session.refresh"
    LOGOUT = "session.logout"
    REVOKE_SESSION = "session.revoke"
    REVOKE_OTHER_SESSIONS = "session.revoke_others"
    CREATE_API_TOKEN = "api_token.create"  # noqa: S105 - an action name, not a secret
    REVOKE_API_TOKEN = "api_token.revoke"  # noqa: S105 - an action name, not a secret


BAD_CREDENTIALS = "wrong email or password"
REUSED = "the refresh token was already used; the session is revoked"
MAX_TOKEN_NAME = 100
# A token's last use is written at most this often, to keep reads cheap.
LAST_USED_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class IdentityPolicy:
    """Lifetimes and caps that an operator may tune."""

    access_ttl: timedelta = timedelta(minutes=15)
    refresh_ttl: timedelta = timedelta(days=30)
    max_sessions: int = 10


@dataclass(frozen=True, slots=True)
class SignedIn:
    """What a sign-in or refresh hands back to the client, once."""

    user: User
    session: Session
    access_token: str
    access_expires_at: datetime
    refresh_token: str


@dataclass(frozen=True, slots=True)
class NewApiToken:
    """A freshly made API token and its secret, which is never shown again."""

    token: ApiToken
    secret: str


class IdentityService:
    """Who may act: users, their sessions and tokens."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        codec: AccessTokenCodec,
        revocations: RevocationList,
        throttle: LoginThrottle,
        clock: Clock,
        policy: IdentityPolicy,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._codec = codec
        self._revocations = revocations
        self._throttle = throttle
        self._clock = clock
        self._policy = policy
        self._auditor = Auditor(uow, clock)
        # Verified against when the email is unknown, so both failures take as long.
        self._dummy_hash = hasher.hash(new_secret(""))

    # -- users -----------------------------------------------------------------------------

    async def create_user(
        self,
        *,
        actor: Viewer | None,
        meta: RequestMeta,
        email: str,
        password: str,
        display_name: str | None = None,
        role: Role = Role.VIEWER,
        plan: str = "free",
    ) -> User:
        """Add a user; `actor` None means the operator's command line."""

        async def change(uow: UnitOfWork) -> User:
            if actor is not None:
                rules.require_admin(actor)
            clean_email = rules.normalize_email(email)
            rules.check_password(password)
            name = rules.check_display_name(display_name or clean_email.split("@")[0])
            if await uow.users.get_by_email(clean_email) is not None:
                raise InvalidInput("a user with this email already exists", path=["email"])
            user = User(
                id=new_id(),
                email=clean_email,
                display_name=name,
                role=role,
                plan=plan,
                password_hash=await asyncio.to_thread(self._hasher.hash, password),
                is_active=True,
                created_at=self._clock.now(),
            )
            await uow.users.add(user)
            return user

        attempt = Attempt(IdentityAction.CREATE_USER, "User", actor, meta)
        return await self._auditor.run(attempt, change, lambda user: str(user.id))

    async def ensure_first_admin(self, *, email: str, password: str) -> User | None:
        """Create an administrator when there are no users at all; None if there were."""
        async with self._uow() as uow:
            if await uow.users.count() > 0:
                return None
        return await self.create_user(
            actor=None, meta=RequestMeta(), email=email, password=password, role=Role.ADMIN
        )

    async def get_users(self, ids: list[uuid.UUID]) -> list[User | None]:
        """Users in the order of `ids`, None where one does not exist."""
        async with self._uow() as uow:
            return await uow.users.get_many(ids)

    # -- sessions --------------------------------------------------------------------------

    async def login(self, *, email: str, password: str, meta: RequestMeta) -> SignedIn:
        """Check a password and open a session; unknown email and wrong password look alike.

        Repeated failures for one email and address must wait, longer each time.
        """
        await self._throttle.check(email, meta.ip)
        try:
            signed = await self._open_session(email=email, password=password, meta=meta)
        except Unauthenticated:
            await self._throttle.failed(email, meta.ip)
            raise
        await self._throttle.succeeded(email, meta.ip)
        return signed

    async def _open_session(self, *, email: str, password: str, meta: RequestMeta) -> SignedIn:
        refresh = new_secret(REFRESH_TOKEN_PREFIX)

        async def change(uow: UnitOfWork) -> SignedIn:
            user = await uow.users.get_by_email(email.strip().lower())
            # argon2 is deliberately slow; off the event loop, other requests keep flowing.
            stored = user.password_hash if user else self._dummy_hash
            valid = await asyncio.to_thread(self._hasher.verify, stored, password)
            if user is None or not valid or not user.is_active:
                raise Unauthenticated(BAD_CREDENTIALS)
            now = self._clock.now()
            session = Session(
                id=new_id(),
                user_id=user.id,
                user_agent=(meta.user_agent or "")[:512] or None,
                ip=meta.ip,
                created_at=now,
                last_seen_at=now,
                expires_at=now + self._policy.refresh_ttl,
            )
            await uow.sessions.add(session)
            await uow.sessions.add_refresh_token(
                RefreshToken(hash_secret(refresh), session.id, now)
            )
            await self._evict_oldest(uow, user.id, now)
            user.last_login_at = now
            await uow.users.save(user)
            return self._signed_in(user, session, refresh, now)

        attempt = Attempt(IdentityAction.LOGIN, "User", None, meta)
        return await self._auditor.run(attempt, change, lambda s: str(s.user.id))

    async def refresh(self, *, refresh_token: str, meta: RequestMeta) -> SignedIn:
        """Swap a refresh token for a new pair; a reused one revokes its whole session."""
        token_hash = hash_secret(refresh_token)
        fresh = new_secret(REFRESH_TOKEN_PREFIX)

        async def change(uow: UnitOfWork) -> SignedIn | Session:
            now = self._clock.now()
            used = await uow.sessions.use_refresh_token(token_hash, now)
            session = await uow.sessions.get(used.session_id) if used else None
            if used is None or session is None:
                raise Unauthenticated("the refresh token is not valid")
            if used.used_at is not None:
                # Kept, not rolled back: the refusal's point is to end the stolen session.
                await self._revoke(uow, session, now)
                return session
            user = await uow.users.get(session.user_id)
            if session.revoked_at or session.expires_at <= now or not user or not user.is_active:
                raise Unauthenticated("the session has ended; sign in again")
            session.last_seen_at, session.ip = now, meta.ip or session.ip
            await uow.sessions.save(session)
            await uow.sessions.add_refresh_token(RefreshToken(hash_secret(fresh), session.id, now))
            return self._signed_in(user, session, fresh, now)

        attempt = Attempt(IdentityAction.REFRESH, "Session", None, meta)
        result = await self._auditor.run(
            attempt,
            change,
            _session_id_of,
            refusal=lambda r: REUSED if isinstance(r, Session) else None,
        )
        if isinstance(result, Session):
            raise Unauthenticated(REUSED)
        return result

    async def logout(self, *, viewer: Viewer, meta: RequestMeta) -> Session:
        """End the caller's own session at once, access token included."""
        if viewer.session_id is None:
            raise PermissionDenied("API tokens have no session; revoke the token instead")
        return await self.revoke_session(
            viewer=viewer, meta=meta, session_id=viewer.session_id, action=IdentityAction.LOGOUT
        )

    async def revoke_session(
        self,
        *,
        viewer: Viewer,
        meta: RequestMeta,
        session_id: uuid.UUID,
        action: str = IdentityAction.REVOKE_SESSION,
    ) -> Session:
        """End one of the caller's sessions (any session, for an administrator)."""

        async def change(uow: UnitOfWork) -> Session:
            session = await uow.sessions.get(session_id)
            if session is None or not rules.may_manage(viewer, session.user_id):
                raise NotFound("no such session", path=["id"])
            if session.revoked_at is None:
                await self._revoke(uow, session, self._clock.now())
            return session

        attempt = Attempt(action, "Session", viewer, meta, str(session_id))
        return await self._auditor.run(attempt, change)

    async def revoke_other_sessions(self, *, viewer: Viewer, meta: RequestMeta) -> int:
        """End every session of the caller but the current one; the count ended."""

        async def change(uow: UnitOfWork) -> int:
            now = self._clock.now()
            others = [
                s
                for s in await uow.sessions.active_for_user(viewer.user.id, now)
                if s.id != viewer.session_id
            ]
            for session in others:
                await self._revoke(uow, session, now)
            return len(others)

        attempt = Attempt(
            IdentityAction.REVOKE_OTHER_SESSIONS, "User", viewer, meta, str(viewer.user.id)
        )
        return await self._auditor.run(attempt, change)

    async def sessions(self, *, viewer: Viewer) -> list[Session]:
        """The caller's active sessions, newest first."""
        async with self._uow() as uow:
            return await uow.sessions.active_for_user(viewer.user.id, self._clock.now())

    # -- API tokens ------------------------------------------------------------------------

    async def create_api_token(
        self,
        *,
        viewer: Viewer,
        meta: RequestMeta,
        name: str,
        scopes: frozenset[Scope],
        expires_at: datetime | None,
    ) -> NewApiToken:
        """Make a token for the caller; its scopes may not exceed the caller's role."""

        async def change(uow: UnitOfWork) -> NewApiToken:
            self._require_session(viewer)
            return await self._make_token(uow, viewer.user, name, scopes, expires_at)

        attempt = Attempt(IdentityAction.CREATE_API_TOKEN, "ApiToken", viewer, meta)
        return await self._auditor.run(attempt, change, lambda t: str(t.token.id))

    async def issue_api_token(
        self, *, email: str, name: str, scopes: frozenset[Scope], expires_at: datetime | None
    ) -> NewApiToken:
        """Make a token for a user from the operator's command line."""

        async def change(uow: UnitOfWork) -> NewApiToken:
            user = await uow.users.get_by_email(rules.normalize_email(email))
            if user is None:
                raise NotFound("no user has this email", path=["email"])
            return await self._make_token(uow, user, name, scopes, expires_at)

        attempt = Attempt(IdentityAction.CREATE_API_TOKEN, "ApiToken", None, RequestMeta())
        return await self._auditor.run(attempt, change, lambda t: str(t.token.id))

    async def _make_token(
        self,
        uow: UnitOfWork,
        owner: User,
        name: str,
        scopes: frozenset[Scope],
        expires_at: datetime | None,
    ) -> NewApiToken:
        clean_name = " ".join(name.split())
        if not clean_name or len(clean_name) > MAX_TOKEN_NAME:
            raise InvalidInput(f"name must be 1 to {MAX_TOKEN_NAME} characters", path=["name"])
        if not scopes:
            raise InvalidInput("choose at least one scope", path=["scopes"])
        if not scopes <= rules.effective_scopes(owner.role):
            raise PermissionDenied("the owner's role does not allow these scopes", path=["scopes"])
        now = self._clock.now()
        if expires_at is not None and expires_at <= now:
            raise InvalidInput("the expiry must be in the future", path=["expiresAt"])
        secret = new_secret(API_TOKEN_PREFIX)
        token = ApiToken(
            id=new_id(),
            user_id=owner.id,
            name=clean_name,
            prefix=secret[:VISIBLE_PREFIX_LENGTH],
            secret_hash=hash_secret(secret),
            scopes=scopes,
            created_at=now,
            expires_at=expires_at,
        )
        await uow.tokens.add(token)
        return NewApiToken(token, secret)

    async def revoke_api_token(
        self, *, viewer: Viewer, meta: RequestMeta, token_id: uuid.UUID
    ) -> ApiToken:
        """Revoke one of the caller's tokens (any token, for an administrator)."""

        async def change(uow: UnitOfWork) -> ApiToken:
            token = await uow.tokens.get(token_id)
            if token is None or not rules.may_manage(viewer, token.user_id):
                raise NotFound("no such API token", path=["id"])
            if token.revoked_at is None:
                token.revoked_at = self._clock.now()
                await uow.tokens.save(token)
            return token

        attempt = Attempt(IdentityAction.REVOKE_API_TOKEN, "ApiToken", viewer, meta, str(token_id))
        return await self._auditor.run(attempt, change)

    async def api_tokens(self, *, viewer: Viewer) -> list[ApiToken]:
        """The caller's tokens, newest first."""
        async with self._uow() as uow:
            return await uow.tokens.for_user(viewer.user.id)

    # -- authentication --------------------------------------------------------------------

    async def authenticate(self, bearer: str) -> Viewer:
        """The viewer behind an access token or API token; `Unauthenticated` otherwise."""
        if bearer.startswith(API_TOKEN_PREFIX):
            return await self._authenticate_api_token(bearer)
        now = self._clock.now()
        user_id, session_id = self._codec.decode(bearer, now=now)
        if await self._revocations.is_revoked(session_id):
            raise Unauthenticated("the session was revoked; sign in again")
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
        if user is None or not user.is_active:
            raise Unauthenticated("the account is not active")
        return Viewer(user=user, scopes=rules.effective_scopes(user.role), session_id=session_id)

    async def _authenticate_api_token(self, secret: str) -> Viewer:
        now = self._clock.now()
        async with self._uow() as uow:
            token = await uow.tokens.get_by_hash(hash_secret(secret))
            user = await uow.users.get(token.user_id) if token else None
            if token is None or user is None or not user.is_active:
                raise Unauthenticated("the API token is not valid")
            if token.revoked_at is not None or (token.expires_at and token.expires_at <= now):
                raise Unauthenticated("the API token was revoked or has expired")
            if token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY:
                token.last_used_at = now
                await uow.tokens.save(token)
                await uow.commit()
        scopes = rules.effective_scopes(user.role, token.scopes)
        return Viewer(user=user, scopes=scopes, token_id=token.id)

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _require_session(viewer: Viewer) -> None:
        if viewer.session_id is None:
            raise PermissionDenied("sign in with a password to manage API tokens")

    async def _revoke(self, uow: UnitOfWork, session: Session, now: datetime) -> None:
        session.revoked_at = now
        await uow.sessions.save(session)
        ttl = int(self._policy.access_ttl.total_seconds()) + 60
        await self._revocations.revoke(session.id, ttl_seconds=ttl)

    async def _evict_oldest(self, uow: UnitOfWork, user_id: uuid.UUID, now: datetime) -> None:
        active = await uow.sessions.active_for_user(user_id, now)
        for session in active[self._policy.max_sessions :]:
            await self._revoke(uow, session, now)

    def _signed_in(self, user: User, session: Session, refresh: str, now: datetime) -> SignedIn:
        return SignedIn(
            user=user,
            session=session,
            access_token=self._codec.issue(user_id=user.id, session_id=session.id, now=now),
            access_expires_at=now + self._policy.access_ttl,
            refresh_token=refresh,
        )


def _session_id_of(result: SignedIn | Session) -> str:
    return str(result.id if isinstance(result, Session) else result.session.id)

"""Adapters for credentials: argon2id password hashes, signed access tokens, revocations."""

import uuid
from datetime import datetime, timedelta

import argon2
import jwt
from redis.asyncio import Redis
from redis.exceptions import RedisError

from domain.errors import Unauthenticated, Unavailable

ISSUER = "taskyard"
ALGORITHM = "HS256"


class Argon2PasswordHasher:
    """argon2id with the library's recommended parameters."""

    def __init__(self) -> None:
        self._hasher = argon2.PasswordHasher(type=argon2.Type.ID)

    def hash(self, password: str) -> str:
        """A salted argon2id hash."""
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        """Whether `password` matches; a malformed hash is simply no match."""
        try:
            return self._hasher.verify(password_hash, password)
        except argon2.exceptions.VerificationError:
            return False
        except argon2.exceptions.InvalidHashError:
            return False


class JwtAccessTokenCodec:
    """HS256-signed JWTs naming the user and the session."""

    def __init__(self, secret: str, *, ttl: timedelta) -> None:
        self._secret = secret
        self._ttl = ttl

    def issue(self, *, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime) -> str:
        """A token valid for the configured lifetime."""
        claims = {
            "iss": ISSUER,
            "sub": str(user_id),
            "sid": str(session_id),
            "jti": uuid.uuid4().hex,
            "iat": int(now.timestamp()),
            "exp": int((now + self._ttl).timestamp()),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def decode(self, token: str, *, now: datetime) -> tuple[uuid.UUID, uuid.UUID]:
        """The user and session of a valid token; any flaw is `Unauthenticated`."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "sid"], "verify_exp": False},
            )
            if int(claims["exp"]) <= now.timestamp():
                raise Unauthenticated("the access token has expired; refresh it")
            return uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"])
        except (jwt.PyJWTError, ValueError, KeyError, TypeError):
            raise Unauthenticated("the access token is not valid") from None


class RedisRevocationList:
    """Revoked session IDs in Redis, each kept until its last access token has expired."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    @staticmethod
    def _key(session_id: uuid.UUID) -> str:
        return f"taskyard:revoked-session:{session_id}"

    async def revoke(self, session_id: uuid.UUID, *, ttl_seconds: int) -> None:
        """Deny the session's access tokens for `ttl_seconds`."""
        try:
            await self._redis.set(self._key(session_id), b"1", ex=ttl_seconds)
        except RedisError as exc:
            raise Unavailable("cannot record the revocation; try again") from exc

    async def is_revoked(self, session_id: uuid.UUID) -> bool:
        """Whether the session was revoked; fails closed when Redis cannot answer."""
        try:
            return bool(await self._redis.exists(self._key(session_id)))
        except RedisError as exc:
            raise Unavailable("cannot check the credentials right now; try again") from exc

"""Rate limits in Redis: token buckets in one atomic script, and sign-in back-off."""

import asyncio
import hashlib
import logging
import math
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import RedisError

from domain.errors import RateLimited, Unavailable
from domain.limits import Budget, login_backoff

logger = logging.getLogger("taskyard.ratelimit")

# Refill, spend and store in one step, on Redis's own clock, so API processes agree.
BUCKET_SCRIPT = """
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * per_ms)
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
if cost > 0 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
  redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / per_ms) + 1000)
end
return {allowed, tostring(tokens), now}
"""


class RedisRateLimiter:
    """Token buckets whose depth is the per-minute limit; they fail open if Redis is down."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._script = redis.register_script(BUCKET_SCRIPT)

    async def take(self, key: str, *, per_minute: int, cost: int = 1) -> Budget:
        """Spend from the bucket; a refusal says when one request will fit again."""
        per_ms = per_minute / 60_000
        try:
            allowed, tokens_text, now_ms = await self._script(
                keys=[f"taskyard:rate:{key}"], args=[per_minute, per_ms, cost]
            )
        except RedisError:
            # Availability wins: an outage of Redis must not take the whole API down with it.
            logger.warning("rate limiter unavailable; letting the request through")
            return Budget(per_minute, per_minute, datetime.now(UTC), True, 0.0)
        tokens = float(tokens_text)
        now = datetime.fromtimestamp(int(now_ms) / 1000, UTC)
        reset_at = now + timedelta(milliseconds=(per_minute - tokens) / per_ms)
        retry_after = 0.0 if allowed else (cost - tokens) / per_ms / 1000
        return Budget(per_minute, math.floor(tokens), reset_at, bool(allowed), retry_after)

    async def peek(self, key: str, *, per_minute: int) -> Budget:
        """The bucket as it stands."""
        return await self.take(key, per_minute=per_minute, cost=0)


class RedisLoginThrottle:
    """Counts failed sign-ins per email and address; fails closed if Redis is down."""

    WINDOW_SECONDS = 3600

    def __init__(self, redis: Redis, *, free_failures: int) -> None:
        self._redis = redis
        self._free = free_failures

    @staticmethod
    def _key(email: str, ip: str | None, kind: str) -> str:
        digest = hashlib.sha256(f"{email.strip().lower()}|{ip or '-'}".encode()).hexdigest()
        return f"taskyard:login:{kind}:{digest[:32]}"

    async def check(self, email: str, ip: str | None) -> None:
        """Refuse while the back-off of earlier failures lasts."""
        try:
            wait_ms = await self._redis.pttl(self._key(email, ip, "wait"))
        except RedisError as exc:
            raise Unavailable("cannot check sign-in attempts right now; try again") from exc
        if wait_ms > 0:
            raise RateLimited(
                "too many failed sign-ins; wait and try again", retry_after=round(wait_ms / 1000, 3)
            )

    async def failed(self, email: str, ip: str | None) -> None:
        """Count the failure and start the next wait."""
        count_key = self._key(email, ip, "failures")
        try:
            failures = int(await self._redis.incr(count_key))
            await self._redis.expire(count_key, self.WINDOW_SECONDS)
            wait = login_backoff(failures, free_failures=self._free)
            if wait:
                await self._redis.set(self._key(email, ip, "wait"), b"1", px=int(wait * 1000))
        except RedisError:
            logger.warning("could not record a failed sign-in", exc_info=True)

    async def succeeded(self, email: str, ip: str | None) -> None:
        """Clear the failures."""
        try:
            await self._redis.delete(self._key(email, ip, "failures"), self._key(email, ip, "wait"))
        except RedisError:
            logger.warning("could not clear failed sign-ins", exc_info=True)


@dataclass(slots=True)
class _Lease:
    tokens: int
    expires: float
    budget: Budget


@dataclass(slots=True)
class _Renewal:
    """A lease being drawn from Redis, which other callers of its key wait for."""

    cost: int
    done: asyncio.Event = field(default_factory=asyncio.Event)
    refused: Budget | None = None


class LeasedRateLimiter:
    """Spends from a short local lease of each bucket, going to Redis only when it runs out.

    A lease is a tenth of a second's refill, held for at most a second: a busy caller costs
    one Redis round trip per lease instead of one per request, and a lease left unspent
    wastes at most a tenth of the refill. Unspent tokens count as spent everywhere else, so
    the limit is never exceeded; limits under 600 a minute get leases of one token and stay
    exact. Each key renews one lease at a time: concurrent callers that each drew their own
    would strand all but the last, throttling a busy caller far below its limit.
    """

    LEASE_DIVISOR = 600
    LEASE_SECONDS = 1.0
    MAX_LEASES = 10_000

    def __init__(self, inner: RedisRateLimiter) -> None:
        self._inner = inner
        self._leases: dict[str, _Lease] = {}
        self._renewals: dict[str, _Renewal] = {}

    async def take(self, key: str, *, per_minute: int, cost: int = 1) -> Budget:
        """Spend `cost` locally when the lease allows, else lease again from Redis."""
        while (spent := self._spend(key, cost)) is None:
            renewal = self._renewals.get(key)
            if renewal is None:
                return await self._renew(key, per_minute=per_minute, cost=cost)
            await renewal.done.wait()
            # The bucket could not spare the renewer's cost, so it cannot spare ours either.
            if renewal.refused is not None and cost >= renewal.cost:
                return renewal.refused
        return spent

    async def peek(self, key: str, *, per_minute: int) -> Budget:
        """The bucket in Redis, plus what this process holds unspent."""
        budget = await self._inner.peek(key, per_minute=per_minute)
        lease = self._leases.get(key)
        held = lease.tokens if lease and lease.expires > time.monotonic() else 0
        return replace(budget, remaining=budget.remaining + held)

    def _spend(self, key: str, cost: int) -> Budget | None:
        # Never awaits, so the common case costs no task switch and no Redis round trip.
        lease = self._leases.get(key)
        if lease is None or lease.expires <= time.monotonic() or lease.tokens < cost:
            return None
        lease.tokens -= cost
        return replace(lease.budget, remaining=lease.budget.remaining + lease.tokens)

    async def _renew(self, key: str, *, per_minute: int, cost: int) -> Budget:
        renewal = self._renewals[key] = _Renewal(cost)
        try:
            budget = await self._lease(key, per_minute=per_minute, cost=cost)
            renewal.refused = None if budget.allowed else budget
            return budget
        finally:
            del self._renewals[key]
            renewal.done.set()

    async def _lease(self, key: str, *, per_minute: int, cost: int) -> Budget:
        now = time.monotonic()
        size = max(cost, per_minute // self.LEASE_DIVISOR)
        budget = await self._inner.take(key, per_minute=per_minute, cost=size)
        if not budget.allowed and size > cost:
            size = cost
            budget = await self._inner.take(key, per_minute=per_minute, cost=cost)
        if budget.allowed:
            self._remember(key, _Lease(size - cost, now + self.LEASE_SECONDS, budget), now)
            return replace(budget, remaining=budget.remaining + size - cost)
        return budget

    def _remember(self, key: str, lease: _Lease, now: float) -> None:
        if len(self._leases) >= self.MAX_LEASES:
            self._leases = {k: v for k, v in self._leases.items() if v.expires > now}
        self._leases[key] = lease

"""Leased rate limits against real Redis: concurrent callers of one key share one lease."""

import asyncio

import pytest
from redis.asyncio import Redis

from domain.limits import Budget
from infra.bootstrap import Services
from infra.ratelimit import LeasedRateLimiter, RedisRateLimiter

# A lease is 1/600 of the per-minute limit: 100 tokens at this limit.
PER_MINUTE = 60_000
LEASE = PER_MINUTE // LeasedRateLimiter.LEASE_DIVISOR


class CountingLimiter(RedisRateLimiter):
    """The real Redis buckets, counting the tokens granted from them."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis)
        self.granted = 0

    async def take(self, key: str, *, per_minute: int, cost: int = 1) -> Budget:
        """Spend from the Redis bucket and count what it granted."""
        budget = await super().take(key, per_minute=per_minute, cost=cost)
        self.granted += cost if budget.allowed else 0
        return budget


async def _wave(limiter: LeasedRateLimiter, size: int, *, per_minute: int) -> list[Budget]:
    return list(
        await asyncio.gather(
            *(limiter.take("test:lease", per_minute=per_minute) for _ in range(size))
        )
    )


async def test_concurrent_takes_on_a_fresh_key_draw_one_lease(services: Services) -> None:
    redis_buckets = CountingLimiter(services.redis)
    budgets = await _wave(LeasedRateLimiter(redis_buckets), 16, per_minute=PER_MINUTE)
    assert all(b.allowed for b in budgets)
    assert redis_buckets.granted <= LEASE + 16
    # The callers shared one lease, so each saw one fewer token left than the one before.
    assert sorted(b.remaining for b in budgets) == list(range(PER_MINUTE - 16, PER_MINUTE))


@pytest.mark.parametrize(("callers", "per_minute"), [(4, 1200), (16, 6000), (64, 12_000)])
async def test_concurrent_callers_within_the_limit_are_never_refused(
    services: Services, callers: int, per_minute: int
) -> None:
    # However fast or slow the waves go, they ask for less than the full bucket holds.
    limiter = LeasedRateLimiter(RedisRateLimiter(services.redis))
    lease = per_minute // LeasedRateLimiter.LEASE_DIVISOR
    waves = (per_minute - 2 * lease) // callers
    for _ in range(waves):
        budgets = await _wave(limiter, callers, per_minute=per_minute)
        assert all(b.allowed for b in budgets), next(b for b in budgets if not b.allowed)


async def test_concurrent_takes_past_a_small_limit_stay_exact(services: Services) -> None:
    budgets = await _wave(LeasedRateLimiter(RedisRateLimiter(services.redis)), 16, per_minute=10)
    assert [b.allowed for b in budgets].count(True) == 10
    refused = [b for b in budgets if not b.allowed]
    assert all(b.remaining == 0 and 0 < b.retry_after <= 6 for b in refused)


async def test_a_take_from_a_lease_with_tokens_never_suspends(services: Services) -> None:
    limiter = LeasedRateLimiter(RedisRateLimiter(services.redis))
    first = await limiter.take("test:lease", per_minute=PER_MINUTE)
    step = limiter.take("test:lease", per_minute=PER_MINUTE).__await__()
    # A coroutine that finishes on its first step never gave the event loop a turn.
    with pytest.raises(StopIteration) as finished:
        step.send(None)
    second: Budget = finished.value.value
    assert second.allowed
    assert second.remaining == first.remaining - 1


async def test_a_refusal_is_shared_only_with_callers_that_need_as_much(services: Services) -> None:
    limiter = LeasedRateLimiter(RedisRateLimiter(services.redis))
    for _ in range(9):
        await limiter.take("test:lease", per_minute=10)
    # One token is left: the first caller's renewal is refused, the second still fits.
    costly, cheap = await asyncio.gather(
        limiter.take("test:lease", per_minute=10, cost=2),
        limiter.take("test:lease", per_minute=10),
    )
    assert (costly.allowed, cheap.allowed) == (False, True)

"""Request budgets: how much a caller may still do, and the rule for sign-in back-off."""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

MAX_LOGIN_BACKOFF_SECONDS = 900


@dataclass(frozen=True, slots=True)
class Budget:
    """A caller's rate-limit state after a request."""

    limit: int
    remaining: int
    reset_at: datetime
    allowed: bool
    retry_after: float


class RateLimiter(Protocol):
    """Token buckets, shared by every API process."""

    async def take(self, key: str, *, per_minute: int, cost: int = 1) -> Budget:
        """Spend `cost` from the bucket `key`, refilled at `per_minute` and that deep."""
        ...

    async def peek(self, key: str, *, per_minute: int) -> Budget:
        """The bucket's state without spending from it."""
        ...


class LoginThrottle(Protocol):
    """Slows down password guessing per email and address."""

    async def check(self, email: str, ip: str | None) -> None:
        """Raise `RateLimited` while this email and address must wait."""
        ...

    async def failed(self, email: str, ip: str | None) -> None:
        """Count a failed attempt, extending the wait."""
        ...

    async def succeeded(self, email: str, ip: str | None) -> None:
        """Forget the failures after a successful sign-in."""
        ...


def login_backoff(failures: int, *, free_failures: int) -> float:
    """Seconds to wait after `failures` in a row: none at first, then doubling, capped."""
    if failures < free_failures:
        return 0.0
    return float(min(2 ** (failures - free_failures), MAX_LOGIN_BACKOFF_SECONDS))

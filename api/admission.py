"""Admission of a request: who is calling, and whether their rate budget allows it."""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from api.context import Context, bearer_token
from domain.errors import RateLimited, Unauthenticated, Unavailable
from domain.identity.models import RequestMeta, Viewer
from domain.limits import Budget
from infra.bootstrap import Services

# A revoked session or token loses its open subscriptions within this many seconds.
CREDENTIAL_RECHECK_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Admitted:
    """A request let in, with the context its resolvers get and its rate budget."""

    context: Context
    budget: Budget


def rate_key(viewer: Viewer | None, ip: str | None) -> str:
    """Whose bucket a request spends: the token's, the user's, or the address's."""
    if viewer is None:
        return f"ip:{ip or 'unknown'}"
    if viewer.token_id is not None:
        return f"token:{viewer.token_id}"
    return f"user:{viewer.user.id}"


def rate_headers(budget: Budget) -> dict[str, str]:
    """GitHub-style headers that let clients pace themselves."""
    return {
        "X-RateLimit-Limit": str(budget.limit),
        "X-RateLimit-Remaining": str(budget.remaining),
        "X-RateLimit-Reset": str(int(budget.reset_at.timestamp())),
    }


async def admit(services: Services, *, authorization: str | None, meta: RequestMeta) -> Admitted:
    """Authenticate the caller, then spend one request from their budget.

    Raises `Unauthenticated` for a bad credential and `RateLimited` (carrying the budget)
    when the budget is spent; both refuse the whole request.
    """
    token = bearer_token(authorization)
    viewer = await services.identity.authenticate(token) if token else None
    settings = services.settings
    per_minute = (
        settings.rate_limit_per_minute if viewer else settings.anonymous_rate_limit_per_minute
    )
    budget = await services.rate_limiter.take(rate_key(viewer, meta.ip), per_minute=per_minute)
    if not budget.allowed:
        raise BudgetSpent(budget)
    context = Context(
        services=services, request_id=meta.request_id, viewer=viewer, meta=meta, budget=budget
    )
    return Admitted(context, budget)


class BudgetSpent(RateLimited):
    """The caller's rate budget is spent; the budget says when it refills."""

    def __init__(self, budget: Budget) -> None:
        super().__init__(
            f"rate limit of {budget.limit} requests per minute exceeded",
            retry_after=round(budget.retry_after, 3),
        )
        self.budget = budget


def socket_authorization(params: dict[str, object] | None) -> str | None:
    """The `Authorization` value a WebSocket client sent in its `connection_init` payload."""
    for key, value in (params or {}).items():
        if key.lower() == "authorization" and isinstance(value, str):
            return value
    return None


async def admit_socket(
    services: Services, *, params: dict[str, object] | None, meta: RequestMeta
) -> tuple[Viewer, str]:
    """The viewer of a WebSocket and its token; sockets must always be signed in."""
    token = bearer_token(socket_authorization(params))
    if token is None:
        raise Unauthenticated("send Authorization: Bearer <token> in connection_init")
    return await services.identity.authenticate(token), token


async def watch_credential(
    services: Services,
    token: str,
    on_revoked: Callable[[], Awaitable[None]],
    *,
    interval: float = CREDENTIAL_RECHECK_SECONDS,
) -> None:
    """Check the socket's credential every `interval`; call `on_revoked` once it fails."""
    while True:
        await asyncio.sleep(interval)
        try:
            await services.identity.authenticate(token)
        except Unauthenticated:
            await on_revoked()
            return
        except Unavailable:
            # Redis or PostgreSQL is briefly away: keep the socket, check again later.
            continue

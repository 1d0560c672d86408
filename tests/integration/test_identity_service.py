"""Identity services against real PostgreSQL and Redis: sign-in, rotation, revocation, audit."""

import asyncio

import pytest
from sqlalchemy import text

from domain.audit import AuditFilter, Outcome, read_audit_log
from domain.errors import InvalidInput, NotFound, PermissionDenied, RateLimited, Unauthenticated
from domain.identity.models import RequestMeta, Role, Scope, User, Viewer
from domain.paging import PageRequest
from infra.bootstrap import Services
from infra.ratelimit import LeasedRateLimiter, RedisLoginThrottle, RedisRateLimiter
from infra.redis import create_redis
from infra.settings import Settings

META = RequestMeta(ip="127.0.0.1", user_agent="pytest", request_id="req-1")
PASSWORD = "correct horse battery staple"


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        redis_url=redis_url,
        secret_key="s" * 48,
        max_sessions_per_user=3,
    )


async def _user(
    services: Services, email: str = "Ada@Example.com", role: Role = Role.OPERATOR
) -> User:
    return await services.identity.create_user(
        actor=None, meta=META, email=email, password=PASSWORD, role=role
    )


async def test_login_gives_tokens_that_authenticate(services: Services) -> None:
    user = await _user(services)
    signed = await services.identity.login(email="ada@example.COM", password=PASSWORD, meta=META)
    viewer = await services.identity.authenticate(signed.access_token)
    assert viewer.user.id == user.id
    assert viewer.scopes == {Scope.READ, Scope.WRITE}
    assert viewer.session_id == signed.session.id


async def test_unknown_email_and_wrong_password_fail_alike(services: Services) -> None:
    await _user(services)
    errors = []
    for email, password in (("nobody@example.com", PASSWORD), ("ada@example.com", "wrong" * 4)):
        with pytest.raises(Unauthenticated) as caught:
            await services.identity.login(email=email, password=password, meta=META)
        errors.append(caught.value.message)
    assert errors[0] == errors[1]


async def test_refresh_rotates_and_reuse_revokes_the_session(services: Services) -> None:
    await _user(services)
    first = await services.identity.login(email="ada@example.com", password=PASSWORD, meta=META)
    second = await services.identity.refresh(refresh_token=first.refresh_token, meta=META)
    assert second.refresh_token != first.refresh_token
    with pytest.raises(Unauthenticated, match="already used"):
        await services.identity.refresh(refresh_token=first.refresh_token, meta=META)
    with pytest.raises(Unauthenticated):
        await services.identity.refresh(refresh_token=second.refresh_token, meta=META)
    with pytest.raises(Unauthenticated, match="revoked"):
        await services.identity.authenticate(second.access_token)


async def test_concurrent_refreshes_with_one_token_let_only_one_through(services: Services) -> None:
    await _user(services)
    signed = await services.identity.login(email="ada@example.com", password=PASSWORD, meta=META)
    results = await asyncio.gather(
        *(
            services.identity.refresh(refresh_token=signed.refresh_token, meta=META)
            for _ in range(5)
        ),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in results) <= 1


async def test_logout_stops_the_access_token_at_once(services: Services) -> None:
    await _user(services)
    signed = await services.identity.login(email="ada@example.com", password=PASSWORD, meta=META)
    viewer = await services.identity.authenticate(signed.access_token)
    await services.identity.logout(viewer=viewer, meta=META)
    with pytest.raises(Unauthenticated):
        await services.identity.authenticate(signed.access_token)


async def test_sessions_are_capped_and_the_oldest_is_ended(services: Services) -> None:
    await _user(services)
    logins = [
        await services.identity.login(email="ada@example.com", password=PASSWORD, meta=META)
        for _ in range(4)
    ]
    with pytest.raises(Unauthenticated):
        await services.identity.authenticate(logins[0].access_token)
    viewer = await services.identity.authenticate(logins[-1].access_token)
    assert len(await services.identity.sessions(viewer=viewer)) == 3


async def test_api_tokens_are_capped_by_role_and_revocable(services: Services) -> None:
    await _user(services, role=Role.VIEWER)
    signed = await services.identity.login(email="ada@example.com", password=PASSWORD, meta=META)
    viewer = await services.identity.authenticate(signed.access_token)
    with pytest.raises(PermissionDenied):
        await services.identity.create_api_token(
            viewer=viewer, meta=META, name="ci", scopes=frozenset({Scope.WRITE}), expires_at=None
        )
    made = await services.identity.create_api_token(
        viewer=viewer, meta=META, name="ci", scopes=frozenset({Scope.READ}), expires_at=None
    )
    assert made.secret.startswith("tky_")
    token_viewer = await services.identity.authenticate(made.secret)
    assert token_viewer.token_id == made.token.id
    assert token_viewer.scopes == {Scope.READ}
    await services.identity.revoke_api_token(viewer=viewer, meta=META, token_id=made.token.id)
    with pytest.raises(Unauthenticated):
        await services.identity.authenticate(made.secret)


async def test_another_users_session_is_not_found(services: Services) -> None:
    await _user(services)
    await _user(services, email="bob@example.com")
    ada = await services.identity.login(email="ada@example.com", password=PASSWORD, meta=META)
    bob = await services.identity.login(email="bob@example.com", password=PASSWORD, meta=META)
    bob_viewer = await services.identity.authenticate(bob.access_token)
    with pytest.raises(NotFound):
        await services.identity.revoke_session(
            viewer=bob_viewer, meta=META, session_id=ada.session.id
        )


async def test_bad_email_and_weak_password_name_the_field(services: Services) -> None:
    with pytest.raises(InvalidInput) as bad_email:
        await _user(services, email="not-an-email")
    assert bad_email.value.path == ["email"]
    with pytest.raises(InvalidInput) as weak:
        await services.identity.create_user(
            actor=None, meta=META, email="x@example.com", password="short"
        )
    assert weak.value.path == ["password"]


async def test_audit_records_allowed_and_refused_attempts(services: Services) -> None:
    user = await _user(services)
    with pytest.raises(Unauthenticated):
        await services.identity.login(email="ada@example.com", password="x" * 12, meta=META)
    await services.identity.login(email="ada@example.com", password=PASSWORD, meta=META)
    admin = await _user(services, email="root@example.com", role=Role.ADMIN)
    viewer = Viewer(user=admin, scopes=frozenset(Scope))
    page = await read_audit_log(
        services.uow,
        viewer=viewer,
        audit_filter=AuditFilter(action="session.login"),
        request=PageRequest(first=10),
    )
    outcomes = sorted(e.outcome.value for e in page.items)
    assert outcomes == [Outcome.ALLOWED.value, Outcome.REFUSED.value]
    allowed = next(e for e in page.items if e.outcome is Outcome.ALLOWED)
    assert allowed.target_id == str(user.id)
    assert allowed.ip == "127.0.0.1"
    assert allowed.request_id == "req-1"
    assert allowed.user_agent == "pytest"


async def test_the_audit_trail_refuses_updates_and_deletes(services: Services) -> None:
    await _user(services)
    for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"):
            async with services.engine.begin() as connection:
                await connection.execute(text(statement))


async def test_failed_sign_ins_earn_a_doubling_wait(redis_url: str) -> None:
    redis = create_redis(redis_url)
    throttle = RedisLoginThrottle(redis, free_failures=5)
    try:
        await throttle.succeeded("ada@example.com", "127.0.0.1")
        for _ in range(8):  # the 8th failure earns 2 ** 3 = 8 s
            await throttle.failed("ada@example.com", "127.0.0.1")
        with pytest.raises(RateLimited) as waiting:
            await throttle.check("ADA@example.com", "127.0.0.1")
        assert 4 < waiting.value.retry_after <= 8
        await throttle.check("ada@example.com", "10.9.9.9")
        await throttle.succeeded("ada@example.com", "127.0.0.1")
        await throttle.check("ada@example.com", "127.0.0.1")
    finally:
        await redis.aclose()


async def test_sign_in_consults_the_throttle_before_the_password(services: Services) -> None:
    await _user(services)
    throttle = RedisLoginThrottle(services.redis, free_failures=1)
    for _ in range(4):
        await throttle.failed("ada@example.com", META.ip)
    with pytest.raises(RateLimited):
        await services.identity.login(email="ada@example.com", password=PASSWORD, meta=META)
    await services.identity.login(
        email="ada@example.com", password=PASSWORD, meta=RequestMeta(ip="10.9.9.9")
    )


async def test_token_bucket_refuses_past_the_limit_and_says_when(services: Services) -> None:
    budgets = [await services.rate_limiter.take("test:bucket", per_minute=3) for _ in range(4)]
    assert [b.allowed for b in budgets] == [True, True, True, False]
    assert [b.remaining for b in budgets[:3]] == [2, 1, 0]
    assert 0 < budgets[-1].retry_after <= 20
    assert budgets[-1].reset_at > budgets[0].reset_at


async def test_leases_never_let_more_through_than_the_limit(services: Services) -> None:
    # Two processes' limiters share one Redis bucket of 6,000 a minute (leases of 10).
    first, second = services.rate_limiter, LeasedRateLimiter(RedisRateLimiter(services.redis))
    results = [
        await limiter.take("test:shared", per_minute=6000)
        for _ in range(3100)
        for limiter in (first, second)
    ]
    allowed = [b for b in results if b.allowed]
    # The limit, less unspent lease tokens, plus what the bucket refills during the test.
    refilled = 6000 / 60 * 10
    assert 6000 - 20 <= len(allowed) <= 6000 + refilled
    assert all(b.remaining >= 0 for b in results)
    assert not results[-1].allowed

"""The composition root: the one place where real adapters are chosen and wired."""

from dataclasses import dataclass
from datetime import timedelta

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from domain.audit import Auditor
from domain.health import HealthProbe
from domain.identity.services import IdentityPolicy, IdentityService
from domain.plans.limits import PlanLimits, PlanPolicy
from domain.plans.services import PlanService
from domain.ports import UnitOfWorkFactory
from domain.runs.execution import RunExecutor
from domain.runs.policy import RunPolicy
from domain.runs.recovery import RunRecovery
from domain.runs.services import RunService
from infra.auth import Argon2PasswordHasher, JwtAccessTokenCodec, RedisRevocationList
from infra.clock import SystemClock
from infra.db.engine import create_engine, create_session_factory
from infra.db.uow import SqlUnitOfWork
from infra.db.workers import SqlWorkerRegistry
from infra.events import RedisEventBus
from infra.keys import signing_key
from infra.params import JsonSchemaParamsValidator
from infra.probes import DatabaseProbe, MigrationProbe, RedisProbe, WorkerProbe
from infra.queue import ArqJobQueue
from infra.ratelimit import LeasedRateLimiter, RedisLoginThrottle, RedisRateLimiter
from infra.redis import create_redis
from infra.run_queue import ArqRunQueue
from infra.settings import Settings


@dataclass(slots=True)
class Services:
    """Long-lived adapters shared by every request or job of one process."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: ArqRedis
    queue: ArqJobQueue
    workers: SqlWorkerRegistry
    probes: tuple[HealthProbe, ...]
    identity: IdentityService
    uow: UnitOfWorkFactory
    auditor: Auditor
    rate_limiter: LeasedRateLimiter
    runs: RunService
    executor: RunExecutor
    recovery: RunRecovery
    run_queue: ArqRunQueue
    bus: RedisEventBus
    limits: PlanLimits
    plans: PlanService

    async def close(self) -> None:
        """Stop live events and release every connection."""
        await self.bus.close()
        await self.redis.aclose()
        await self.engine.dispose()


def run_policy(settings: Settings) -> RunPolicy:
    """The bounds on runs that settings tune; the rest keep their defaults."""
    return RunPolicy(
        max_params_bytes=settings.max_params_bytes,
        idempotency_window=timedelta(hours=settings.idempotency_window_hours),
        max_log_lines=settings.max_log_lines_per_run,
        worker_stale_after=timedelta(seconds=settings.worker_stale_after),
    )


def plan_policy(settings: Settings) -> PlanPolicy:
    """How plans apply, as settings tune it."""
    return PlanPolicy(zone=settings.quota_zone)


def build_services(settings: Settings, *, database_url: str, redis_url: str) -> Services:
    """Connect the adapters lazily: nothing here fails when a dependency is still down."""
    engine = create_engine(
        database_url,
        pool_size=settings.db_pool_size,
        connect_timeout=settings.db_connect_timeout,
    )
    sessions = create_session_factory(engine)
    redis = create_redis(redis_url)
    workers = SqlWorkerRegistry(sessions)
    probes: tuple[HealthProbe, ...] = (
        DatabaseProbe(engine),
        RedisProbe(redis),
        MigrationProbe(engine),
        WorkerProbe(workers, stale_after=settings.worker_stale_after),
    )
    clock = SystemClock()
    uow: UnitOfWorkFactory = lambda: SqlUnitOfWork(sessions)  # noqa: E731 - a factory value
    identity = IdentityService(
        uow=uow,
        hasher=Argon2PasswordHasher(),
        codec=JwtAccessTokenCodec(
            signing_key(settings), ttl=timedelta(seconds=settings.access_token_ttl)
        ),
        revocations=RedisRevocationList(redis),
        throttle=RedisLoginThrottle(redis, free_failures=settings.login_failures_before_backoff),
        clock=clock,
        policy=IdentityPolicy(
            access_ttl=timedelta(seconds=settings.access_token_ttl),
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl),
            max_sessions=settings.max_sessions_per_user,
        ),
    )
    run_queue = ArqRunQueue(redis)
    bus = RedisEventBus(redis, redis_url, buffer=settings.subscription_buffer)
    policy = run_policy(settings)
    plans = plan_policy(settings)
    limits = PlanLimits(bus=bus, policy=plans)
    return Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        redis=redis,
        queue=ArqJobQueue(redis),
        workers=workers,
        probes=probes,
        identity=identity,
        uow=uow,
        auditor=Auditor(uow, clock),
        rate_limiter=LeasedRateLimiter(RedisRateLimiter(redis)),
        runs=RunService(
            uow=uow,
            queue=run_queue,
            bus=bus,
            validator=JsonSchemaParamsValidator(),
            clock=clock,
            policy=policy,
            limits=limits,
        ),
        executor=RunExecutor(
            uow=uow, queue=run_queue, bus=bus, clock=clock, policy=policy, limits=limits
        ),
        recovery=RunRecovery(uow=uow, queue=run_queue, bus=bus, clock=clock, policy=policy),
        run_queue=run_queue,
        bus=bus,
        limits=limits,
        plans=PlanService(uow=uow, bus=bus, clock=clock, policy=plans),
    )

"""Plans enforced on real PostgreSQL and Redis: quotas, slots, lanes and plan changes."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from arq.worker import Worker
from sqlalchemy import text

from domain.audit import AuditFilter, Outcome
from domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unavailable
from domain.identity.models import RequestMeta, Role, Viewer
from domain.paging import PageRequest
from domain.plans.errors import DailyQuotaExceeded
from domain.plans.models import Notification, PlanChanges
from domain.runs.execution import Claim, Deferred
from domain.runs.models import Priority, Run
from domain.runs.recovery import RunRecovery
from infra.bootstrap import Services, build_services, run_policy
from infra.clock import SystemClock
from infra.queue import QUEUE_NAME
from infra.settings import Settings
from tests.conftest import sign_in
from workers.settings import cancel_until_done, worker_settings
from workers.tasks.catalog import load_catalog

META = RequestMeta(ip="127.0.0.1", request_id="quota-test")
COUNT = {"to": 1, "delayMs": 0}
UNFINISHED = "SELECT id FROM runs WHERE status IN ('queued', 'running')"
# No worker of this name sends heartbeats, so the reaper takes its runs for lost ones.
GHOST = "ghost-worker"
BUILT_IN = frozenset({"free", "pro", "enterprise"})


@pytest.fixture(autouse=True)
async def tasks(services: Services) -> None:
    """The built-in tasks registered, as a worker registers them when it starts."""
    await services.runs.register_tasks(load_catalog().tasks(datetime.now(UTC)))


async def signed_in(services: Services, role: Role = Role.OPERATOR) -> Viewer:
    return await services.identity.authenticate(await sign_in(services, role))


async def admin(services: Services) -> Viewer:
    return await signed_in(services, Role.ADMIN)


async def on_plan(
    services: Services,
    plan: str,
    *,
    runs_per_day: int | None = None,
    max_concurrent: int = 10,
    max_priority: Priority = Priority.HIGH,
) -> Viewer:
    """A new operator on `plan`, which is made first unless it is built in."""
    boss = await admin(services)
    if plan not in BUILT_IN:
        await services.plans.create_plan(
            viewer=boss,
            meta=META,
            name=plan,
            display_name=plan.title(),
            runs_per_day=runs_per_day or 100,
            max_concurrent=max_concurrent,
            default_priority=Priority.NORMAL,
            max_priority=max_priority,
        )
    viewer = await signed_in(services)
    await services.plans.set_user_plan(viewer=boss, meta=META, user_id=viewer.user.id, plan=plan)
    return viewer


async def start(services: Services, viewer: Viewer, **options: Any) -> Run:
    return await services.runs.start_run(
        viewer=viewer, meta=META, task="demo.count", params=COUNT, **options
    )


async def counted(services: Services, viewer: Viewer) -> int:
    [quota] = await services.plans.quotas(viewer=viewer, user_ids=[viewer.user.id])
    assert quota is not None
    return quota.runs_today


async def rows(services: Services, sql: str, **params: Any) -> list[Any]:
    async with services.engine.connect() as connection:
        return list((await connection.execute(text(sql), params)).all())


# -- the daily quota -----------------------------------------------------------------------


async def test_a_refused_start_writes_no_run_and_is_audited_as_refused(
    services: Services,
) -> None:
    viewer = await on_plan(services, "tiny", runs_per_day=2)
    await start(services, viewer)
    await start(services, viewer)
    with pytest.raises(DailyQuotaExceeded) as caught:
        await start(services, viewer)
    assert (caught.value.limit, caught.value.used) == (2, 2)
    assert caught.value.resets_at > datetime.now(UTC)
    assert len(await rows(services, "SELECT id FROM runs")) == 2
    async with services.uow() as uow:
        trail = await uow.audit.page(
            AuditFilter(actor_id=viewer.user.id, action="run.start"), PageRequest(first=10)
        )
    outcomes = sorted(entry.outcome.value for entry in trail.items)
    assert outcomes == ["allowed", "allowed", "refused"]
    [refusal] = [e for e in trail.items if e.outcome is Outcome.REFUSED]
    assert refusal.reason is not None
    assert "DailyQuotaExceeded" in refusal.reason


async def test_an_idempotent_repeat_returns_the_run_without_counting_it(
    services: Services,
) -> None:
    viewer = await on_plan(services, "single", runs_per_day=1)
    first = await start(services, viewer, idempotency_key="nightly-1")
    again = await start(services, viewer, idempotency_key="nightly-1")
    assert again.id == first.id
    assert await counted(services, viewer) == 1
    with pytest.raises(DailyQuotaExceeded):
        await start(services, viewer, idempotency_key="nightly-2")


async def test_a_run_retried_after_its_worker_was_lost_is_not_counted_again(
    services: Services,
) -> None:
    viewer = await signed_in(services)
    run = await start(services, viewer)
    for _ in range(2):
        assert isinstance(await services.executor.claim(run.id, GHOST), Claim)
        assert await recovery(services, rand=lambda: 0.0).reap_lost_runs() == 1
    [(status, attempt)] = await rows(services, "SELECT status, attempt FROM runs")
    assert (status, attempt) == ("queued", 2)
    assert await counted(services, viewer) == 1


async def test_a_changed_plan_applies_from_the_next_start(services: Services) -> None:
    viewer = await on_plan(services, "small", runs_per_day=3, max_priority=Priority.NORMAL)
    with pytest.raises(PermissionDenied) as caught:
        await start(services, viewer, priority=Priority.HIGH)
    assert caught.value.path == ["priority"]
    for _ in range(3):
        await start(services, viewer)
    with pytest.raises(DailyQuotaExceeded):
        await start(services, viewer)

    boss = await admin(services)
    await services.plans.set_user_plan(viewer=boss, meta=META, user_id=viewer.user.id, plan="pro")
    # The viewer was authenticated while on the old plan: starts read the plan afresh.
    assert viewer.user.plan == "free"
    run = await start(services, viewer, priority=Priority.HIGH)
    assert run.priority is Priority.HIGH
    assert (await start(services, viewer)).priority is Priority.NORMAL  # pro's default
    assert await counted(services, viewer) == 5


async def test_an_updated_limit_applies_to_the_plans_users_at_once(services: Services) -> None:
    viewer = await on_plan(services, "growing", runs_per_day=1)
    await start(services, viewer)
    with pytest.raises(DailyQuotaExceeded):
        await start(services, viewer)
    changes = PlanChanges(runs_per_day=2)
    await services.plans.update_plan(
        viewer=await admin(services), meta=META, name="growing", changes=changes
    )
    await start(services, viewer)
    assert await counted(services, viewer) == 2


async def test_without_postgresql_a_start_is_refused_as_unavailable(
    settings: Settings, redis_url: str, unused_port: Callable[[], int], services: Services
) -> None:
    viewer = await signed_in(services)
    down = f"postgresql://postgres@127.0.0.1:{unused_port()}/postgres"
    broken = build_services(
        msgspec.structs.replace(settings, db_connect_timeout=0.5),
        database_url=down,
        redis_url=redis_url,
    )
    try:
        with pytest.raises(Unavailable):
            await start(broken, viewer)
    finally:
        await broken.close()


# -- the 80 % warning ----------------------------------------------------------------------


async def test_the_eighty_percent_warning_is_kept_and_sent_once(services: Services) -> None:
    viewer = await signed_in(services)
    received: list[Notification] = []

    async def listen() -> None:
        async for notification in services.plans.gen_notifications(viewer=viewer):
            received.append(notification)

    listening = asyncio.create_task(listen())
    await until_watching(services)
    try:
        for _ in range(20):
            await start(services, viewer)
        with pytest.raises(DailyQuotaExceeded):
            await start(services, viewer)
        await asyncio.sleep(0.3)
    finally:
        listening.cancel()
    [sent] = received
    assert (sent.kind, sent.data["runsToday"], sent.data["limit"]) == ("quota.warning", 16, 20)
    page = await services.plans.page_notifications(viewer=viewer, request=PageRequest(first=10))
    assert [n.id for n in page.items] == [sent.id]


async def until_watching(services: Services) -> None:
    for _ in range(100):
        if services.bus.watcher_count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the listener never started watching")


# -- concurrency ---------------------------------------------------------------------------


def recovery(services: Services, rand: Callable[[], float]) -> RunRecovery:
    """A reaper whose back-off jitter is pinned."""
    policy = run_policy(services.settings)
    return RunRecovery(
        uow=services.uow,
        queue=services.run_queue,
        bus=services.bus,
        clock=SystemClock(),
        policy=policy,
        rand=rand,
    )


async def test_runs_over_the_limit_wait_in_order_and_an_ending_run_wakes_the_next(
    services: Services,
) -> None:
    viewer = await on_plan(services, "solo", max_concurrent=1)
    first, second, third = [await start(services, viewer) for _ in range(3)]
    claim = await services.executor.claim(first.id, "worker-a")
    assert isinstance(claim, Claim)
    # Full: the third waits, QUEUED, and is never failed for it.
    assert isinstance(await services.executor.claim(third.id, "worker-a"), Deferred)
    queued_at = await services.redis.zscore(QUEUE_NAME, str(second.id))
    await services.executor.succeed(claim, {"count": 1})
    # The slot is free, but the second is older and due, so it goes first.
    assert isinstance(await services.executor.claim(third.id, "worker-a"), Deferred)
    # Its job is still queued and due: a wake never replaces a job arq may be running.
    woken_at = await services.redis.zscore(QUEUE_NAME, str(second.id))
    assert queued_at is not None
    assert woken_at == queued_at <= time.time() * 1000
    assert isinstance(await services.executor.claim(second.id, "worker-a"), Claim)
    statuses = dict(await rows(services, "SELECT id, status FROM runs"))
    assert statuses == {first.id: "succeeded", second.id: "running", third.id: "queued"}


async def test_a_dead_workers_run_gives_its_slot_back_once_reaped(services: Services) -> None:
    viewer = await on_plan(services, "solo", max_concurrent=1)
    lost, waiting = await start(services, viewer), await start(services, viewer)
    assert isinstance(await services.executor.claim(lost.id, GHOST), Claim)
    assert isinstance(await services.executor.claim(waiting.id, "worker-a"), Deferred)
    # The longest back-off, so the lost run is not due again while the other claims.
    assert await recovery(services, rand=lambda: 1.0).reap_lost_runs() == 1
    assert isinstance(await services.executor.claim(waiting.id, "worker-a"), Claim)


@asynccontextmanager
async def one_slot_worker(settings: Settings) -> AsyncIterator[None]:
    """A real arq worker that runs one job at a time."""
    assert settings.database_url is not None
    assert settings.redis_url is not None
    options = worker_settings(
        msgspec.structs.replace(settings, worker_concurrency=1),
        database_url=settings.database_url,
        redis_url=settings.redis_url,
    )
    arq_worker = Worker(**{**options, "handle_signals": False})
    main = asyncio.create_task(arq_worker.main())
    try:
        yield
    finally:
        await cancel_until_done(main)
        await arq_worker.close()


async def test_a_pro_users_high_run_starts_before_a_backlog_of_free_low_runs(
    services: Services, settings: Settings
) -> None:
    backlog = [
        await start(services, user)
        for user in [await signed_in(services) for _ in range(3)]
        for _ in range(3)
    ]
    assert {run.priority for run in backlog} == {Priority.LOW}
    pro = await on_plan(services, "pro")
    high = await start(services, pro, priority=Priority.HIGH)
    async with one_slot_worker(settings):
        for _ in range(600):
            if not await rows(
                services, "SELECT id FROM runs WHERE status IN ('queued', 'running')"
            ):
                break
            await asyncio.sleep(0.1)
    started = dict(await rows(services, "SELECT id, started_at FROM runs"))
    assert None not in started.values()
    assert started[high.id] < min(started[run.id] for run in backlog)


# -- administering plans -------------------------------------------------------------------


async def test_a_plan_in_use_is_deleted_only_by_moving_its_users(services: Services) -> None:
    member = await on_plan(services, "team", runs_per_day=50)
    boss = await admin(services)
    with pytest.raises(Conflict, match="1 users are on this plan"):
        await services.plans.delete_plan(viewer=boss, meta=META, name="team")
    with pytest.raises(InvalidInput) as caught:
        await services.plans.delete_plan(viewer=boss, meta=META, name="team", reassign_to="gold")
    assert caught.value.path == ["reassignTo"]
    moved = await services.plans.delete_plan(viewer=boss, meta=META, name="team", reassign_to="pro")
    assert moved == 1
    assert [name for (name,) in await rows(services, "SELECT name FROM plans ORDER BY name")] == [
        "enterprise",
        "free",
        "pro",
    ]
    [user] = await services.identity.get_users([member.user.id])
    assert user is not None
    assert user.plan == "pro"


async def test_unknown_plans_are_bad_input_to_assign_and_not_found_to_change(
    services: Services,
) -> None:
    boss = await admin(services)
    with pytest.raises(InvalidInput) as assign:
        await services.plans.set_user_plan(
            viewer=boss, meta=META, user_id=boss.user.id, plan="gold"
        )
    assert assign.value.path == ["plan"]
    with pytest.raises(NotFound):
        await services.plans.update_plan(viewer=boss, meta=META, name="gold", changes=PlanChanges())
    with pytest.raises(NotFound):
        await services.plans.delete_plan(viewer=boss, meta=META, name="gold")
    with pytest.raises(NotFound) as nobody:
        await services.plans.set_user_plan(viewer=boss, meta=META, user_id=uuid.uuid4(), plan="pro")
    assert nobody.value.path == ["userId"]


async def test_only_administrators_manage_plans(services: Services) -> None:
    viewer = await signed_in(services)
    with pytest.raises(PermissionDenied):
        await services.plans.update_plan(
            viewer=viewer, meta=META, name="free", changes=PlanChanges(runs_per_day=10**6)
        )
    with pytest.raises(PermissionDenied):
        await services.plans.set_user_plan(
            viewer=viewer, meta=META, user_id=viewer.user.id, plan="enterprise"
        )


async def test_usage_per_plan_counts_todays_runs_and_running_ones(services: Services) -> None:
    free_user, pro_user = await signed_in(services), await on_plan(services, "pro")
    for _ in range(2):
        await start(services, free_user)
    running = await start(services, pro_user)
    assert isinstance(await services.executor.claim(running.id, "worker-a"), Claim)
    usage = {u.plan.name: u for u in await services.plans.plan_usage(viewer=await admin(services))}
    assert (usage["free"].runs_today, usage["free"].running) == (2, 0)
    assert (usage["pro"].users, usage["pro"].runs_today, usage["pro"].running) == (1, 1, 1)
    [quota] = await services.plans.quotas(viewer=pro_user, user_ids=[pro_user.user.id])
    assert quota is not None
    assert (quota.runs_today, quota.limit, quota.running, quota.max_concurrent) == (1, 1000, 1, 10)
    [hidden] = await services.plans.quotas(viewer=pro_user, user_ids=[free_user.user.id])
    assert hidden is None

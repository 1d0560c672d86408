"""The event bus against real Redis: one subscription, fan-out, bounded inboxes, reconnection."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import StreamLagged, Unavailable
from domain.runs.models import (
    EventKind,
    LogLevel,
    RunError,
    RunEvent,
    RunStatus,
    RunUpdate,
)
from infra.bootstrap import Services
from infra.event_buffers import EventInbox
from infra.events import RedisEventBus
from infra.redis import create_redis

T = TypeVar("T")
NOW = datetime(2026, 1, 1, tzinfo=UTC)
WAIT = 10.0


def event(run_id: uuid.UUID, seq: int, kind: EventKind = EventKind.LOG) -> RunEvent:
    """A plain event of `kind`."""
    return RunEvent(run_id=run_id, seq=seq, at=NOW, kind=kind, message=f"#{seq}")


async def take(stream: AsyncIterator[T], count: int) -> list[T]:
    """The next `count` items, failing the test rather than waiting for ever."""

    async def gather() -> list[T]:
        return [await anext(stream) for _ in range(count)]

    return await asyncio.wait_for(gather(), WAIT)


async def subscribers(services: Services, channel: str) -> int:
    """How many connections Redis counts on `channel` (this test run's own channel)."""
    [(_, count)] = await services.redis.pubsub_numsub(channel)
    return int(count)


@pytest.fixture
async def small_bus(services: Services, redis_url: str) -> AsyncIterator[RedisEventBus]:
    """A bus whose watchers hold ten events at most."""
    bus = RedisEventBus(services.redis, redis_url, buffer=10)
    yield bus
    await bus.close()


async def test_channels_carry_the_redis_database_number(services: Services, redis_url: str) -> None:
    db = urlsplit(redis_url).path.lstrip("/")
    assert services.bus.events_channel == f"taskyard:{db}:run-events"
    assert services.bus.updates_channel == f"taskyard:{db}:run-updates"


async def test_a_watcher_gets_its_runs_events_whole_and_no_others(services: Services) -> None:
    run_id, other = uuid.uuid4(), uuid.uuid4()
    result = RunEvent(
        run_id=run_id,
        seq=2,
        at=NOW,
        kind=EventKind.RESULT,
        status=RunStatus.FAILED,
        attempt=3,
        result={"partial": [1, 2]},
        error=RunError("ValueError", "bad", "Traceback"),
    )
    log = RunEvent(run_id, 1, NOW, EventKind.LOG, level=LogLevel.ERROR, message="x")
    async with services.bus.watch(run_id) as stream:
        await services.bus.publish(event(other, 1))
        await services.bus.publish(log)
        await services.bus.publish(result)
        assert await take(stream, 2) == [log, result]


async def test_many_watchers_share_one_subscription(services: Services) -> None:
    runs = [uuid.uuid4() for _ in range(5)]
    bus = services.bus
    async with contextlib.AsyncExitStack() as stack:
        streams = [
            await stack.enter_async_context(bus.watch(run_id)) for run_id in runs for _ in range(10)
        ]
        assert bus.watcher_count == 50
        assert await subscribers(services, bus.events_channel) == 1
        assert await subscribers(services, bus.updates_channel) == 1
        for seq in (1, 2, 3):
            for run_id in runs:
                await bus.publish(event(run_id, seq))
        for n, stream in enumerate(streams):
            expected = [event(runs[n // 10], seq) for seq in (1, 2, 3)]
            assert await take(stream, 3) == expected
    assert bus.watcher_count == 0


async def test_update_watchers_get_each_runs_latest_state(services: Services) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    updates = [
        RunUpdate(a, RunStatus.QUEUED, "t", None, NOW),
        RunUpdate(b, RunStatus.QUEUED, "t", None, NOW),
        RunUpdate(a, RunStatus.RUNNING, "t", None, NOW),
    ]
    async with services.bus.watch_updates() as fast, services.bus.watch_updates() as slow:
        for update in updates:
            await services.bus.publish_update(update)
            assert await take(fast, 1) == [update]
        # The slow watcher read nothing meanwhile: a's queued state gave way to its newer one.
        assert await take(slow, 2) == updates[1:]


async def test_a_full_inbox_sheds_superseded_progress_but_no_log(
    services: Services, small_bus: RedisEventBus
) -> None:
    run_id = uuid.uuid4()
    # Nine progress events and a log fill the inbox of ten; the next log finds it full.
    kinds = [EventKind.PROGRESS] * 9 + [EventKind.LOG] * 3 + [EventKind.PROGRESS]
    sent = [event(run_id, seq, kind) for seq, kind in enumerate(kinds, start=1)]
    async with small_bus.watch(run_id) as slow, small_bus.watch(run_id) as fast:
        for item in sent:
            await small_bus.publish(item)
            # The fast watcher keeps up, so its inbox never fills.
            assert await take(fast, 1) == [item]
        received = await take(slow, 5)
    # Only the newest of the nine progress events was kept; every log was.
    assert [e.seq for e in received] == [9, 10, 11, 12, 13]


async def test_a_watcher_too_far_behind_lags_from_what_it_got_and_others_go_on(
    services: Services, small_bus: RedisEventBus
) -> None:
    run_id = uuid.uuid4()
    sent = [event(run_id, seq) for seq in range(1, 31)]
    async with small_bus.watch(run_id) as slow, small_bus.watch(run_id) as fast:
        for n, item in enumerate(sent):
            await small_bus.publish(item)
            assert await take(fast, 1) == [item]
            if n < 2:
                assert await take(slow, 1) == [item]
        with pytest.raises(StreamLagged) as caught:
            await take(slow, 1)
    assert caught.value.resume_after_seq == 2


async def test_a_malformed_message_is_skipped(services: Services) -> None:
    run_id = uuid.uuid4()
    async with services.bus.watch(run_id) as stream:
        await services.redis.publish(services.bus.events_channel, b"{not json")
        await services.redis.publish(services.bus.updates_channel, b"[]")
        await services.bus.publish(event(run_id, 1))
        assert await take(stream, 1) == [event(run_id, 1)]


async def _kill_clients_named(services: Services, name: str) -> int:
    """Close only the connections carrying `name`: other test runs share this server."""
    clients = await services.redis.client_list()
    ids = [client["id"] for client in clients if client.get("name") == name]
    for client_id in ids:
        await services.redis.client_kill_filter(_id=client_id)
    return len(ids)


async def test_the_reader_reconnects_after_its_connection_is_killed(services: Services) -> None:
    run_id = uuid.uuid4()
    bus = services.bus
    async with bus.watch(run_id) as stream:
        await bus.publish(event(run_id, 1))
        assert await take(stream, 1) == [event(run_id, 1)]
        assert await _kill_clients_named(services, bus.client_name) == 1
        for _ in range(int(WAIT / 0.05)):
            if await subscribers(services, bus.events_channel) == 1:
                break
            await asyncio.sleep(0.05)
        await bus.publish(event(run_id, 3))
        assert await take(stream, 1) == [event(run_id, 3)]
    assert await subscribers(services, bus.events_channel) == 1


async def test_closing_ends_every_watcher_and_leaves_no_task(
    services: Services, redis_url: str
) -> None:
    before = asyncio.all_tasks()
    bus = RedisEventBus(services.redis, redis_url, buffer=10)
    async with bus.watch(uuid.uuid4()) as stream, bus.watch_updates() as updates:
        waiting = asyncio.create_task(take(stream, 1))
        await asyncio.sleep(0.05)
        await bus.close()
        with pytest.raises(Unavailable):
            await waiting
        with pytest.raises(Unavailable):
            await take(updates, 1)
    assert bus.watcher_count == 0
    assert asyncio.all_tasks() == before
    # Its subscription is gone too (the services' own bus was never started here).
    assert await subscribers(services, bus.events_channel) == 0


async def test_an_unreachable_redis_is_unavailable_and_publishing_carries_on(
    unused_port: Callable[[], int],
) -> None:
    url = f"redis://127.0.0.1:{unused_port()}/0"
    redis = create_redis(url)
    bus = RedisEventBus(redis, url, buffer=10, subscribe_timeout=0.5)
    try:
        await bus.publish(event(uuid.uuid4(), 1))
        with pytest.raises(Unavailable):
            async with bus.watch(uuid.uuid4()):
                pass
        assert bus.watcher_count == 0
    finally:
        await bus.close()
        await redis.aclose()


@given(kinds=st.lists(st.sampled_from(EventKind), max_size=40), capacity=st.integers(1, 8))
def test_an_unread_inbox_lags_exactly_when_kept_events_overflow_it(
    kinds: list[EventKind], capacity: int
) -> None:
    run_id = uuid.uuid4()
    inbox = EventInbox(capacity)
    # The rule, stated plainly: progress is kept only as the newest one, the rest all queue.
    kept_others, any_progress, lags = 0, False, False
    for seq, kind in enumerate(kinds, start=1):
        inbox.offer(event(run_id, seq, kind))
        if kind is EventKind.PROGRESS:
            lags = lags or kept_others >= capacity
            any_progress = True
        else:
            lags = lags or kept_others + any_progress >= capacity
            kept_others += 1
    assert inbox.failed is lags
    if not lags:
        received = asyncio.run(take(inbox, inbox.pending))
        assert len(received) <= capacity
        assert [e.seq for e in received] == sorted(e.seq for e in received)
        others = [e for e in received if e.kind is not EventKind.PROGRESS]
        assert [e.kind for e in others] == [k for k in kinds if k is not EventKind.PROGRESS]
        progress = [seq for seq, kind in enumerate(kinds, start=1) if kind is EventKind.PROGRESS]
        # The newest progress always survives.
        assert set(progress[-1:]) <= {e.seq for e in received}

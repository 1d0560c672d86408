"""A run's event stream: replay then live, in order, without gaps or duplicates, whatever the
live feed drops, repeats or reorders; lag and early ends are resumable."""

import asyncio
import uuid
from collections.abc import Callable
from contextlib import aclosing
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.errors import InvalidInput, NotFound, StreamLagged
from domain.identity.models import RequestMeta, Viewer
from domain.runs.execution import Claim
from domain.runs.models import EventKind, LogLevel, Run, RunEvent, RunFilter, RunStatus
from domain.runs.policy import RunPolicy
from domain.runs.streaming import LIVE_ENDED
from tests.unit.run_fakes import World, make_task, make_viewer

QUICK = RunPolicy(replay_chunk=2, live_recheck_after=timedelta(milliseconds=10))


async def start(world: World, viewer: Viewer) -> Run:
    """A queued run of `viewer`'s; its first event is committed."""
    await world.service.register_tasks([make_task()])
    return await world.service.start_run(
        viewer=viewer, meta=RequestMeta(), task="sum", params={"a": 1, "b": 2}
    )


async def write(world: World, run_id: uuid.UUID, *, final: bool = False) -> RunEvent:
    """Commit the run's next event (its RESULT, which ends it, when `final`); no publish."""
    kind = EventKind.RESULT if final else EventKind.LOG
    draft = RunEvent(run_id=run_id, seq=0, at=world.clock.now(), kind=kind, message="x")
    async with world.store() as uow:
        run = await uow.runs.get(run_id)
        assert run is not None
        if final:
            run.status = RunStatus.SUCCEEDED
            await uow.runs.save(run)
        event = await uow.run_events.append(run_id, draft)
        await uow.commit()
    return event


async def collect(world: World, viewer: Viewer, run_id: uuid.UUID, after: int | None) -> list[int]:
    """Sequence numbers the stream hands out, to its end."""
    stream = world.service.gen_events(viewer=viewer, run_id=run_id, after_seq=after)
    async with aclosing(stream):
        return [event.seq async for event in stream]


async def test_an_ended_run_is_replayed_in_chunks_and_the_stream_ends() -> None:
    world, viewer = World(QUICK), make_viewer()
    run = await start(world, viewer)
    for _ in range(4):
        await write(world, run.id)
    await write(world, run.id, final=True)
    assert await collect(world, viewer, run.id, None) == [1, 2, 3, 4, 5, 6]
    assert await collect(world, viewer, run.id, 3) == [4, 5, 6]
    assert await collect(world, viewer, run.id, 6) == []
    assert world.bus.watching(run.id) == 0


async def test_others_get_not_found_before_anything_is_watched() -> None:
    world = World(QUICK)
    run = await start(world, make_viewer())
    for run_id in (run.id, uuid.uuid4()):
        with pytest.raises(NotFound):
            await collect(world, make_viewer(), run_id, None)
    assert world.bus.watching(run.id) == 0


async def test_a_cursor_past_the_runs_last_event_is_invalid() -> None:
    world, viewer = World(QUICK), make_viewer()
    run = await start(world, viewer)
    for after in (-1, 2):
        with pytest.raises(InvalidInput) as caught:
            await collect(world, viewer, run.id, after)
        assert caught.value.path == ["afterSeq"]


async def test_a_live_run_is_followed_to_its_end_through_the_executor() -> None:
    world, viewer = World(QUICK), make_viewer()
    run = await start(world, viewer)
    following = asyncio.create_task(collect(world, viewer, run.id, None))
    await _until(lambda: world.bus.watching(run.id) == 1)
    claim = await world.executor.claim(run.id, "w1")
    assert isinstance(claim, Claim)
    await world.executor.log(claim, LogLevel.INFO, "hello")
    await world.executor.succeed(claim, 3)
    assert await asyncio.wait_for(following, 2) == [1, 2, 3, 4]
    assert world.bus.watching(run.id) == 0


async def test_a_lost_final_publish_is_found_in_the_store() -> None:
    world, viewer = World(QUICK), make_viewer()
    run = await start(world, viewer)
    world.bus.deliver_live = False
    following = asyncio.create_task(collect(world, viewer, run.id, None))
    await _until(lambda: world.bus.watching(run.id) == 1)
    await write(world, run.id, final=True)
    assert await asyncio.wait_for(following, 2) == [1, 2]


async def test_lag_is_reported_with_the_last_sequence_handed_out() -> None:
    world, viewer = World(QUICK), make_viewer()
    run = await start(world, viewer)
    stream = world.service.gen_events(viewer=viewer, run_id=run.id, after_seq=None)
    async with aclosing(stream):
        assert (await anext(stream)).seq == 1
        world.bus.deliver(run.id, await write(world, run.id))
        assert (await anext(stream)).seq == 2
        world.bus.deliver(run.id, StreamLagged("too slow", resume_after_seq=99))
        with pytest.raises(StreamLagged) as caught:
            await anext(stream)
    assert caught.value.resume_after_seq == 2
    assert world.bus.watching(run.id) == 0


async def test_a_feed_that_ends_before_the_run_is_resumable() -> None:
    world, viewer = World(QUICK), make_viewer()
    run = await start(world, viewer)
    stream = world.service.gen_events(viewer=viewer, run_id=run.id, after_seq=None)
    async with aclosing(stream):
        assert (await anext(stream)).seq == 1
        world.bus.deliver(run.id, None)
        with pytest.raises(StreamLagged, match=LIVE_ENDED) as caught:
            await anext(stream)
    assert caught.value.resume_after_seq == 1


async def test_closing_a_stream_early_releases_its_watch() -> None:
    world, viewer = World(QUICK), make_viewer()
    run = await start(world, viewer)
    stream = world.service.gen_events(viewer=viewer, run_id=run.id, after_seq=None)
    assert (await anext(stream)).seq == 1
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await stream.aclose()
    assert world.bus.watching(run.id) == 0


async def test_live_updates_reach_only_those_who_may_see_them() -> None:
    world, ada = World(QUICK), make_viewer()
    mine = make_viewer()
    wanted = RunFilter(statuses=frozenset({RunStatus.CANCELLED}))
    updates = world.service.gen_updates(viewer=ada, run_filter=wanted)
    async with aclosing(updates):
        listening = asyncio.ensure_future(anext(updates))
        await _until(lambda: len(world.bus.update_watchers) == 1)
        other = await start(world, mine)
        await world.service.cancel_run(viewer=mine, meta=RequestMeta(), run_id=other.id)
        own = await start(world, ada)
        await world.service.cancel_run(viewer=ada, meta=RequestMeta(), run_id=own.id)
        update = await asyncio.wait_for(listening, 2)
    assert (update.run_id, update.status) == (own.id, RunStatus.CANCELLED)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), total=st.integers(min_value=1, max_value=10))
def test_any_interleaving_gives_every_event_once_in_order(data: st.DataObject, total: int) -> None:
    asyncio.run(_interleaving(data, total))


async def _interleaving(data: st.DataObject, total: int) -> None:
    """`total` events after the first; the subscriber joins at a drawn point with a drawn
    cursor; each published event reaches the feed zero, one or two times, in drawn order."""
    world, viewer = World(QUICK), make_viewer()
    run = await start(world, viewer)
    world.bus.deliver_live = False
    joins_after = data.draw(st.integers(min_value=0, max_value=total), label="joins after")
    after = data.draw(st.integers(min_value=0, max_value=joins_after + 1), label="after")
    pending: list[RunEvent] = []
    following: asyncio.Task[list[int]] | None = None
    for index in range(total):
        if index == joins_after:
            following = asyncio.create_task(collect(world, viewer, run.id, after))
            await _until(lambda: world.bus.watching(run.id) == 1)
        event = await write(world, run.id, final=index == total - 1)
        pending += [event] * data.draw(st.integers(min_value=0, max_value=2), label="copies")
        await _deliver_some(world, data, pending)
    if following is None:
        following = asyncio.create_task(collect(world, viewer, run.id, after))
    await _deliver_some(world, data, pending, everything=True)
    assert await asyncio.wait_for(following, 5) == list(range(after + 1, total + 2))
    assert world.bus.watching(run.id) == 0


async def _deliver_some(
    world: World, data: st.DataObject, pending: list[RunEvent], *, everything: bool = False
) -> None:
    """Deliver a drawn number of pending events in a drawn order, yielding between them."""
    count = len(pending) if everything else data.draw(st.integers(0, len(pending)), label="n")
    for _ in range(count):
        event = pending.pop(data.draw(st.integers(0, len(pending) - 1), label="which"))
        world.bus.deliver(event.run_id, event)
        for _ in range(data.draw(st.integers(0, 2), label="yields")):
            await asyncio.sleep(0)


async def _until(condition: Callable[[], bool]) -> None:
    """Wait until `condition` holds, for at most about two seconds."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the condition never held")

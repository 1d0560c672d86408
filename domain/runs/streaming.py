"""One run's event stream for a subscriber: replay from the store, then follow live.

The store is the truth and the live feed only a fast path: events come out in sequence
order, without gaps or duplicates, whatever the feed drops, repeats or delivers late.
"""

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing

from domain.errors import NotFound, StreamLagged
from domain.ports import UnitOfWorkFactory
from domain.runs.models import Run, RunEvent
from domain.runs.policy import RunPolicy
from domain.runs.ports import EventBus
from domain.runs.rules import RUN_NOT_FOUND

LIVE_ENDED = "live events stopped before the run ended"


class _Cursor:
    """Where a stream stands: the last sequence number handed out."""

    def __init__(self, uow: UnitOfWorkFactory, run_id: uuid.UUID, last: int, chunk: int) -> None:
        self._uow = uow
        self._run_id = run_id
        self._chunk = chunk
        self.last = last

    async def run(self) -> Run:
        """The run as the store has it now."""
        async with self._uow() as uow:
            run = await uow.runs.get(self._run_id)
        if run is None:
            raise NotFound(RUN_NOT_FOUND, path=["id"])
        return run

    async def replay(self, until: int | None) -> AsyncIterator[RunEvent]:
        """Stored events after the cursor (up to `until`), read in chunks."""
        while until is None or self.last < until:
            async with self._uow() as uow:
                events = await uow.run_events.after(
                    self._run_id, self.last, limit=self._chunk, until_seq=until
                )
            for event in events:
                yield self._hand_out(event)
                if event.is_final:
                    return
            if len(events) < self._chunk:
                return

    async def take(self, event: RunEvent) -> AsyncIterator[RunEvent]:
        """A live event, after the stored ones it skipped; nothing if it was already seen."""
        if event.seq <= self.last:
            return
        if event.seq > self.last + 1:
            async for stored in self.replay(until=event.seq - 1):
                yield stored
                if stored.is_final:
                    return
        yield self._hand_out(event)

    def _hand_out(self, event: RunEvent) -> RunEvent:
        self.last = event.seq
        return event


async def _next_or_end(live: AsyncIterator[RunEvent]) -> RunEvent | None:
    return await anext(live, None)


async def _live_or_idle(
    live: AsyncIterator[RunEvent], idle_seconds: float
) -> AsyncGenerator[RunEvent | None, None]:
    """Live events, and None each time `idle_seconds` pass without one.

    The pending read is kept across idle turns rather than cancelled, since cancelling it
    would close the feed.
    """
    pending: asyncio.Future[RunEvent | None] | None = None
    try:
        while True:
            pending = pending or asyncio.ensure_future(_next_or_end(live))
            done, _ = await asyncio.wait({pending}, timeout=idle_seconds)
            if not done:
                yield None
                continue
            event, pending = pending.result(), None
            if event is None:
                return
            yield event
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.wait({pending})


async def follow_events(
    *, uow: UnitOfWorkFactory, bus: EventBus, run_id: uuid.UUID, after_seq: int, policy: RunPolicy
) -> AsyncGenerator[RunEvent, None]:
    """Events of a run after `after_seq` until its final one.

    Raises `StreamLagged` naming the last sequence number handed out when the live feed
    gave up on this subscriber, or stopped before the run ended.
    """
    # Watch first, then read the store: whatever happens after this is in the feed.
    async with bus.watch(run_id) as live:
        cursor = _Cursor(uow, run_id, after_seq, policy.replay_chunk)
        run = await cursor.run()
        async for event in cursor.replay(until=run.last_seq):
            yield event
        # Read with its status, `last_seq` covers a final run's whole stream: it is replayed.
        if run.status.is_final:
            return
        idle = policy.live_recheck_after.total_seconds()
        try:
            async with aclosing(_live_or_idle(live, idle)) as feed:
                async for heard in feed:
                    # Nothing heard for a while: a publish may be lost, so ask the store.
                    fresh = cursor.replay(until=None) if heard is None else cursor.take(heard)
                    async for event in fresh:
                        yield event
                        if event.is_final:
                            return
        except StreamLagged as exc:
            raise StreamLagged(exc.message, resume_after_seq=cursor.last) from exc
        raise StreamLagged(LIVE_ENDED, resume_after_seq=cursor.last)

"""Bounded inboxes between the event bus's one reader and each watcher.

The reader must never wait for a watcher, so offering never blocks: a full inbox first
sheds what can be rebuilt (older progress of a run, older states of a run in a list) and
otherwise gives up on its watcher, whose next read raises `StreamLagged`.
"""

import asyncio
import uuid
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from typing import Generic, TypeVar

from domain.errors import DomainError, StreamLagged
from domain.plans.models import Notification
from domain.runs.models import EventKind, RunEvent, RunUpdate

T = TypeVar("T")


class Inbox(ABC, Generic[T]):
    """One watcher's items, read by one consumer as an async iterator."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ready = asyncio.Event()
        self._failure: DomainError | None = None

    def fail(self, error: DomainError) -> None:
        """Drop what is queued; the consumer's next read raises `error`."""
        if self._failure is None:
            self._failure = error
            self._drop_all()
            self._ready.set()

    @property
    def failed(self) -> bool:
        """Whether the consumer will get an error instead of more items."""
        return self._failure is not None

    @property
    def pending(self) -> int:
        """How many items wait to be read."""
        return self._size()

    def _wake(self) -> None:
        self._ready.set()

    @abstractmethod
    def _size(self) -> int: ...

    @abstractmethod
    def _drop_all(self) -> None: ...

    @abstractmethod
    def _take(self) -> T | None:
        """The next item, or None when there is none yet."""

    def __aiter__(self) -> "Inbox[T]":
        return self

    async def __anext__(self) -> T:
        while True:
            if self._failure is not None:
                raise self._failure
            item = self._take()
            if item is not None:
                return item
            self._ready.clear()
            await self._ready.wait()


class EventInbox(Inbox[RunEvent]):
    """One run's live events; full, it keeps only the newest progress, then lags."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self._events: deque[RunEvent] = deque()
        # Where a lagged consumer resumes: the last event it got, or before the first offered.
        self._handed_out: int | None = None

    def offer(self, event: RunEvent) -> None:
        """Queue `event` without waiting; shed progress or lag when full."""
        if self.failed:
            return
        if self._handed_out is None and not self._events:
            self._handed_out = event.seq - 1
        if len(self._events) >= self.capacity:
            self._coalesce(keep_progress=event.kind is not EventKind.PROGRESS)
        if len(self._events) >= self.capacity:
            resume = self._handed_out or 0
            self.fail(StreamLagged("the live stream fell behind", resume_after_seq=resume))
            return
        self._events.append(event)
        self._wake()

    def _coalesce(self, *, keep_progress: bool) -> None:
        """Drop queued progress, all of it or all but the newest: later progress supersedes."""
        progress = [e for e in self._events if e.kind is EventKind.PROGRESS]
        newest = progress[-1] if keep_progress and progress else None
        self._events = deque(
            e for e in self._events if e.kind is not EventKind.PROGRESS or e is newest
        )

    def _size(self) -> int:
        return len(self._events)

    def _drop_all(self) -> None:
        self._events.clear()

    def _take(self) -> RunEvent | None:
        if not self._events:
            return None
        event = self._events.popleft()
        self._handed_out = event.seq
        return event


class UpdateInbox(Inbox[RunUpdate]):
    """Live updates of many runs; a run's newer update replaces its queued one."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self._updates: OrderedDict[uuid.UUID, RunUpdate] = OrderedDict()

    def offer(self, update: RunUpdate) -> None:
        """Queue `update` without waiting; lag when full of other runs' updates."""
        if self.failed:
            return
        self._updates.pop(update.run_id, None)
        if len(self._updates) >= self.capacity:
            # Run lists have no sequence to resume from: the consumer reloads its list.
            self.fail(StreamLagged("the live run list fell behind", resume_after_seq=0))
            return
        self._updates[update.run_id] = update
        self._wake()

    def _size(self) -> int:
        return len(self._updates)

    def _drop_all(self) -> None:
        self._updates.clear()

    def _take(self) -> RunUpdate | None:
        if not self._updates:
            return None
        return self._updates.popitem(last=False)[1]


class NotificationInbox(Inbox[Notification]):
    """One user's live notifications; full, it lags, and the consumer reloads the list."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self._notifications: deque[Notification] = deque()

    def offer(self, notification: Notification) -> None:
        """Queue `notification` without waiting; lag when full."""
        if self.failed:
            return
        if len(self._notifications) >= self.capacity:
            self.fail(StreamLagged("the live notifications fell behind", resume_after_seq=0))
            return
        self._notifications.append(notification)
        self._wake()

    def _size(self) -> int:
        return len(self._notifications)

    def _drop_all(self) -> None:
        self._notifications.clear()

    def _take(self) -> Notification | None:
        return self._notifications.popleft() if self._notifications else None

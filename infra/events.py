"""The event bus: live run events and notifications over Redis pub/sub, fanned out in memory.

Every run's events share one channel, and each process holds one subscription whatever
the number of watchers, so Redis carries one copy per process. Pub/sub ignores database
numbers: the channel names carry the Redis URL's database, so deployments (or test runs)
that share a server on different databases do not hear each other.
"""

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from domain.errors import Unavailable
from domain.plans.models import Notification
from domain.runs.models import RunEvent, RunUpdate
from infra.event_buffers import EventInbox, Inbox, NotificationInbox, UpdateInbox

logger = logging.getLogger("taskyard.events")

# Waits between reconnection tries double from the first to the last.
RECONNECT_DELAYS = (0.1, 5.0)
# How long a new watcher waits for the subscription before calling live events unavailable.
SUBSCRIBE_TIMEOUT = 5.0
# How long one read waits, so that a silent connection is pinged and found dead.
READ_TIMEOUT = 5.0


def event_channel(db: int) -> str:
    """The channel of every run's events, for Redis database `db`."""
    return f"taskyard:{db}:run-events"


def update_channel(db: int) -> str:
    """The channel of run list updates, for Redis database `db`."""
    return f"taskyard:{db}:run-updates"


def notification_channel(db: int) -> str:
    """The channel of every user's new notifications, for Redis database `db`."""
    return f"taskyard:{db}:notifications"


class RedisEventBus:
    """Publishes run events and updates, and lets many watchers follow them live."""

    def __init__(
        self,
        publisher: Redis,
        redis_url: str,
        *,
        buffer: int,
        subscribe_timeout: float = SUBSCRIBE_TIMEOUT,
    ) -> None:
        self.client_name = f"taskyard-events-{uuid.uuid4().hex[:12]}"
        # A client of its own, named so an operator can tell its one subscription apart.
        # No retries inside redis-py: the reader reconnects itself and knows when it did.
        self._listener: Redis = Redis.from_url(
            redis_url,
            client_name=self.client_name,
            socket_connect_timeout=2,
            health_check_interval=15,
        )
        self._publisher = publisher
        db = int(self._listener.connection_pool.connection_kwargs.get("db", 0))
        self.events_channel = event_channel(db)
        self.updates_channel = update_channel(db)
        self.notifications_channel = notification_channel(db)
        self._buffer = buffer
        self._subscribe_timeout = subscribe_timeout
        self._run_watchers: defaultdict[uuid.UUID, set[EventInbox]] = defaultdict(set)
        self._update_watchers: set[UpdateInbox] = set()
        self._user_watchers: defaultdict[uuid.UUID, set[NotificationInbox]] = defaultdict(set)
        self._subscribed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._events = msgspec.json.Decoder(RunEvent)
        self._updates = msgspec.json.Decoder(RunUpdate)
        self._notifications = msgspec.json.Decoder(Notification)

    # -- publishing ------------------------------------------------------------------------

    async def publish(self, event: RunEvent) -> None:
        """Send one event to every watcher of its run; a failure only logs (best effort)."""
        await self._send(self.events_channel, msgspec.json.encode(event))

    async def publish_update(self, update: RunUpdate) -> None:
        """Send a run's new state to every watcher of run lists (best effort)."""
        await self._send(self.updates_channel, msgspec.json.encode(update))

    async def publish_notification(self, notification: Notification) -> None:
        """Send a new notification to its user's watchers (best effort)."""
        await self._send(self.notifications_channel, msgspec.json.encode(notification))

    async def _send(self, channel: str, message: bytes) -> None:
        try:
            await self._publisher.publish(channel, message)
        except (RedisError, OSError) as exc:
            # Watchers close the gap from the event store when the next event arrives.
            logger.warning("could not publish on %s: %s", channel, type(exc).__name__)

    # -- watching --------------------------------------------------------------------------

    @asynccontextmanager
    async def watch(self, run_id: uuid.UUID) -> AsyncIterator[AsyncIterator[RunEvent]]:
        """Live events of one run from the moment of entering, in order of arrival."""
        inbox = EventInbox(self._buffer)
        self._run_watchers[run_id].add(inbox)
        try:
            await self._until_subscribed()
            yield inbox
        finally:
            watchers = self._run_watchers[run_id]
            watchers.discard(inbox)
            if not watchers:
                del self._run_watchers[run_id]

    @asynccontextmanager
    async def watch_updates(self) -> AsyncIterator[AsyncIterator[RunUpdate]]:
        """Live updates of every run, from the moment of entering."""
        inbox = UpdateInbox(self._buffer)
        self._update_watchers.add(inbox)
        try:
            await self._until_subscribed()
            yield inbox
        finally:
            self._update_watchers.discard(inbox)

    @asynccontextmanager
    async def watch_notifications(
        self, user_id: uuid.UUID
    ) -> AsyncIterator[AsyncIterator[Notification]]:
        """Live notifications of one user from the moment of entering."""
        inbox = NotificationInbox(self._buffer)
        self._user_watchers[user_id].add(inbox)
        try:
            await self._until_subscribed()
            yield inbox
        finally:
            watchers = self._user_watchers[user_id]
            watchers.discard(inbox)
            if not watchers:
                del self._user_watchers[user_id]

    @property
    def watcher_count(self) -> int:
        """How many watchers are following events, updates or notifications right now."""
        runs = sum(len(watchers) for watchers in self._run_watchers.values())
        users = sum(len(watchers) for watchers in self._user_watchers.values())
        return runs + len(self._update_watchers) + users

    async def _until_subscribed(self) -> None:
        """Start the reader on first use and wait until its subscription stands."""
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_forever(), name=self.client_name)
        try:
            await asyncio.wait_for(self._subscribed.wait(), self._subscribe_timeout)
        except TimeoutError:
            raise Unavailable("live run events are unavailable; try again") from None

    # -- the one reader --------------------------------------------------------------------

    async def _read_forever(self) -> None:
        failures = 0
        while True:
            try:
                await self._read_until_dropped()
            except (RedisError, OSError) as exc:
                logger.warning("live events disconnected (%s); reconnecting", type(exc).__name__)
            except Exception:
                # Whatever went wrong, the one reader must live on for every watcher.
                logger.exception("live events reader failed; reconnecting")
            # Back off only while connecting fails; a subscription that stood starts afresh.
            failures = 0 if self._subscribed.is_set() else failures + 1
            self._subscribed.clear()
            await asyncio.sleep(min(RECONNECT_DELAYS[0] * 2**failures, RECONNECT_DELAYS[1]))

    async def _read_until_dropped(self) -> None:
        async with self._listener.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(
                self.events_channel, self.updates_channel, self.notifications_channel
            )
            self._subscribed.set()
            while True:
                message = await pubsub.get_message(timeout=READ_TIMEOUT)
                if message is not None:
                    self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        channel = message["channel"].decode()
        try:
            if channel == self.events_channel:
                event = self._events.decode(message["data"])
                for inbox in self._run_watchers.get(event.run_id, ()):
                    inbox.offer(event)
            elif channel == self.updates_channel:
                update = self._updates.decode(message["data"])
                for updates in self._update_watchers:
                    updates.offer(update)
            elif channel == self.notifications_channel:
                notification = self._notifications.decode(message["data"])
                for user_inbox in self._user_watchers.get(notification.user_id, ()):
                    user_inbox.offer(notification)
        except msgspec.DecodeError:
            logger.warning("ignored a malformed message on %s", channel)

    async def close(self) -> None:
        """Stop the reader and end every watcher's stream with `Unavailable`."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        self._subscribed.clear()
        inboxes: list[Inbox[Any]] = [*self._update_watchers]
        for watchers in self._run_watchers.values():
            inboxes.extend(watchers)
        for user_watchers in self._user_watchers.values():
            inboxes.extend(user_watchers)
        for inbox in inboxes:
            # One exception each: a shared one grows its traceback with every re-raise.
            inbox.fail(Unavailable("live run events stopped"))
        await self._listener.aclose()

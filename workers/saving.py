"""Writes that wait out a database outage instead of dropping what a worker has to save."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from domain.errors import Unavailable

T = TypeVar("T")
logger = logging.getLogger("taskyard.worker")

# How long a write waits for PostgreSQL to come back before the error is raised: long enough
# for a restart or a failover, short enough that a worker does not hang on a dead database.
SAVE_RETRY_SECONDS = 300.0
FIRST_DELAY = 0.5
MAX_DELAY = 10.0


class SaveRetry:
    """Retries a write while the store is `Unavailable`, with back-off, for a bounded time."""

    def __init__(
        self, *, what: str = "save", give_up_after: float | None = SAVE_RETRY_SECONDS
    ) -> None:
        self._what = what
        # None: retry until it succeeds, for start-up steps that nothing else can replace.
        self._give_up_after = give_up_after

    async def __call__(self, write: Callable[[], Awaitable[T]]) -> T:
        """The write's result, once the store took it; `Unavailable` after the bound."""
        started = time.monotonic()
        delay = FIRST_DELAY
        while True:
            try:
                return await write()
            except Unavailable as exc:
                if self._out_of_time(started, delay):
                    raise
                logger.warning("cannot %s (%s); retrying in %.1fs", self._what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)

    def _out_of_time(self, started: float, delay: float) -> bool:
        if self._give_up_after is None:
            return False
        return time.monotonic() + delay - started > self._give_up_after

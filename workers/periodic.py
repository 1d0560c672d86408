"""Background loops of a worker: something done now and every few seconds, whatever fails."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from domain.errors import Unavailable

logger = logging.getLogger("taskyard.worker")


async def every(interval: float, action: Callable[[], Awaitable[object]], *, what: str) -> None:
    """Run `action` now and then every `interval` seconds; a failure is logged, not raised."""
    while True:
        try:
            await action()
        except Unavailable as exc:
            logger.warning("%s failed (%s); trying again in %.0fs", what, exc, interval)
        except Exception:
            logger.exception("%s failed; trying again in %.0fs", what, interval)
        await asyncio.sleep(interval)

"""Ports: what the domain needs from the outside world, as protocols."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol


class Clock(Protocol):
    """Tells the time, so that rules about time can be tested."""

    def now(self) -> datetime:
        """The current time, timezone-aware in UTC."""
        ...


class JobQueue(Protocol):
    """Hands work to the workers."""

    async def call(self, function: str, payload: Mapping[str, Any], *, timeout: float) -> Any:
        """Run `function` on a worker and wait for its result."""
        ...

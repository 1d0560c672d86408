"""The real clock."""

from datetime import UTC, datetime


class SystemClock:
    """Time from the operating system, in UTC."""

    def now(self) -> datetime:
        """The current time."""
        return datetime.now(UTC)

"""The refusal of a start over the daily quota, with what a client needs to show it."""

from datetime import datetime

from domain.errors import QuotaExceeded


class DailyQuotaExceeded(QuotaExceeded):
    """The user's runs today reached their plan's daily limit; it resets at `resets_at`."""

    def __init__(self, message: str, *, limit: int, used: int, resets_at: datetime) -> None:
        super().__init__(message)
        self.limit = limit
        self.used = used
        self.resets_at = resets_at

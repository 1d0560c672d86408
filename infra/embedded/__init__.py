"""Embedded PostgreSQL and Redis for a zero-setup start."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from infra.settings import Settings


class EmbeddedError(Exception):
    """An embedded service cannot start or be reached; the message is one line."""


@dataclass(frozen=True, slots=True)
class ServiceUrls:
    """Where this process finds PostgreSQL and Redis."""

    database_url: str
    redis_url: str


@contextmanager
def service_urls(settings: Settings) -> Iterator[ServiceUrls]:
    """The configured URLs, or those of embedded servers for the data directory."""
    if settings.database_url is None or settings.redis_url is None:
        raise EmbeddedError("embedded services are not available yet")
    yield ServiceUrls(settings.database_url, settings.redis_url)

"""Embedded PostgreSQL and Redis for a zero-setup start."""

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from infra.embedded.errors import EmbeddedError
from infra.embedded.lock import DataDirLock
from infra.embedded.postgres import EmbeddedPostgres
from infra.embedded.redis import EmbeddedRedis
from infra.embedded.server import EmbeddedServer
from infra.settings import Settings

__all__ = [
    "DataDirLock",
    "EmbeddedError",
    "EmbeddedServer",
    "EmbeddedServices",
    "ServiceUrls",
    "service_urls",
]


@dataclass(frozen=True, slots=True)
class ServiceUrls:
    """Where this process finds PostgreSQL and Redis."""

    database_url: str
    redis_url: str


@dataclass(frozen=True, slots=True)
class EmbeddedServices:
    """The embedded servers that settings call for: one for each URL left unset."""

    urls: ServiceUrls
    postgres: EmbeddedPostgres | None
    redis: EmbeddedRedis | None

    @classmethod
    def for_settings(cls, settings: Settings) -> "EmbeddedServices":
        """Configured URLs where set, servers of the data directory for the others."""
        database, redis = settings.database_url, settings.redis_url
        postgres_server = redis_server = None
        if database is None:
            postgres_server = EmbeddedPostgres(settings.data_path, settings.embedded_postgres_port)
            database = postgres_server.url
        if redis is None:
            redis_server = EmbeddedRedis(settings.data_path, settings.embedded_redis_port)
            redis = redis_server.url
        return cls(ServiceUrls(database, redis), postgres_server, redis_server)

    @property
    def servers(self) -> list[EmbeddedServer]:
        """The servers called for, PostgreSQL first."""
        return [s for s in (self.postgres, self.redis) if s is not None]


@contextmanager
def service_urls(settings: Settings) -> Iterator[ServiceUrls]:
    """The configured URLs, or those of embedded servers for the data directory.

    A server already running for the data directory (say, under `taskyard dev`) is
    used as is. Any other is started under the data directory's lock for the block's
    duration and stopped after it.
    """
    embedded = EmbeddedServices.for_settings(settings)
    missing = [server for server in embedded.servers if not server.is_serving()]
    with ExitStack() as stack:
        if missing:
            stack.enter_context(DataDirLock(settings.data_path))
        for server in missing:
            server.start()
            stack.callback(server.stop)
        yield embedded.urls

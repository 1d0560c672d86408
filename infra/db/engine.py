"""Engine and session factory for PostgreSQL."""

from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession


def async_url(url: str) -> str:
    """The URL with the asyncpg driver, whichever PostgreSQL scheme it was given with."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql+asyncpg"))


def create_engine(
    url: str, *, pool_size: int = 10, connect_timeout: float = 5.0, echo: bool = False
) -> AsyncEngine:
    """An engine whose pool survives a database restart (pre-ping drops dead connections)."""
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"timeout": connect_timeout, "command_timeout": 30},
        echo=echo,
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit, so views can be built from them."""
    return async_sessionmaker(engine, expire_on_commit=False)

"""Schema migrations with Alembic, driven from code so every entry point shares them."""

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command
from infra.db.engine import async_url

SCRIPT_LOCATION = Path(__file__).resolve().parents[2] / "alembic"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our scripts and the given database."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    # `%` is ConfigParser's interpolation marker; URLs may contain it.
    config.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return config


def head_revision() -> str | None:
    """The newest revision the code knows."""
    return ScriptDirectory(str(SCRIPT_LOCATION)).get_current_head()


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database up to `revision`."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate the database down to `revision` (`base` empties it)."""
    command.downgrade(alembic_config(url), revision)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current)

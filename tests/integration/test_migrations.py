"""Migrations build exactly the models' schema on an empty database, and undo it all."""

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from infra.db import migrations
from infra.db.engine import create_engine
from infra.db.models import Base

# Everything a migration could leave behind in the schema, by kind.
LEFTOVERS = {
    "table": "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
    "sequence": "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'",
    "type": """
        SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'c')
          AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.reltype = t.oid)
    """,
    "function": """
        SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public'
    """,
}


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


def _leftovers(connection: Connection) -> dict[str, set[str]]:
    return {kind: set(connection.execute(text(sql)).scalars()) for kind, sql in LEFTOVERS.items()}


async def _inspect(url: str) -> tuple[list[Any], dict[str, set[str]]]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_diff), await connection.run_sync(_leftovers)
    finally:
        await engine.dispose()


def schema_of(url: str) -> tuple[list[Any], dict[str, set[str]]]:
    """How the database differs from the models, and what objects its schema holds."""
    return asyncio.run(_inspect(url))


def test_upgrading_an_empty_database_gives_exactly_the_models(empty_database_url: str) -> None:
    migrations.upgrade(empty_database_url)
    differences, objects = schema_of(empty_database_url)
    assert differences == []
    assert objects["table"] == {*Base.metadata.tables, "alembic_version"}


def test_downgrading_to_base_removes_everything_and_upgrading_again_works(
    empty_database_url: str,
) -> None:
    migrations.upgrade(empty_database_url)
    migrations.downgrade(empty_database_url, "base")
    _, objects = schema_of(empty_database_url)
    assert objects == {
        "table": {"alembic_version"},
        "sequence": set(),
        "type": set(),
        "function": set(),
    }
    migrations.upgrade(empty_database_url)
    differences, _ = schema_of(empty_database_url)
    assert differences == []


def test_each_revision_downgrades_and_upgrades_one_step(empty_database_url: str) -> None:
    migrations.upgrade(empty_database_url)
    for _ in range(revision_count()):
        migrations.downgrade(empty_database_url, "-1")
        migrations.upgrade(empty_database_url, "+1")
        migrations.downgrade(empty_database_url, "-1")
    _, objects = schema_of(empty_database_url)
    assert objects["table"] == {"alembic_version"}


def revision_count() -> int:
    """How many revisions lead from base to head."""
    scripts = ScriptDirectory(str(migrations.SCRIPT_LOCATION))
    return len(list(scripts.walk_revisions()))

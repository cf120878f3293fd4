"""The Alembic migrations and the SQLAlchemy models describe the same schema."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import make_engine
from core.migrate import alembic_config
from core.models import Base


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _table_count(connection: Connection) -> int:
    return int(
        connection.execute(
            text("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
        ).scalar_one()
    )


async def test_migrated_database_matches_the_models(engine: AsyncEngine):
    async with engine.connect() as connection:
        assert await connection.run_sync(_diff) == []


async def test_migrations_go_down_to_nothing_and_up_again(engine: AsyncEngine, pg_url: str):
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("DROP DATABASE IF EXISTS vestnik_roundtrip"))
        await connection.execute(text("CREATE DATABASE vestnik_roundtrip"))
    scratch = make_engine(pg_url.replace("/vestnik?", "/vestnik_roundtrip?"), pool_size=1)

    def run(connection: Connection, action: str, revision: str) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)

    try:
        async with scratch.connect() as connection:
            await connection.run_sync(run, "upgrade", "head")
            await connection.run_sync(run, "downgrade", "base")
            assert await connection.run_sync(_table_count) == 1  # only alembic_version is left
            await connection.run_sync(run, "upgrade", "head")
            assert await connection.run_sync(_diff) == []
            await connection.commit()
    finally:
        await scratch.dispose()

"""The Alembic migrations and the SQLAlchemy models describe the same schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.migrate import alembic_config, upgrade
from core.models import Base
from tests.conftest import scratch_database


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _table_count(connection: Connection) -> int:
    return int(
        connection.execute(
            text("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
        ).scalar_one()
    )


def _migrate(connection: Connection, action: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    getattr(command, action)(config, revision)


@asynccontextmanager
async def _scratch(engine: AsyncEngine, pg_url: str, name: str) -> AsyncIterator[AsyncConnection]:
    """A connection to a fresh, empty database ``name`` beside the test database."""
    async with (
        scratch_database(engine, pg_url, name) as (_, scratch),
        scratch.connect() as connection,
    ):
        yield connection


async def test_migrated_database_matches_the_models(engine: AsyncEngine):
    async with engine.connect() as connection:
        assert await connection.run_sync(_diff) == []


async def test_migrations_go_down_to_nothing_and_up_again(engine: AsyncEngine, pg_url: str):
    async with _scratch(engine, pg_url, "vestnik_roundtrip") as connection:
        await connection.run_sync(_migrate, "upgrade", "head")
        await connection.run_sync(_migrate, "downgrade", "base")
        assert await connection.run_sync(_table_count) == 1  # only alembic_version is left
        await connection.run_sync(_migrate, "upgrade", "head")
        assert await connection.run_sync(_diff) == []
        await connection.commit()


async def test_telegram_ids_move_to_member_accounts_and_back(engine: AsyncEngine, pg_url: str):
    """0013 keeps every member's Telegram id: up into member_accounts, down into members."""

    def rows(connection: Connection, sql: str) -> list[tuple[object, ...]]:
        return [tuple(r) for r in connection.execute(text(sql))]

    async with _scratch(engine, pg_url, "vestnik_accounts") as connection:
        await connection.run_sync(_migrate, "upgrade", "0012")
        await connection.execute(
            text(
                "INSERT INTO workspaces (id, name, timezone, default_reminder_offsets) "
                "VALUES (gen_random_uuid(), 'Acme', 'UTC', '{}')"
            )
        )
        for name, tg in (("Anna", 4200000001), ("Bob", None), ("Carl", 42)):
            await connection.execute(
                text(
                    "INSERT INTO members (id, workspace_id, name, telegram_user_id, timezone, "
                    "locale, preferred_time, status) SELECT gen_random_uuid(), id, :name, "
                    ":tg, 'UTC', 'en', 'day', 'active' FROM workspaces"
                ),
                {"name": name, "tg": tg},
            )
        await connection.run_sync(_migrate, "upgrade", "head")
        accounts = await connection.run_sync(
            rows,
            "SELECT m.name, a.messenger, a.external_id, a.chat_id FROM member_accounts a "
            "JOIN members m ON m.id = a.member_id ORDER BY m.name",
        )
        assert accounts == [
            ("Anna", "telegram", "4200000001", "4200000001"),
            ("Carl", "telegram", "42", "42"),
        ]
        await connection.run_sync(_migrate, "downgrade", "0012")
        back = await connection.run_sync(
            rows, "SELECT name, telegram_user_id FROM members ORDER BY name"
        )
        assert back == [("Anna", 4200000001), ("Bob", None), ("Carl", 42)]
        await connection.commit()


async def test_a_migration_that_fails_says_why_changes_nothing_and_frees_the_lock(
    engine: AsyncEngine, pg_url: str
):
    """A start whose migration fails shows Postgres's own error (here: a table of that name
    exists already), leaves the schema as it was, and lets the next start migrate."""
    async with scratch_database(engine, pg_url, "vestnik_failing") as (_, scratch):
        async with scratch.connect() as connection:
            await connection.execute(text("CREATE TABLE workspaces (squatter int)"))
            await connection.commit()
        try:
            await upgrade(scratch)
        except Exception as error:
            said = str(error)
        else:
            raise AssertionError("the migration ran over an existing table")
        assert 'relation "workspaces" already exists' in said
        assert "transaction is aborted" not in said
        async with scratch.connect() as connection:
            assert await connection.run_sync(_table_count) == 1  # nothing half-written
            await connection.execute(text("DROP TABLE workspaces"))
            await connection.commit()
        await upgrade(scratch)  # the lock was given back: a second start migrates
        async with scratch.connect() as connection:
            assert await connection.run_sync(_diff) == []

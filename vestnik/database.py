"""Opening the database for a CLI command, migrating the embedded one on the way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.db import make_engine, make_sessionmaker
from core.embedded import database_url
from core.migrate import alembic_config, upgrade
from core.settings import Settings
from vestnik.errors import MigrationFailed, SchemaOutdated


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema up to date; a migration Postgres refuses stops the command with
    Postgres's reason in one line, not a traceback."""
    try:
        await upgrade(engine)
    except DBAPIError as error:
        raise MigrationFailed(
            f"a database migration failed and none was applied: {error.orig}"
        ) from error


def _current_and_head(connection: Connection) -> tuple[str | None, str | None]:
    current = MigrationContext.configure(connection).get_current_revision()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    return current, head


@asynccontextmanager
async def open_session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session on the configured database. The embedded one is migrated first; an external one
    must already be (``vestnik migrate``), so an operator command never changes a schema by surprise.
    """
    engine = make_engine(await database_url(settings), pool_size=2)
    try:
        if settings.database_url is None:
            await migrate(engine)
        else:
            async with engine.connect() as connection:
                current, head = await connection.run_sync(_current_and_head)
            if current != head:
                raise SchemaOutdated(
                    f"the database schema is at {current or 'nothing'}, not {head}; "
                    "run `vestnik migrate` first"
                )
        async with make_sessionmaker(engine)() as session:
            yield session
    finally:
        await engine.dispose()

"""Applying Alembic migrations from code, safely when several processes start at once."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations

# Any constant works; it only has to be the same for every vestnik process.
_MIGRATION_LOCK = 0x76657374


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; a Postgres advisory lock keeps concurrent starts in line."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
        try:
            await connection.run_sync(_upgrade, revision)
            await connection.commit()
        except Exception:
            # Out of the failed transaction first: unlocking inside it would fail too, and its
            # "transaction is aborted" would be the error shown instead of the migration's own.
            # The lock is the session's, so it outlives the rollback.
            await connection.rollback()
            raise
        finally:
            await connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
            await connection.commit()

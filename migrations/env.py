"""Alembic environment: runs on a connection vestnik hands in, or on its own async engine."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from core.db import Base, make_engine

config = context.config


def _models() -> MetaData:
    """The metadata whose naming convention names the constraints the scripts create; for the
    alembic command (``revision --autogenerate``, ``check``), with every model's table in it.
    vestnik's own upgrades (core.migrate: `vestnik run`, `vestnik migrate`, every process that
    starts) only run the scripts: importing every model took a second of CPU from each start
    on a slow day."""
    if config.cmd_opts is not None:
        import core.models  # noqa: F401  (each model adds its table to Base.metadata)
    return Base.metadata


target_metadata = _models()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    from core.embedded import database_url
    from core.settings import get_settings

    engine = make_engine(await database_url(get_settings()))
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
elif (connection := config.attributes.get("connection")) is not None:
    _run(connection)
else:
    asyncio.run(_run_online())

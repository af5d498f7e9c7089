"""The async engine, sessions and migrations."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

import migrations
from bot import ids

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
# The advisory lock every prepbot process on one PostgreSQL database takes for its start-up work.
STARTUP_LOCK_KEY = 0x70726570


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; on SQLite: WAL, full sync, a busy timeout and immediate write transactions."""
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _tune_sqlite(engine)
    return engine


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the driver so that BEGIN IMMEDIATE below is the
        # transaction's start: a deferred BEGIN that later upgrades to a write lock fails at once
        # with "database is locked" when another process writes, without honouring busy_timeout.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


async def hold_startup_lock(connection: AsyncConnection | AsyncSession) -> None:
    """Until this transaction ends, be the only process doing start-up work (migrations, the bank sync).

    Processes started together on one database would otherwise race to create the same tables
    and rows, and all but one fail to start. On PostgreSQL this is a transaction-scoped advisory
    lock; on SQLite, every transaction already begins IMMEDIATE, which serializes writers.
    """
    bind = connection.get_bind() if isinstance(connection, AsyncSession) else connection
    if bind.dialect.name == "postgresql":
        await connection.execute(select(func.pg_advisory_xact_lock(STARTUP_LOCK_KEY)))


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for one engine, sharing one cache of committed ids (`bot.ids`)."""
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=ids.CachingSession, info=ids.new_cache())


def alembic_config(url: str) -> Config:
    """Alembic's configuration for `url`, pointing at the migrations shipped with the package."""
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations up to `revision` over the engine's own connection."""
    await _run_migration(engine, command.upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    await _run_migration(engine, command.downgrade, revision)


async def _run_migration(engine: AsyncEngine, step: Any, revision: str) -> None:
    url = engine.url.render_as_string(hide_password=False)
    config = alembic_config(url)

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        step(config, revision)

    async with engine.begin() as connection:
        await hold_startup_lock(connection)
        await connection.run_sync(run)
    logger.info("database at %s migrated to %s", make_url(url).render_as_string(hide_password=True), revision)

"""The async engine, sessions, transactions of sync work, and migrations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine, event, func, inspect, select, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

import migrations
from bot import ids

if TYPE_CHECKING:
    from alembic.config import Config

Result = TypeVar("Result")

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
# The advisory lock every prepbot process on one PostgreSQL database takes for its start-up work.
STARTUP_LOCK_KEY = 0x70726570


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; on SQLite: WAL, full sync, a busy timeout and immediate write transactions."""
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _tune_sqlite(engine.sync_engine)
    return engine


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
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

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        # A transaction that only reads (`reads_only`) starts deferred: it takes no write lock.
        connection.exec_driver_sql("BEGIN" if connection.get_execution_options().get(_READS_ONLY) else "BEGIN IMMEDIATE")


_READS_ONLY = "prepbot_reads_only"  # an execution option: this connection's transactions only read


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


class Transactions(Protocol):
    """Runs sync work in a transaction of its own, committed when the work returns."""

    async def run(self, work: Callable[[Session], Result]) -> Result: ...


class OnTheLoop:
    """Sync work over the async engine's connection, its statements awaited one by one (`AsyncSession.run_sync`)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def run(self, work: Callable[[Session], Result]) -> Result:
        async with self._sessions() as session, session.begin():
            return await session.run_sync(work)


class InAThread:
    """Sync work on a sync twin of the engine, in its worker thread: one hand-off for the whole transaction.

    aiosqlite hands every statement, fetch and cursor to its own thread and back; a batch of events
    holds hundreds of them. Here the database's worker thread runs the whole transaction on
    pysqlite, with the same pragmas and immediate transactions as the async engine, while the
    event loop goes on. One thread per database: SQLite writes one transaction at a time anyway,
    and threads taking turns at the GIL cost more than they overlap (a fan-out of 1,000 posts took
    a third more CPU on six threads than on one).
    """

    def __init__(self, sessions: sessionmaker[Session], thread: ThreadPoolExecutor) -> None:
        self._sessions = sessions
        self._thread = thread

    async def run(self, work: Callable[[Session], Result]) -> Result:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._run, work)

    def _run(self, work: Callable[[Session], Result]) -> Result:
        with self._sessions() as session, session.begin():
            return work(session)


def one_writer_at_a_time(sessions: async_sessionmaker[AsyncSession]) -> contextlib.AbstractAsyncContextManager[object]:
    """What a write transaction on `sessions` holds while it runs: on SQLite, the process's turn to write.

    SQLite has one writer at a time. Transactions that find the lock taken sleep in its busy
    handler (1, 2, 5, … up to 100 ms at a time) and so run late even once it is free; fifty posts
    at once spent much of a fan-out asleep. Taking turns on the event loop instead, they run back
    to back. Other databases lock rows, not the file, so there it holds nothing.
    """
    engine = sessions.kw["bind"]
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    turn = _turns.get(engine.sync_engine)
    if turn is None:
        turn = _turns[engine.sync_engine] = asyncio.Lock()
    return turn


_turns: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()
_twins: weakref.WeakKeyDictionary[Engine, tuple[Engine, ThreadPoolExecutor]] = weakref.WeakKeyDictionary()


def transactions(sessions: async_sessionmaker[AsyncSession], *, reads_only: bool = False) -> Transactions:
    """How to run sync work in transactions on `sessions`' database, sharing their id cache.

    A SQLite file gets a pysqlite twin of its engine, used from worker threads and disposed with
    the engine; other databases (and in-memory SQLite, which a twin could not see) run on the loop.

    `reads_only` is for work that only reads. On SQLite, where every other transaction begins
    IMMEDIATE and so holds the database's one write lock throughout (`create_engine`), its
    transactions begin deferred and read a snapshot alongside the writer (WAL) instead of queueing
    behind it; a write there would not wait for the lock but fail with "database is locked".
    """
    engine = sessions.kw["bind"]
    assert isinstance(engine, AsyncEngine)
    options = {_READS_ONLY: True} if reads_only else {}
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return OnTheLoop(async_sessionmaker(**{**sessions.kw, "bind": engine.execution_options(**options)}))
    found = _twins.get(engine.sync_engine)
    if found is None:
        twin = create_sync_engine(url.set(drivername="sqlite+pysqlite"), connect_args={"check_same_thread": False})
        _tune_sqlite(twin)
        found = _twins[engine.sync_engine] = twin, ThreadPoolExecutor(1, thread_name_prefix="prepbot-sqlite")
        event.listen(engine.sync_engine, "engine_disposed", _dispose_twin)
    twin, thread = found
    return InAThread(sessionmaker(
        twin.execution_options(**options), expire_on_commit=False, class_=ids.CachingSession, info=sessions.kw.get("info")),
        thread)


def _dispose_twin(engine: Engine) -> None:
    """The async engine was disposed: so are its twin and the twin's thread (a later use makes new ones)."""
    found = _twins.pop(engine, None)
    if found is not None:
        twin, thread = found
        thread.shutdown(wait=False)
        twin.dispose()


def alembic_config(url: str) -> Config:
    """Alembic's configuration for `url`, pointing at the migrations shipped with the package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations up to `revision` over the engine's own connection.

    A database already at head, as it is at every start but the first after an upgrade, is left
    alone without importing Alembic: it and Mako would stay in the memory of a running bot.
    """
    if revision == "head" and await stamped_revisions(engine) == [migrations.HEAD]:
        return
    from alembic import command

    await _run_migration(engine, command.upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    from alembic import command

    await _run_migration(engine, command.downgrade, revision)


async def stamped_revisions(engine: AsyncEngine) -> list[str]:
    """The revisions Alembic has recorded in the database; none for a database it never migrated."""

    def read(connection: Connection) -> list[str]:
        if not inspect(connection).has_table("alembic_version"):
            return []
        return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def _run_migration(engine: AsyncEngine, step: Callable[[Config, str], None], revision: str) -> None:
    url = engine.url.render_as_string(hide_password=False)
    config = alembic_config(url)

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        step(config, revision)

    async with engine.begin() as connection:
        await hold_startup_lock(connection)
        await connection.run_sync(run)
    logger.info("database at %s migrated to %s", make_url(url).render_as_string(hide_password=True), revision)

"""`db.transactions`: sync work in one transaction; reads alongside a writer; one thread per SQLite file."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from bot import db, models


def inbox_size(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(models.InboxEvent)) or 0)


async def test_a_reading_transaction_reads_while_a_write_transaction_is_open(sessions: async_sessionmaker[AsyncSession]) -> None:
    writing, release = asyncio.Event(), asyncio.Event()

    async def hold_a_write_open() -> None:
        async with sessions() as session, session.begin():
            session.add(models.InboxEvent(event_id="uncommitted", kind="test", received_at=datetime(2026, 3, 2, tzinfo=UTC)))
            await session.flush()  # on SQLite the write lock is taken (BEGIN IMMEDIATE) and held until the commit
            writing.set()
            await release.wait()

    holder = asyncio.create_task(hold_a_write_open())
    await writing.wait()
    try:
        # A writing transaction would wait for the lock (up to the 30 s busy timeout); this one reads the last commit.
        assert await asyncio.wait_for(db.transactions(sessions, reads_only=True).run(inbox_size), 5) == 0
    finally:
        release.set()
        await holder
    assert await db.transactions(sessions, reads_only=True).run(inbox_size) == 1


async def test_a_sqlite_files_transactions_run_on_one_thread_of_its_own(sqlite_url: str) -> None:
    engine = db.create_engine(sqlite_url)
    await db.upgrade(engine)
    sessions = db.session_factory(engine)

    def thread_name(session: Session) -> str:
        inbox_size(session)
        return threading.current_thread().name

    try:
        names = await asyncio.gather(*(db.transactions(sessions, reads_only=n % 2 == 0).run(thread_name) for n in range(20)))
        assert len(set(names)) == 1 and names[0].startswith("prepbot-sqlite")
        assert names[0] != threading.current_thread().name
        await engine.dispose()  # its thread goes with it; a later use starts another
        assert (await db.transactions(sessions).run(thread_name)).startswith("prepbot-sqlite")
    finally:
        await engine.dispose()
